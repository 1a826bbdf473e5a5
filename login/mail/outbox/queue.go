package outbox

import (
	"context"
	"errors"
	"time"

	"github.com/latchkey/latchkey/login/mail"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
)

// Queue is a mail.Mailer that writes each message to the outbox, sealed,
// and wakes a worker: for mail that has no row of its own to be written
// with (the administrator's notices and set-password links). Send
// succeeds once the message is queued; the worker delivers it with the
// same retries and back-off as every other mail.
type Queue struct {
	Store interface {
		EnqueueMail(ctx context.Context, m storage.OutboxMessage) (storage.OutboxMessage, error)
	}
	Keyring *keyring.Keyring
	// Worker is woken after each message; nil: a worker finds it when it
	// next looks.
	Worker interface{ Kick() }
	// Kind names the messages in `latchkey mail list` and the audit
	// events of their delivery ("admin" when empty).
	Kind string
	// Now is the clock of the rows' times (required).
	Now func() time.Time
	// GiveUp is how long delivery is tried (default a day).
	GiveUp time.Duration
}

// Send queues m.
func (q Queue) Send(ctx context.Context, m mail.Message) error {
	if q.Store == nil {
		return errors.New("outbox: queue without a store")
	}
	row, err := q.Row(m)
	if err != nil {
		return err
	}
	if _, err := q.Store.EnqueueMail(ctx, row); err != nil {
		return err
	}
	q.Kick()
	return nil
}

// Row is m as the outbox row Send would write, sealed, for a caller that
// writes it in the transaction of the change it tells of (a
// storage.Revocation's Mail) and then calls Kick: the mail goes out if
// and only if the change stands.
func (q Queue) Row(m mail.Message) (storage.OutboxMessage, error) {
	if q.Keyring == nil {
		return storage.OutboxMessage{}, errors.New("outbox: queue without a keyring")
	}
	if q.Now == nil {
		return storage.OutboxMessage{}, errors.New("outbox: queue without a clock")
	}
	now := q.Now()
	giveUp := q.GiveUp
	if giveUp <= 0 {
		giveUp = 24 * time.Hour
	}
	kind := q.Kind
	if kind == "" {
		kind = "admin"
	}
	return SealRow(q.Keyring, storage.OutboxMessage{Kind: kind, Purpose: m.Subject, Recipient: m.To,
		CreatedAt: now, GiveUpAt: now.Add(giveUp)}, m)
}

// Kick wakes the worker (if any) to deliver what was queued.
func (q Queue) Kick() {
	if q.Worker != nil {
		q.Worker.Kick()
	}
}
