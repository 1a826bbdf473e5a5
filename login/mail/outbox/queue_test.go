package outbox

import (
	"testing"
	"time"

	"github.com/latchkey/latchkey/login/mail"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

type kickCount struct{ n int }

func (k *kickCount) Kick() { k.n++ }

// TestQueue: Send writes the message sealed, on the queue's clock, and
// wakes the worker, which delivers it; Row makes the same row without
// writing it; a queue without a clock, keyring or store refuses and
// writes nothing.
func TestQueue(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		ctx := t.Context()
		s := d.Open(t)
		kr := testKeyring(t)
		c := &clock{now: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)}
		k := &kickCount{}
		msg := mail.Message{To: "ada@example.com", Subject: "Your set-password link", Text: "Open it.\n"}

		for name, q := range map[string]Queue{
			"no clock":   {Store: s, Keyring: kr},
			"no keyring": {Store: s, Now: c.Now},
			"no store":   {Keyring: kr, Now: c.Now},
		} {
			if err := q.Send(ctx, msg); err == nil {
				t.Errorf("%s: Send succeeded", name)
			}
		}
		if rows, _ := s.ListOutbox(ctx, storage.OutboxFilter{}); len(rows) != 0 {
			t.Fatalf("refused sends wrote %d rows", len(rows))
		}

		q := Queue{Store: s, Keyring: kr, Worker: k, Now: c.Now, Kind: "admin"}
		row, err := q.Row(msg)
		if err != nil || row.CreatedAt != c.Now() || row.GiveUpAt != c.Now().Add(24*time.Hour) || row.Recipient != msg.To || len(row.Sealed) == 0 {
			t.Fatalf("Row = %+v, %v", row, err)
		}
		if rows, _ := s.ListOutbox(ctx, storage.OutboxFilter{}); len(rows) != 0 || k.n != 0 {
			t.Fatalf("Row wrote %d rows, kicked %d times", len(rows), k.n)
		}
		if err := q.Send(ctx, msg); err != nil {
			t.Fatal(err)
		}
		rows, err := s.ListOutbox(ctx, storage.OutboxFilter{})
		if err != nil || len(rows) != 1 || k.n != 1 || rows[0].Kind != "admin" || !rows[0].CreatedAt.Equal(c.Now()) {
			t.Fatalf("after Send: %d rows (%v), %d kicks: %+v", len(rows), err, k.n, rows)
		}
		sink := &countingMailer{}
		w, err := New(Config{}, Deps{Store: s, Keyring: kr, Mailer: sink, Now: c.Now, Logger: discard})
		if err != nil {
			t.Fatal(err)
		}
		if n, err := w.DeliverDue(ctx); n != 1 || err != nil || sink.sent[msg.To] != 1 {
			t.Fatalf("delivered %d (%v), sent %v", n, err, sink.sent)
		}
	})
}
