package storage

import (
	"context"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// CreateClient inserts c; the caller chooses the id.
func (s *Store) CreateClient(ctx context.Context, c Client) error {
	if c.ID == "" {
		return invalid("create client: empty id")
	}
	row := clientToRow(c)
	return fail("create client", s.write(ctx).Create(&row).Error)
}

// GetClient finds a client by id (hot path: one indexed SELECT).
func (s *Store) GetClient(ctx context.Context, id string) (Client, error) {
	// Every sign-in step and token request: a prepared statement.
	var row clientRow
	if err := s.hotRow(ctx, clientByID, row.ptrs(), id); err != nil {
		return Client{}, fail("get client", err)
	}
	c, err := row.domain()
	return c, fail("get client", err)
}

// ListClients returns every client ordered by id.
func (s *Store) ListClients(ctx context.Context) ([]Client, error) {
	var rows []clientRow
	if err := s.read(ctx).Order("id").Find(&rows).Error; err != nil {
		return nil, fail("list clients", err)
	}
	out := make([]Client, 0, len(rows))
	for _, r := range rows {
		c, err := r.domain()
		if err != nil {
			return nil, fail("list clients", err)
		}
		out = append(out, c)
	}
	return out, nil
}

// UpdateClient is a read-modify-write of one client (the id is immutable).
func (s *Store) UpdateClient(ctx context.Context, id string, fn func(*Client) error) (Client, error) {
	return updateRow(s, ctx, "update client", "id = ?", []any{id},
		clientRow.domain, clientToRow, fn,
		func(old Client, v *Client) { v.ID = old.ID })
}

// DeleteClient deletes one client; ErrNotFound if absent. Tokens issued to
// it are left to expire (the OP refuses tokens of unknown clients).
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	res := s.write(ctx).Where("id = ?", id).Delete(&clientRow{})
	if res.Error != nil {
		return fail("delete client", res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// SyncClients makes the clients of source exactly cs, in one transaction.
func (s *Store) SyncClients(ctx context.Context, source string, cs []Client) error {
	// An existing id gets every column but created_at, so a re-sync keeps
	// the original creation time (and takes over rows of other sources).
	upsert := clause.OnConflict{
		Columns: []clause.Column{{Name: "id"}},
		DoUpdates: clause.AssignmentColumns([]string{
			"name", "secret_hash", "public", "redirect_uris", "post_logout_redirect_uris",
			"grant_types", "app_type", "access_token_format", "access_token_lifetime_ms",
			"id_token_lifetime_ms", "refresh_token_lifetime_ms", "default_acr", "admin_access", "source", "updated_at",
			"jwks", "jwks_uri", "scopes", "backchannel_logout_uri", "backchannel_logout_session_required",
			"third_party", "require_par", "dpop_bound", "id_token_signed_response_alg", "logo_uri",
		}),
	}
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		// Instances starting together all sync: one at a time.
		if err := s.pgLock(tx, lockClass, lockSyncClients); err != nil {
			return err
		}
		ids := make([]string, 0, len(cs))
		for _, c := range cs {
			if c.ID == "" {
				return invalid("sync clients: empty id")
			}
			c.Source = source
			row := clientToRow(c)
			if err := tx.Clauses(upsert).Create(&row).Error; err != nil {
				return err
			}
			ids = append(ids, c.ID)
		}
		q := tx.Where("source = ?", source)
		if len(ids) > 0 {
			q = q.Where("id NOT IN ?", ids)
		}
		return q.Delete(&clientRow{}).Error
	})
	return fail("sync clients", err)
}
