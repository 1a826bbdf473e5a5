package storage

// Organisations (one upstream IdP each, owning email domains), federated
// identities and upstream round-trip states.

import (
	"context"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
)

// normDomains lower-cases, deduplicates and sorts domains: that is the
// form stored and returned.
func normDomains(ds []string) []string {
	out := make([]string, 0, len(ds))
	for _, d := range ds {
		if d = strings.ToLower(d); d != "" {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) == 0 {
		return nil
	}
	return out
}

// putDomains makes orgID own exactly domains. A domain owned by another
// organisation is ErrConflict (primary key violation).
func putDomains(tx *gorm.DB, orgID string, domains []string) error {
	if err := tx.Where("org_id = ?", orgID).Delete(&organizationDomainRow{}).Error; err != nil {
		return err
	}
	for _, d := range domains {
		if err := tx.Create(&organizationDomainRow{Domain: d, OrgID: orgID}).Error; err != nil {
			return err
		}
	}
	return nil
}

// orgDomains loads the domains of the given organisations, sorted.
func orgDomains(db *gorm.DB, ids ...string) (map[string][]string, error) {
	var rows []organizationDomainRow
	q := db.Order("domain")
	if len(ids) > 0 {
		q = q.Where("org_id IN ?", ids)
	}
	if err := q.Find(&rows).Error; err != nil {
		return nil, err
	}
	m := make(map[string][]string)
	for _, r := range rows {
		m[r.OrgID] = append(m[r.OrgID], r.Domain)
	}
	return m, nil
}

func withDomains(db *gorm.DB, row organizationRow) (Organization, error) {
	o, err := row.domain()
	if err != nil {
		return Organization{}, err
	}
	m, err := orgDomains(db, row.ID)
	if err != nil {
		return Organization{}, err
	}
	o.Domains = m[row.ID]
	return o, nil
}

// CreateOrganization inserts o and its domains (ID generated when empty;
// domains stored lower-cased, sorted, deduplicated). ErrConflict on a
// duplicate name or a domain owned by another organisation.
func (s *Store) CreateOrganization(ctx context.Context, o Organization) (Organization, error) {
	if o.ID == "" {
		o.ID = NewID()
	}
	o.Domains = normDomains(o.Domains)
	row := organizationToRow(o)
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		if err := tx.Create(&row).Error; err != nil {
			return err
		}
		return putDomains(tx, o.ID, o.Domains)
	})
	if err != nil {
		return Organization{}, fail("create organization", err)
	}
	out, err := row.domain()
	out.Domains = o.Domains
	return out, fail("create organization", err)
}

// GetOrganization finds an organisation by id.
func (s *Store) GetOrganization(ctx context.Context, id string) (Organization, error) {
	return s.getOrganization(ctx, "get organization", "id = ?", id)
}

// GetOrganizationByName finds an organisation by its exact name.
func (s *Store) GetOrganizationByName(ctx context.Context, name string) (Organization, error) {
	return s.getOrganization(ctx, "get organization by name", "name = ?", name)
}

// GetOrganizationByDomain finds the owner of domain, case-insensitively.
//
// Every identifier step asks for the email's domain: the lookup is a
// prepared statement (most domains have no organisation).
func (s *Store) GetOrganizationByDomain(ctx context.Context, domain string) (Organization, error) {
	const op = "get organization by domain"
	var row organizationRow
	if err := s.hotRow(ctx, organizationByDomain, row.ptrs(), strings.ToLower(domain)); err != nil {
		return Organization{}, fail(op, err)
	}
	o, err := withDomains(s.read(ctx), row)
	return o, fail(op, err)
}

func (s *Store) getOrganization(ctx context.Context, op, where string, args ...any) (Organization, error) {
	db := s.read(ctx)
	row, err := take[organizationRow](db, where, args...)
	if err != nil {
		return Organization{}, fail(op, err)
	}
	o, err := withDomains(db, row)
	return o, fail(op, err)
}

