package storage

// The mail outbox: every mail is a row written in the same transaction as
// what it belongs to (a code, a change), delivered by a worker on any
// instance. A claim is one UPDATE … RETURNING of the oldest due rows (FOR
// UPDATE SKIP LOCKED on PostgreSQL, so two instances never claim one row;
// SQLite has one writer); a claim holds a lease, and finishing a message
// is conditional on the claim still being the one that holds it, so a
// worker that stalled past its lease cannot record over the next one.

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"gorm.io/gorm"
)

// EnqueueMail writes one message (ID: a NewSortableID when empty; State
// defaults to OutboxPending, NextAt to CreatedAt).
func (s *Store) EnqueueMail(ctx context.Context, m OutboxMessage) (OutboxMessage, error) {
	m = outboxDefaults(m)
	if m.Recipient == "" && m.State != OutboxVoid {
		return OutboxMessage{}, invalid("enqueue mail: no recipient")
	}
	row := outboxToRow(m)
	if err := s.write(ctx).Exec(outboxInsert, row.values()...).Error; err != nil {
		return OutboxMessage{}, fail("enqueue mail", err)
	}
	return row.domain(), nil
}

const outboxInsert = `INSERT INTO mail_outbox (` + outboxColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

func outboxDefaults(m OutboxMessage) OutboxMessage {
	if m.ID == "" {
		m.ID = NewSortableID(m.CreatedAt)
	}
	if m.State == "" {
		m.State = OutboxPending
	}
	if m.NextAt.IsZero() {
		m.NextAt = m.CreatedAt
	}
	if m.State == OutboxVoid {
		m.Sealed, m.DoneAt = nil, m.CreatedAt
	}
	return m
}

// ClaimOutbox claims up to limit messages due at now — pending with
// NextAt ≤ now, or sending with a lease that ran out (a worker died) —
// that have not reached GiveUpAt, oldest first: State=sending,
// LeaseUntil=now+lease, Attempts+1, a fresh Claim. One statement; on
// PostgreSQL the rows are picked FOR UPDATE SKIP LOCKED, so concurrent
// claims on any number of instances never return one row twice.
func (s *Store) ClaimOutbox(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]OutboxMessage, error) {
	skip := ""
	if s.postgres() {
		skip = " FOR UPDATE SKIP LOCKED"
	}
	n := ms(now)
	var rows []outboxRow
	err := s.write(ctx).Raw(`UPDATE mail_outbox SET state = ?, claim = ?, lease_until = ?, attempts = attempts + 1
		WHERE id IN (SELECT id FROM mail_outbox
			WHERE ((state = ? AND next_at <= ?) OR (state = ? AND lease_until < ?)) AND give_up_at >= ?
			ORDER BY next_at, id LIMIT ?`+skip+`)
		RETURNING `+outboxColumns,
		OutboxSending, NewID(), n+durMs(lease), OutboxPending, n, OutboxSending, n, n, max(limit, 1)).Scan(&rows).Error
	if err != nil {
		return nil, fail("claim outbox", err)
	}
	out := make([]OutboxMessage, len(rows))
	for i, r := range rows {
		out[i] = r.domain()
	}
	return out, nil
}

// FinishOutbox records how the attempt of claim on message id ended:
// sent (the message is dropped), to be retried at r.Retry, or failed
// (dropped; a code it carried dies). The code's MailState follows, in the
// same transaction. ErrConflict if the claim no longer holds the message
// (its lease ran out and another worker claimed it, or it was finished).
func (s *Store) FinishOutbox(ctx context.Context, id, claim string, r OutboxResult) error {
	state, mailState := OutboxFailed, MailFailed
	switch {
	case r.Sent:
		state, mailState = OutboxSent, MailSent
	case !r.Retry.IsZero():
		state, mailState = OutboxPending, MailRetrying
	}
	at := usedMs(r.At)
	var done int64
	if state != OutboxPending {
		done = at
	}
	upd, err := s.hot.get(ctx, `UPDATE mail_outbox SET state = ?, next_at = ?, lease_until = 0, done_at = ?, last_error = ?,
			sealed = CASE WHEN ? THEN sealed ELSE NULL END
		WHERE id = ? AND claim = ? AND state = ?
		RETURNING email_code_id`)
	if err != nil {
		return fail("finish outbox", err)
	}
	code, err := s.hot.get(ctx, `UPDATE email_codes SET mail_state = ?,
			dead_at = CASE WHEN ? AND dead_at = 0 THEN ? ELSE dead_at END
		WHERE id = ? AND mail_state <> ?`)
	if err != nil {
		return fail("finish outbox", err)
	}
	tx, err := s.hot.db.BeginTx(ctx, nil)
	if err != nil {
		return fail("finish outbox", err)
	}
	defer func() { _ = tx.Rollback() }()
	var codeID string
	err = tx.StmtContext(ctx, upd).QueryRowContext(ctx, state, ms(r.Retry), done, truncate(r.Error, 500),
		state == OutboxPending, id, claim, OutboxSending).Scan(&codeID)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrConflict
	}
	if err != nil {
		return fail("finish outbox", err)
	}
	if codeID != "" {
		if _, err := tx.StmtContext(ctx, code).ExecContext(ctx, mailState, state == OutboxFailed, at, codeID, MailSuperseded); err != nil {
			return fail("finish outbox", err)
		}
	}
	return fail("finish outbox", tx.Commit())
}

