package outbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/login/mail"
	"github.com/latchkey/latchkey/login/mail/mailsink"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
	"github.com/latchkey/latchkey/storage/storagetest"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// countingMailer records what it sent; fail, when set, decides failures.
type countingMailer struct {
	mu   sync.Mutex
	sent map[string]int // by recipient
	fail func(mail.Message) error
}

func (m *countingMailer) Send(_ context.Context, msg mail.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		if err := m.fail(msg); err != nil {
			return err
		}
	}
	if m.sent == nil {
		m.sent = map[string]int{}
	}
	m.sent[msg.To]++
	return nil
}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func testKeyring(t testing.TB) *keyring.Keyring {
	kr, err := keyring.New([]byte(strings.Repeat("k", keyring.MinSecretLen)))
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// enqueue seals and writes a notice to to, giving up after giveUp.
func enqueue(t testing.TB, s *storage.Store, kr *keyring.Keyring, now time.Time, to string, giveUp time.Duration) storage.OutboxMessage {
	t.Helper()
	row, err := SealRow(kr, storage.OutboxMessage{Kind: "notice", Purpose: "test", Recipient: to,
		CreatedAt: now, GiveUpAt: now.Add(giveUp)}, mail.Message{To: to, Subject: "Notice", Text: "Something changed.\n"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.EnqueueMail(context.Background(), row)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func forEachDialect(t *testing.T, fn func(t *testing.T, d storagetest.Dialect)) {
	for _, d := range storagetest.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, d)
		})
	}
}

// TestSMTPDownThenBack: with the mail server down the message waits and
// is retried with back-off; when the server is back, it goes out, once,
// and its content is dropped.
func TestSMTPDownThenBack(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		st := d.Open(t)
		kr := testKeyring(t)
		clk := &clock{now: time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)}
		sink, err := mailsink.Start("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := sink.Addr()
		mailer, err := mail.NewWithOptions(sink.URL(), "noreply@localhost", discard, mail.Options{Attempts: 1, DialTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		sink.Close() // down
		w, err := New(Config{}, Deps{Store: st, Keyring: kr, Mailer: mailer, Now: clk.Now, Logger: discard})
		if err != nil {
			t.Fatal(err)
		}
		m := enqueue(t, st, kr, clk.Now(), "ada@example.com", time.Hour)
		ctx := context.Background()
		for range 3 {
			if _, err := w.DeliverDue(ctx); err != nil {
				t.Fatal(err)
			}
			got, _ := st.GetOutboxMessage(ctx, m.ID)
			if got.State != storage.OutboxPending || got.Sealed == nil || got.LastError == "" {
				t.Fatalf("with the server down: %+v", got)
			}
			clk.Advance(10 * time.Minute) // past any back-off
		}
		back, err := mailsink.Start(addr)
		if err != nil {
			t.Fatal(err)
		}
		defer back.Close()
		if _, err := w.DeliverDue(ctx); err != nil {
			t.Fatal(err)
		}
		if back.Count("ada@example.com") != 1 {
			t.Fatalf("the mail did not go out when the server came back")
		}
		got, _ := st.GetOutboxMessage(ctx, m.ID)
		if got.State != storage.OutboxSent || got.Sealed != nil || got.Attempts != 4 {
			t.Fatalf("after delivery: %+v", got)
		}
		if _, err := w.DeliverDue(ctx); err != nil || back.Count("ada@example.com") != 1 {
			t.Fatalf("delivered again: %v, %d", err, back.Count("ada@example.com"))
		}
	})
}