// ListOrganizations returns every organisation ordered by name.
func (s *Store) ListOrganizations(ctx context.Context) ([]Organization, error) {
	db := s.read(ctx)
	var rows []organizationRow
	if err := db.Order("name").Find(&rows).Error; err != nil {
		return nil, fail("list organizations", err)
	}
	m, err := orgDomains(db)
	if err != nil {
		return nil, fail("list organizations", err)
	}
	out := make([]Organization, 0, len(rows))
	for _, r := range rows {
		o, err := r.domain()
		if err != nil {
			return nil, fail("list organizations", err)
		}
		o.Domains = m[r.ID]
		out = append(out, o)
	}
	return out, nil
}

// UpdateOrganization is a read-modify-write of one organisation and its
// domains (ID is immutable).
func (s *Store) UpdateOrganization(ctx context.Context, id string, fn func(*Organization) error) (Organization, error) {
	var out Organization
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		row, err := take[organizationRow](s.forUpdate(tx), "id = ?", id)
		if err != nil {
			return err
		}
		o, err := withDomains(tx, row)
		if err != nil {
			return err
		}
		if err := runFn(fn(&o)); err != nil {
			return err
		}
		o.ID = id
		o.Domains = normDomains(o.Domains)
		nr := organizationToRow(o)
		if err := tx.Select("*").Updates(&nr).Error; err != nil {
			return err
		}
		if err := putDomains(tx, id, o.Domains); err != nil {
			return err
		}
		out, err = nr.domain()
		out.Domains = o.Domains
		return err
	})
	return out, fail("update organization", err)
}

// DeleteOrganization deletes an organisation and its domains; ErrNotFound
// if absent. Federated identities and users of the organisation are kept
// (re-creating it under the same id restores their links).
func (s *Store) DeleteOrganization(ctx context.Context, id string) error {
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		res := tx.Where("id = ?", id).Delete(&organizationRow{})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		return tx.Where("org_id = ?", id).Delete(&organizationDomainRow{}).Error
	})
	return fail("delete organization", err)
}

// SyncOrganizations makes the organisations of source exactly orgs, keyed by
// Name, in one transaction. An existing organisation of that name (of any
// source) keeps its ID and CreatedAt and takes this source; a new one gets
// o.ID or a generated one. Domains may move between organisations of the
// same sync: every affected organisation's domains are cleared before any
// is inserted.
func (s *Store) SyncOrganizations(ctx context.Context, source string, orgs []Organization) error {
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		// Instances starting together all sync: one at a time.
		if err := s.pgLock(tx, lockClass, lockSyncOrgs); err != nil {
			return err
		}
		var existing []organizationRow
		if err := s.forUpdate(tx).Find(&existing).Error; err != nil {
			return err
		}
		byName := make(map[string]organizationRow, len(existing))
		for _, r := range existing {
			byName[r.Name] = r
		}
		keep := make(map[string]bool, len(orgs))
		rows := make([]organizationRow, 0, len(orgs))
		domains := make(map[string][]string, len(orgs))
		for _, o := range orgs {
			if o.Name == "" {
				return invalid("sync organizations: empty name")
			}
			if keep[o.Name] {
				return invalid("sync organizations: duplicate name " + o.Name)
			}
			keep[o.Name] = true
			o.Source = source
			if old, ok := byName[o.Name]; ok {
				o.ID, o.CreatedAt = old.ID, tm(old.CreatedMs)
			} else if o.ID == "" {
				o.ID = NewID()
			}
			rows = append(rows, organizationToRow(o))
			domains[o.ID] = normDomains(o.Domains)
		}
		var gone []string
		for _, r := range existing {
			if r.Source == source && !keep[r.Name] {
				gone = append(gone, r.ID)
			}
		}
		affected := slices.Clone(gone)
		for _, r := range rows {
			affected = append(affected, r.ID)
		}
		if len(affected) > 0 {
			if err := tx.Where("org_id IN ?", affected).Delete(&organizationDomainRow{}).Error; err != nil {
				return err
			}
		}
		if len(gone) > 0 {
			if err := tx.Where("id IN ?", gone).Delete(&organizationRow{}).Error; err != nil {
				return err
			}
		}
		for i := range rows {
			r := &rows[i]
			if _, ok := byName[r.Name]; ok {
				if err := tx.Select("*").Updates(r).Error; err != nil {
					return err
				}
			} else if err := tx.Create(r).Error; err != nil {
				return err
			}
			for _, d := range domains[r.ID] {
				if err := tx.Create(&organizationDomainRow{Domain: d, OrgID: r.ID}).Error; err != nil {
					return err
				}
			}
		}
		return nil
	})
	return fail("sync organizations", err)
}

