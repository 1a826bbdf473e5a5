package admin

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/config"
	"github.com/latchkey/latchkey/login/mail"
	"github.com/latchkey/latchkey/login/mail/outbox"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// mailLessStore is a store on which a mail written on its own, outside
// the transaction of the change it tells of, fails — as it would after a
// crash or an outage between the change and the mail. revokeErr, when
// set, makes the change itself fail.
type mailLessStore struct {
	*storage.Store
	revokeErr error
}

func (mailLessStore) EnqueueMail(context.Context, storage.OutboxMessage) (storage.OutboxMessage, error) {
	return storage.OutboxMessage{}, errors.New("mail written outside the change's transaction")
}

func (s mailLessStore) RevokeUserGrants(ctx context.Context, userID string, r storage.Revocation, now time.Time) (storage.Revoked, error) {
	if s.revokeErr != nil {
		return storage.Revoked{}, s.revokeErr
	}
	return s.Store.RevokeUserGrants(ctx, userID, r, now)
}

// recorder is a mail server that keeps what it is sent.
type recorder struct {
	mu   sync.Mutex
	sent []mail.Message
}

func (r *recorder) Send(_ context.Context, m mail.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, m)
	return nil
}

// kicks counts the worker's wake-ups.
type kicks struct{ n int }

func (k *kicks) Kick() { k.n++ }

// TestSecondStepResetNoticeInItsTransaction: the support desk's 2-step
// reset writes the user's notice in the reset's own transaction — it
// reaches the user even when a separate mail write would have failed
// after the reset — and a reset that fails sends nothing.
func TestSecondStepResetNoticeInItsTransaction(t *testing.T) {
	for _, d := range storagetest.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			ctx := t.Context()
			st := d.Open(t)
			cfg, _, err := config.Load("", []string{"LATCHKEY_DATA_DIR=" + t.TempDir(), "LATCHKEY_SECRET_KEY=" + strings.Repeat("a7", 32),
				"LATCHKEY_ISSUER=https://id.example.com", "LATCHKEY_SMTP_URL=smtp://127.0.0.1:1"})
			if err != nil {
				t.Fatal(err)
			}
			kr, err := keyring.New(cfg.SecretKey.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			now := time.Date(2026, 12, 3, 15, 0, 0, 0, time.UTC)
			clock := func() time.Time { return now }
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			u, err := st.CreateUser(ctx, storage.User{Email: "ada@example.com", Name: "Ada", EmailVerified: true, CreatedAt: now, UpdatedAt: now})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.CreateSession(ctx, storage.Session{UserID: u.ID, TokenHash: []byte("session-token-hash-0123456789abcd"), CreatedAt: now, LastSeenAt: now, AuthTime: now}); err != nil {
				t.Fatal(err)
			}

			for _, c := range []struct {
				name      string
				revokeErr error
			}{
				{"reset fails", errors.New("the database went away")},
				{"reset stands", nil},
			} {
				store := mailLessStore{Store: st, revokeErr: c.revokeErr}
				k := &kicks{}
				svc, err := New(Deps{Store: store, Keyring: kr, Config: cfg, Now: clock, Logger: log,
					Outbox: outbox.Queue{Store: store, Keyring: kr, Worker: k, Now: clock}})
				if err != nil {
					t.Fatal(err)
				}
				_, mailed, err := svc.ResetSecondStep(ctx, CommandLine, u.ID)
				rows, lerr := st.ListOutbox(ctx, storage.OutboxFilter{})
				if lerr != nil {
					t.Fatal(lerr)
				}
				if c.revokeErr != nil {
					if err == nil || mailed || len(rows) != 0 || k.n != 0 {
						t.Fatalf("%s: err %v, mailed %v, %d outbox rows, %d kicks; want an error and no mail", c.name, err, mailed, len(rows), k.n)
					}
					continue
				}
				if err != nil || !mailed || len(rows) != 1 || k.n != 1 {
					t.Fatalf("%s: err %v, mailed %v, %d outbox rows, %d kicks; want the notice queued with the reset", c.name, err, mailed, len(rows), k.n)
				}
				if rows[0].UserID != u.ID || rows[0].Purpose != "notice.second_step_reset" || rows[0].Recipient != u.Email {
					t.Fatalf("%s: outbox row %+v", c.name, rows[0])
				}
				if ss, err := st.ListSessions(ctx, u.ID); err != nil || len(ss) != 0 {
					t.Fatalf("%s: sessions after the reset: %d (%v)", c.name, len(ss), err)
				}
				// The worker delivers it: the notice, to the user.
				sink := &recorder{}
				w, err := outbox.New(outbox.Config{}, outbox.Deps{Store: st, Keyring: kr, Mailer: sink, Now: clock, Logger: log})
				if err != nil {
					t.Fatal(err)
				}
				if n, err := w.DeliverDue(ctx); err != nil || n != 1 || len(sink.sent) != 1 {
					t.Fatalf("%s: delivered %d (%v), sent %d", c.name, n, err, len(sink.sent))
				}
				if m := sink.sent[0]; m.To != u.Email || !strings.Contains(m.Text, "2-step") {
					t.Fatalf("%s: sent %q to %s:\n%s", c.name, m.Subject, m.To, m.Text)
				}
			}
		})
	}
}