// ExpireOutbox fails every message that reached its GiveUpAt before now
// unsent (pending, or sending with a lease that ran out), dropping the
// message and killing a code it carried, and returns them (without
// Sealed) so the caller can tell someone.
func (s *Store) ExpireOutbox(ctx context.Context, now time.Time) ([]OutboxMessage, error) {
	n := ms(now)
	var rows []outboxRow
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		if err := tx.Raw(`UPDATE mail_outbox SET state = ?, sealed = NULL, done_at = ?, lease_until = 0,
				last_error = CASE WHEN last_error = '' THEN 'not delivered in time' ELSE last_error END
			WHERE (state = ? OR (state = ? AND lease_until < ?)) AND give_up_at < ?
			RETURNING `+outboxColumns, OutboxFailed, n, OutboxPending, OutboxSending, n, n).Scan(&rows).Error; err != nil {
			return err
		}
		for _, r := range rows {
			if r.EmailCodeID == "" {
				continue
			}
			if err := tx.Exec(`UPDATE email_codes SET mail_state = ?, dead_at = CASE WHEN dead_at = 0 THEN ? ELSE dead_at END
				WHERE id = ? AND mail_state <> ?`, MailFailed, n, r.EmailCodeID, MailSuperseded).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fail("expire outbox", err)
	}
	out := make([]OutboxMessage, len(rows))
	for i, r := range rows {
		out[i] = r.domain()
		out[i].Sealed = nil
	}
	return out, nil
}

// ListOutbox lists messages, newest first, without their Sealed content
// (operators see who, what and how it went; never the mail).
func (s *Store) ListOutbox(ctx context.Context, f OutboxFilter) ([]OutboxMessage, error) {
	q := s.read(ctx).Model(&outboxRow{}).Omit("sealed")
	if len(f.States) > 0 {
		q = q.Where("state IN ?", f.States)
	}
	var rows []outboxRow
	if err := q.Order("created_at DESC, id DESC").Limit(limit(f.Limit)).Find(&rows).Error; err != nil {
		return nil, fail("list outbox", err)
	}
	out := make([]OutboxMessage, len(rows))
	for i, r := range rows {
		out[i] = r.domain()
		out[i].Sealed = nil
	}
	return out, nil
}

// GetOutboxMessage returns one message (with Sealed while it has one).
func (s *Store) GetOutboxMessage(ctx context.Context, id string) (OutboxMessage, error) {
	row, err := take[outboxRow](s.read(ctx), "id = ?", id)
	if err != nil {
		return OutboxMessage{}, fail("get outbox message", err)
	}
	return row.domain(), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 { // not in the middle of a character
		n--
	}
	return s[:n]
}

// MailQueueStats is the outbox's backlog: messages pending or being sent,
// and when the oldest of them was queued (zero when none).
func (s *Store) MailQueueStats(ctx context.Context) (int, time.Time, error) {
	var r struct {
		N      int64
		Oldest sql.NullInt64
	}
	err := s.read(ctx).Raw("SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM mail_outbox WHERE state IN (?, ?)",
		OutboxPending, OutboxSending).Scan(&r).Error
	if err != nil {
		return 0, time.Time{}, fail("mail queue stats", err)
	}
	if !r.Oldest.Valid {
		return int(r.N), time.Time{}, nil
	}
	return int(r.N), tm(r.Oldest.Int64), nil
}