// GetFederatedIdentity finds the link of an upstream subject.
func (s *Store) GetFederatedIdentity(ctx context.Context, orgID, subject string) (FederatedIdentity, error) {
	row, err := take[federatedIdentityRow](s.read(ctx), "org_id = ? AND subject = ?", orgID, subject)
	if err != nil {
		return FederatedIdentity{}, fail("get federated identity", err)
	}
	return row.domain(), nil
}

// CreateFederatedIdentity links an upstream subject; ErrConflict if the
// (organisation, subject) pair is linked already.
func (s *Store) CreateFederatedIdentity(ctx context.Context, f FederatedIdentity) error {
	row := federatedIdentityToRow(f)
	return fail("create federated identity", s.write(ctx).Create(&row).Error)
}

// TouchFederatedIdentity records a sign-in; ErrNotFound if not linked.
func (s *Store) TouchFederatedIdentity(ctx context.Context, orgID, subject string, now time.Time) error {
	res := s.write(ctx).Exec(
		"UPDATE federated_identities SET last_login_at = ? WHERE org_id = ? AND subject = ?",
		ms(now), orgID, subject)
	if res.Error != nil {
		return fail("touch federated identity", res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// CreateUpstreamState inserts st (ID generated when empty).
func (s *Store) CreateUpstreamState(ctx context.Context, st UpstreamState) (UpstreamState, error) {
	if len(st.StateHash) == 0 {
		return UpstreamState{}, invalid("create upstream state: empty state hash")
	}
	if st.ID == "" {
		st.ID = NewID()
	}
	row := upstreamStateToRow(st)
	if err := s.write(ctx).Create(&row).Error; err != nil {
		return UpstreamState{}, fail("create upstream state", err)
	}
	return row.domain(), nil
}

// RedeemUpstreamState marks the state used in one conditional UPDATE …
// RETURNING (one winner). Valid through now == ExpiresAt. ErrNotFound:
// unknown or expired; ErrConflict: already used.
func (s *Store) RedeemUpstreamState(ctx context.Context, stateHash []byte, now time.Time) (UpstreamState, error) {
	if len(stateHash) == 0 {
		return UpstreamState{}, ErrNotFound
	}
	var rows []upstreamStateRow
	err := s.write(ctx).Raw(
		`UPDATE upstream_states SET used_at = ?
		 WHERE state_hash = ? AND used_at = 0 AND expires_at >= ?
		 RETURNING *`,
		usedMs(now), stateHash, ms(now)).Scan(&rows).Error
	if err != nil {
		return UpstreamState{}, fail("redeem upstream state", err)
	}
	if len(rows) == 1 {
		return rows[0].domain(), nil
	}
	row, err := take[upstreamStateRow](s.read(ctx), "state_hash = ?", stateHash)
	if err != nil {
		return UpstreamState{}, fail("redeem upstream state", err)
	}
	if row.UsedMs != 0 {
		return UpstreamState{}, ErrConflict
	}
	return UpstreamState{}, ErrNotFound
}
