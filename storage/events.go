package storage

// The security-event webhook's durable queue: event_deliveries rows are
// written with their audit event (audit.go), claimed by the delivery
// workers of every instance, retried and finished here. The HTTP side
// (signing, back-off, what to send) is the caller's.

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"gorm.io/gorm"
)

type eventDeliveryRow struct {
	ID            int64  `gorm:"column:id;primaryKey;autoIncrement"`
	AuditEventID  int64  `gorm:"column:audit_event_id"`
	CreatedMs     int64  `gorm:"column:created_at"`
	Attempts      int    `gorm:"column:attempts"`
	NextAttemptMs int64  `gorm:"column:next_attempt_at"`
	LockedMs      int64  `gorm:"column:locked_until"`
	DeliveredMs   int64  `gorm:"column:delivered_at"`
	FailedMs      int64  `gorm:"column:failed_at"`
	LastError     string `gorm:"column:last_error"`
}

func (eventDeliveryRow) TableName() string { return "event_deliveries" }

// ClaimEventDeliveries takes up to n due, unclaimed deliveries for lease.
// One UPDATE … RETURNING picks and locks them: on PostgreSQL its subquery
// skips rows another worker's claim holds (FOR UPDATE SKIP LOCKED), on
// SQLite the write lock serialises claimers. A worker that dies holding
// a claim loses it when the lease ends.
func (s *Store) ClaimEventDeliveries(ctx context.Context, now time.Time, lease time.Duration, n int) ([]EventDelivery, error) {
	if n <= 0 {
		n = 10
	}
	pick := "SELECT id FROM event_deliveries WHERE delivered_at = 0 AND failed_at = 0 AND next_attempt_at <= ? AND locked_until <= ? ORDER BY next_attempt_at, id LIMIT ?"
	if s.postgres() {
		pick += " FOR UPDATE SKIP LOCKED"
	}
	var out []EventDelivery
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		var claimed []eventDeliveryRow
		if err := tx.Raw("UPDATE event_deliveries SET locked_until = ?, attempts = attempts + 1 WHERE id IN ("+pick+
			") RETURNING id, audit_event_id, created_at, attempts", ms(now.Add(lease)), ms(now), ms(now), n).
			Scan(&claimed).Error; err != nil {
			return err
		}
		if len(claimed) == 0 {
			return nil
		}
		ids := make([]int64, len(claimed))
		for i, c := range claimed {
			ids[i] = c.AuditEventID
		}
		var events []auditEventRow
		if err := tx.Where("id IN ?", ids).Find(&events).Error; err != nil {
			return err
		}
		byID := make(map[int64]auditEventRow, len(events))
		for _, e := range events {
			byID[e.ID] = e
		}
		for _, c := range claimed {
			d := EventDelivery{ID: c.ID, CreatedAt: tm(c.CreatedMs), Attempts: c.Attempts}
			if r, ok := byID[c.AuditEventID]; ok { // else swept: Event stays zero
				e, err := r.domain()
				if err != nil {
					return err
				}
				d.Event = e
			}
			out = append(out, d)
		}
		return nil
	})
	if err != nil {
		return nil, fail("claim event deliveries", err)
	}
	// RETURNING gives no order: oldest first, as claimed.
	sortDeliveries(out)
	return out, nil
}

func sortDeliveries(ds []EventDelivery) {
	for i := 1; i < len(ds); i++ {
		for j := i; j > 0 && ds[j].ID < ds[j-1].ID; j-- {
			ds[j], ds[j-1] = ds[j-1], ds[j]
		}
	}
}

// FinishEventDelivery marks a delivery delivered, or failed for good.
func (s *Store) FinishEventDelivery(ctx context.Context, id int64, now time.Time, failed bool, lastErr string) error {
	set := map[string]any{"locked_until": 0, "last_error": lastErr}
	if failed {
		set["failed_at"] = ms(now)
	} else {
		set["delivered_at"] = ms(now)
	}
	return s.updateDelivery(ctx, "finish event delivery", id, set)
}

// RetryEventDelivery schedules another attempt at next.
func (s *Store) RetryEventDelivery(ctx context.Context, id int64, next time.Time, lastErr string) error {
	return s.updateDelivery(ctx, "retry event delivery", id,
		map[string]any{"locked_until": 0, "next_attempt_at": ms(next), "last_error": lastErr})
}

func (s *Store) updateDelivery(ctx context.Context, op string, id int64, set map[string]any) error {
	res := s.write(ctx).Model(&eventDeliveryRow{}).Where("id = ?", id).Updates(set)
	if res.Error != nil {
		return fail(op, res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// EventQueueStats counts deliveries not done and finds the oldest.
func (s *Store) EventQueueStats(ctx context.Context) (int, time.Time, error) {
	var r struct {
		N      int64
		Oldest sql.NullInt64
	}
	err := s.read(ctx).Raw("SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM event_deliveries WHERE delivered_at = 0 AND failed_at = 0").
		Scan(&r).Error
	if err != nil {
		return 0, time.Time{}, fail("event queue stats", err)
	}
	if !r.Oldest.Valid {
		return int(r.N), time.Time{}, nil
	}
	return int(r.N), tm(r.Oldest.Int64), nil
}

var errNoBackup = errors.New("storage: backup: only SQLite databases are backed up by latchkey; use pg_dump for PostgreSQL")