// TestRetryBackoffAndGiveUp: each failure pushes the next attempt out
// (doubling); past GiveUpAt the message fails, loses its content and the
// failure is audited; a permanent refusal fails at once.
func TestRetryBackoffAndGiveUp(t *testing.T) {
	t.Parallel()
	st := storagetest.OpenSQLite(t)
	kr := testKeyring(t)
	clk := &clock{now: time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)}
	down := &countingMailer{fail: func(msg mail.Message) error {
		if strings.HasPrefix(msg.To, "gone") {
			return fmt.Errorf("rcpt: %w", &textproto.Error{Code: 550, Msg: "no such user"})
		}
		return errors.New("connection refused")
	}}
	w, _ := New(Config{RetryBase: time.Second, RetryMax: time.Minute}, Deps{Store: st, Keyring: kr, Mailer: down, Now: clk.Now, Logger: discard})
	ctx := context.Background()
	m := enqueue(t, st, kr, clk.Now(), "ada@example.com", 5*time.Minute)
	gone := enqueue(t, st, kr, clk.Now(), "gone@example.com", 5*time.Minute)
	var waits []time.Duration
	for {
		if _, err := w.DeliverDue(ctx); err != nil {
			t.Fatal(err)
		}
		got, _ := st.GetOutboxMessage(ctx, m.ID)
		if got.State != storage.OutboxPending {
			if got.State != storage.OutboxFailed || got.Sealed != nil {
				t.Fatalf("after giving up: %+v", got)
			}
			break
		}
		waits = append(waits, got.NextAt.Sub(clk.Now()))
		clk.Advance(got.NextAt.Sub(clk.Now()))
		if len(waits) > 20 {
			t.Fatal("never gave up")
		}
	}
	for i := 1; i < len(waits); i++ {
		if waits[i] < waits[i-1] && waits[i-1] < time.Minute {
			t.Errorf("back-off shrank: %v", waits)
		}
	}
	if waits[0] < time.Second || waits[0] > 2*time.Second || waits[len(waits)-1] > 72*time.Second {
		t.Errorf("back-off %v, want from 1 s doubling to about a minute", waits)
	}
	g, _ := st.GetOutboxMessage(ctx, gone.ID)
	if g.State != storage.OutboxFailed || g.Attempts != 1 || !strings.Contains(g.LastError, "550") {
		t.Fatalf("a permanent refusal: %+v", g)
	}
	evs, _ := st.ListAuditEvents(ctx, storage.AuditFilter{})
	failed := 0
	for _, e := range evs {
		if e.Event == "notice.send_failed" {
			failed++
		}
	}
	if failed != 2 {
		t.Errorf("%d send_failed audit events, want 2: %+v", failed, evs)
	}
}

// TestTwoWorkersNeverSendTwice: two workers on two instances of one
// database, delivering at once, send every message exactly once.
func TestTwoWorkersNeverSendTwice(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		u := d.URL(t)
		s1, s2 := storagetest.OpenURL(t, u), storagetest.OpenURL(t, u)
		kr := testKeyring(t)
		clk := &clock{now: time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)}
		const n = 60
		for i := range n {
			enqueue(t, s1, kr, clk.Now(), fmt.Sprintf("u%d@example.com", i), time.Hour)
		}
		mailer := &countingMailer{}
		var wg sync.WaitGroup
		for _, s := range []*storage.Store{s1, s2, s1, s2} {
			w, _ := New(Config{Batch: 3}, Deps{Store: s, Keyring: kr, Mailer: mailer, Now: clk.Now, Logger: discard})
			wg.Go(func() {
				if _, err := w.DeliverDue(context.Background()); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if len(mailer.sent) != n {
			t.Fatalf("%d recipients got mail, want %d", len(mailer.sent), n)
		}
		for to, k := range mailer.sent {
			if k != 1 {
				t.Errorf("%s got %d copies", to, k)
			}
		}
	})
}

// TestUnopenableMessageFails: a message that does not open (another
// secret key) fails instead of being retried for ever.
func TestUnopenableMessageFails(t *testing.T) {
	t.Parallel()
	st := storagetest.OpenSQLite(t)
	clk := &clock{now: time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)}
	m := enqueue(t, st, testKeyring(t), clk.Now(), "ada@example.com", time.Hour)
	other, _ := keyring.New([]byte(strings.Repeat("x", keyring.MinSecretLen)))
	w, _ := New(Config{}, Deps{Store: st, Keyring: other, Mailer: &countingMailer{}, Now: clk.Now, Logger: discard})
	if _, err := w.DeliverDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.GetOutboxMessage(context.Background(), m.ID); got.State != storage.OutboxFailed {
		t.Fatalf("state %s, want failed", got.State)
	}
}

