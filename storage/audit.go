package storage

// The audit trail: append-only, read newest first. An event the
// security-event webhook wants is queued for delivery in the same
// transaction (event_deliveries), so a committed event is never lost
// and an event that did not commit is never sent.

import (
	"context"

	"gorm.io/gorm"
)

// CreateAuditEvent appends e (e.ID is ignored: the database numbers events).
func (s *Store) CreateAuditEvent(ctx context.Context, e AuditEvent) error {
	row := auditEventToRow(e)
	row.ID = 0 // numbered by the database
	if s.queueEvent == nil || !s.queueEvent(e.Event) {
		return fail("create audit event", s.write(ctx).Create(&row).Error)
	}
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		if err := tx.Create(&row).Error; err != nil {
			return err
		}
		d := eventDeliveryRow{AuditEventID: row.ID, CreatedMs: row.AtMs, NextAttemptMs: row.AtMs}
		return tx.Create(&d).Error
	})
	return fail("create audit event", err)
}

// ListAuditEvents returns matching events, newest first (ties by id).
func (s *Store) ListAuditEvents(ctx context.Context, f AuditFilter) ([]AuditEvent, error) {
	q := s.read(ctx)
	if f.UserID != "" {
		q = q.Where("user_id = ?", f.UserID)
	}
	if len(f.Events) > 0 {
		q = q.Where("event IN ?", f.Events)
	}
	if !f.Since.IsZero() {
		q = q.Where("at >= ?", ms(f.Since))
	}
	if !f.Until.IsZero() {
		q = q.Where("at <= ?", ms(f.Until))
	}
	if c := f.Before; c != nil {
		at := ms(c.At)
		q = q.Where("(at < ? OR (at = ? AND id < ?))", at, at, c.ID)
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
