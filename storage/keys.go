package storage

// JWS signing keys. The private part arrives sealed; rotation policy is the
// OP's, the store only guarantees that two instances never rotate at once.

import (
	"context"

	"gorm.io/gorm"
)

// ListSigningKeys returns every key, oldest first.
func (s *Store) ListSigningKeys(ctx context.Context) ([]SigningKey, error) {
	var rows []signingKeyRow
	if err := s.read(ctx).Order("created_at, id").Find(&rows).Error; err != nil {
		return nil, fail("list signing keys", err)
	}
	return signingKeys(rows), nil
}

func signingKeys(rows []signingKeyRow) []SigningKey {
	out := make([]SigningKey, len(rows))
	for i, r := range rows {
		out[i] = r.domain()
	}
	return out
}

// UpdateSigningKeys runs fn on the current keys inside one transaction
// holding an exclusive lock (a transaction-scoped advisory lock on
// PostgreSQL; the database write lock of BEGIN IMMEDIATE on SQLite), then
// inserts add and deletes remove. fn runs with the lock held: it must not
// call the Store. An error from fn is returned unchanged and nothing
// changes; a duplicate kid in add is ErrConflict.
func (s *Store) UpdateSigningKeys(ctx context.Context, fn func(current []SigningKey) (add []SigningKey, remove []string, err error)) error {
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		if err := s.pgLock(tx, lockClass, lockSigningKeys); err != nil {
			return err
		}
		var rows []signingKeyRow
		if err := tx.Order("created_at, id").Find(&rows).Error; err != nil {
			return err
		}
		add, remove, err := fn(signingKeys(rows))
		if err := runFn(err); err != nil {
			return err
		}
		if len(remove) > 0 {
			if err := tx.Where("id IN ?", remove).Delete(&signingKeyRow{}).Error; err != nil {
				return err
			}
		}
		for _, k := range add {
			if k.ID == "" {
				k.ID = NewID()
			}
			row := signingKeyToRow(k)
			if err := tx.Create(&row).Error; err != nil {
				return err
			}
		}
		return nil
	})
	return fail("update signing keys", err)
}