// TestKickAndRun: Run delivers what was enqueued when kicked, and stops
// with its context.
func TestKickAndRun(t *testing.T) {
	t.Parallel()
	st := storagetest.OpenSQLite(t)
	kr := testKeyring(t)
	sink, err := mailsink.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	mailer, _ := mail.New(sink.URL(), "noreply@localhost", discard)
	w, err := New(Config{Poll: time.Hour}, Deps{Store: st, Keyring: kr, Mailer: mailer, Now: time.Now, Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{}, Deps{Store: st, Keyring: kr, Mailer: mailer, Logger: discard}); err == nil {
		t.Fatal("a worker without a clock")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	enqueue(t, st, kr, time.Now(), "ada@example.com", time.Hour)
	w.Kick()
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if _, err := sink.Wait(wctx, "ada@example.com"); err != nil {
		t.Fatalf("a kicked worker did not deliver: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestSealRow: a row gets a sortable id at its creation time before the
// seal, the seal opens only under that id, and sealing another message
// into the row keeps the id.
func TestSealRow(t *testing.T) {
	kr := testKeyring(t)
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	first := mail.Message{To: "a@example.com", Subject: "One", Text: "one\n"}
	row, err := SealRow(kr, storage.OutboxMessage{CreatedAt: now}, first)
	if err != nil {
		t.Fatal(err)
	}
	if row.ID == "" || row.ID[:10] != storage.NewSortableID(now)[:10] {
		t.Fatalf("id %q is not sortable at %v", row.ID, now)
	}
	if got, err := open(kr, row.ID, row.Sealed); err != nil || got != first {
		t.Fatalf("open = %+v, %v", got, err)
	}
	if _, err := open(kr, storage.NewSortableID(now), row.Sealed); err == nil {
		t.Fatal("the seal opened under another row's id")
	}
	second := mail.Message{To: "b@example.com", Subject: "Two", Text: "two\n"}
	again, err := SealRow(kr, row, second)
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != row.ID {
		t.Fatalf("resealing changed the id: %q → %q", row.ID, again.ID)
	}
	if got, err := open(kr, again.ID, again.Sealed); err != nil || got != second {
		t.Fatalf("open = %+v, %v", got, err)
	}
}

// expiryCounter counts the store's expiry rounds.
type expiryCounter struct {
	*storage.Store
	mu sync.Mutex
	n  int
}

func (c *expiryCounter) ExpireOutbox(ctx context.Context, now time.Time) ([]storage.OutboxMessage, error) {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return c.Store.ExpireOutbox(ctx, now)
}

// TestExpiryOncePerPoll: rounds kicked one after another (every mail
// enqueued kicks the worker) expire mail once per Poll, not each time; a
// message whose lease and time ran out on a worker that died is never
// claimed again, and is marked failed (its failure audited) by the first
// round a Poll after the last expiry.
func TestExpiryOncePerPoll(t *testing.T) {
	t.Parallel()
	st := storagetest.OpenSQLite(t)
	cs := &expiryCounter{Store: st}
	kr := testKeyring(t)
	clk := &clock{now: time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)}
	mailer := &countingMailer{}
	w, _ := New(Config{Poll: time.Minute, Lease: 2 * time.Minute}, Deps{Store: cs, Keyring: kr, Mailer: mailer, Now: clk.Now, Logger: discard})
	ctx := context.Background()
	round := func() {
		t.Helper()
		if _, err := w.DeliverDue(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for range 5 {
		round()
	}
	if cs.n != 1 {
		t.Fatalf("%d expiry rounds in five kicked rounds, want 1", cs.n)
	}
	// Another instance claims a message and dies with it.
	m := enqueue(t, st, kr, clk.Now(), "late@example.com", 90*time.Second)
	if got, err := st.ClaimOutbox(ctx, clk.Now(), 2*time.Minute, 10); err != nil || len(got) != 1 || got[0].ID != m.ID {
		t.Fatalf("claim: %v %v", got, err)
	}
	clk.Advance(59 * time.Second)
	round()
	clk.Advance(121 * time.Second) // the lease (2 min) and the time (90 s) ran out
	round()
	if cs.n != 2 {
		t.Fatalf("%d expiry rounds, want 2 (one per Poll)", cs.n)
	}
	got, _ := st.GetOutboxMessage(ctx, m.ID)
	if got.State != storage.OutboxFailed || got.Sealed != nil || mailer.sent["late@example.com"] != 0 {
		t.Fatalf("the message past its time: %+v, sent %d", got, mailer.sent["late@example.com"])
	}
	evs, _ := st.ListAuditEvents(ctx, storage.AuditFilter{})
	if len(evs) != 1 || evs[0].Event != "notice.send_failed" {
		t.Fatalf("audit %+v, want one notice.send_failed", evs)
	}
}
