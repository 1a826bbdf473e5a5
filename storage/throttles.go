package storage

// Failure counters for rate limiting. The policy (windows, limits) is the
// caller's; the store only makes the read-modify-write atomic.

import (
	"context"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// GetThrottle returns the counter for key; ErrNotFound if there is none
// (callers treat that as a zero Throttle).
func (s *Store) GetThrottle(ctx context.Context, key string) (Throttle, error) {
	row, err := take[throttleRow](s.read(ctx), "throttle_key = ?", key)
	if err != nil {
		return Throttle{}, fail("get throttle", err)
	}
	return row.domain(), nil
}

// UpdateThrottle runs fn on the counter for key (zero when absent) and
// saves it, in one transaction. A missing row is first inserted as zero
// (ON CONFLICT DO NOTHING) so that there is always a row to lock: two
// concurrent first failures then serialise on it instead of racing to
// insert.
func (s *Store) UpdateThrottle(ctx context.Context, key string, fn func(*Throttle) error) (Throttle, error) {
	var out Throttle
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		zero := throttleRow{Key: key}
		if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&zero).Error; err != nil {
			return err
		}
		var row throttleRow
		if err := s.forUpdate(tx).Where("throttle_key = ?", key).Take(&row).Error; err != nil {
			return err
		}
		v := row.domain()
		if err := runFn(fn(&v)); err != nil {
			return err
		}
		v.Key = key
		nr := throttleToRow(v)
		if err := tx.Select("*").Updates(&nr).Error; err != nil {
			return err
		}
		out = nr.domain()
		return nil
	})
	return out, fail("update throttle", err)
}

// DeleteThrottle forgets the counter (absent is fine).
func (s *Store) DeleteThrottle(ctx context.Context, key string) error {
	return fail("delete throttle", s.write(ctx).Where("throttle_key = ?", key).Delete(&throttleRow{}).Error)
}
