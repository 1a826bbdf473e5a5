package storage

// The audit trail: append-only, read newest first.

import "context"

// CreateAuditEvent appends e (e.ID is ignored: the database numbers events).
func (s *Store) CreateAuditEvent(ctx context.Context, e AuditEvent) error {
	row := auditEventToRow(e)
	row.ID = 0 // numbered by the database
	return fail("create audit event", s.write(ctx).Create(&row).Error)
}

// ListAuditEvents returns matching events, newest first (ties by id).
func (s *Store) ListAuditEvents(ctx context.Context, f AuditFilter) ([]AuditEvent, error) {
	q := s.read(ctx)
	if f.UserID != "" {
		q = q.Where("user_id = ?", f.UserID)
	}
	var rows []auditEventRow
	if err := q.Order("at DESC, id DESC").Limit(limit(f.Limit)).Find(&rows).Error; err != nil {
		return nil, fail("list audit events", err)
	}
	out := make([]AuditEvent, 0, len(rows))
	for _, r := range rows {
		e, err := r.domain()
		if err != nil {
			return nil, fail("list audit events", err)
		}
		out = append(out, e)
	}
	return out, nil
}
