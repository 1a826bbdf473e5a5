// Package outbox delivers Latchkey's mail from the durable outbox table
// (storage.OutboxMessage): every code, notice and sign-up warning is
// written there in the same transaction as what it belongs to, and a
// Worker on any instance sends it — so a request never waits for a mail
// server, a mail server that is down delays mail instead of losing it,
// and a message goes out once however many instances run.
//
// The model is Ory Kratos' courier (courier/courier_dispatcher.go,
// persistence/sql/persister_courier.go), with what it lacks:
//
//   - Claims cannot collide. Kratos selects "queued" rows and then marks
//     them "processing" in a second statement, so two instances can both
//     take a message; here a claim is one UPDATE … WHERE id IN (SELECT …
//     FOR UPDATE SKIP LOCKED) RETURNING (storage.ClaimOutbox).
//   - A worker that dies does not strand its messages. Kratos leaves them
//     "processing" for ever; here a claim is a lease, and a message whose
//     lease ran out is claimed again. Recording the outcome is
//     conditional on the claim, so a worker that stalled past its lease
//     cannot overwrite the next worker's result.
//   - Each message backs off on its own (5 s, 10 s, 20 s … up to 5
//     minutes, with a little jitter per message), instead of one back-off
//     for the whole queue, and one failing message does not hold up the
//     rest of the batch.
//   - Giving up is a time, not a count: a code's mail gives up when the
//     code expires (no point delivering it after), a notice after a day.
//     Permanent refusals (5xx, a recipient that cannot be addressed) fail
//     at once.
//   - Secrets do not stay at rest: the message is sealed with the keyring
//     (AES-GCM, bound to its row id) and dropped once it is sent, has
//     failed or was superseded by a newer code. Kratos keeps bodies with
//     codes and links in clear text.
//   - The sender learns the outcome: a code's state (sent, retrying,
//     failed) is written on the code row with the outcome, and the code
//     page shows it; giving up is audited.
//
// Exactly once, precisely: a message is sent at most once per claim, and
// claimed again only when its lease ran out without an outcome — a
// worker that crashed between the mail server's acceptance and recording
// it is the one case that sends a message twice. SendTimeout is kept well
// under Lease so that a slow server cannot cause it.
//
// The package knows storage (the outbox rows), the keyring (sealing) and
// login/mail (rendering is the caller's; sending is mail.Mailer's); it
// knows nothing of HTTP or of what a message means.
package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/latchkey/latchkey/login/mail"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
)

// Seal seals a rendered message for the outbox row id.
func Seal(kr *keyring.Keyring, id string, m mail.Message) ([]byte, error) {
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return kr.Seal(raw, ad(id)), nil
}

func ad(id string) []byte { return []byte(keyring.PurposeOutbox + ":" + id) }

// SealRow is row with m sealed into it for delivery. The seal is bound to
// the row's id, so the id is fixed first: when empty, a sortable id at
// row.CreatedAt (what the store would give it). Sealing again (another
// message for the same row) keeps the id.
func SealRow(kr *keyring.Keyring, row storage.OutboxMessage, m mail.Message) (storage.OutboxMessage, error) {
	if row.ID == "" {
		row.ID = storage.NewSortableID(row.CreatedAt)
	}
	sealed, err := Seal(kr, row.ID, m)
	if err != nil {
		return storage.OutboxMessage{}, err
	}
	row.Sealed = sealed
	return row, nil
}

func open(kr *keyring.Keyring, id string, sealed []byte) (mail.Message, error) {
	raw, err := kr.Open(sealed, ad(id))
	if err != nil {
		return mail.Message{}, err
	}
	var m mail.Message
	err = json.Unmarshal(raw, &m)
	return m, err
}

// Store is what the worker needs from storage (*storage.Store satisfies it).
type Store interface {
	ClaimOutbox(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]storage.OutboxMessage, error)
	FinishOutbox(ctx context.Context, id, claim string, r storage.OutboxResult) error
	ExpireOutbox(ctx context.Context, now time.Time) ([]storage.OutboxMessage, error)
	CreateAuditEvent(ctx context.Context, e storage.AuditEvent) error
	MailQueueStats(ctx context.Context) (pending int, oldest time.Time, err error)
}

var _ Store = (*storage.Store)(nil)

// Config tunes the worker; the zero value gives the defaults.
type Config struct {
	// Poll is how often an idle worker looks for mail enqueued on other
	// instances (its own instance wakes it with Kick). Default 5s.
	Poll time.Duration
	// Lease is how long a claim holds a message. Default 2 minutes.
	Lease time.Duration
	// SendTimeout bounds one delivery; it must stay well under Lease.
	// Default 30s.
	SendTimeout time.Duration
	// Batch is how many messages one claim takes. Default 10.
	Batch int
	// RetryBase and RetryMax shape the back-off of one message: RetryBase
	// after the first failure, doubling, at most RetryMax. Defaults 5s, 5m.
	RetryBase, RetryMax time.Duration
}

// Deps are the collaborators.
type Deps struct {
	Store   Store
	Keyring *keyring.Keyring
	Mailer  mail.Mailer
	Now     func() time.Time // required
	Logger  *slog.Logger
	// Metrics counts code mails sent and given up (creds counts them
	// queued); nil: nothing.
	Metrics Metrics
}

// Metrics is what the worker counts: a code mail of a purpose reaching a
// stage, "sent" or "failed" (given up).
type Metrics interface {
	EmailCode(purpose, stage string)
}

type noMetrics struct{}

func (noMetrics) EmailCode(string, string) {}

// Worker delivers the outbox. Run it on every instance.
type Worker struct {
	cfg  Config
	d    Deps
	kick chan struct{}

	mu         sync.Mutex
	nextExpiry time.Time // the first round at or after it expires mail
}

// New builds a worker.
func New(cfg Config, d Deps) (*Worker, error) {
	if d.Store == nil || d.Keyring == nil || d.Mailer == nil || d.Now == nil {
		return nil, errors.New("outbox: store, keyring, mailer and clock are required")
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Metrics == nil {
		d.Metrics = noMetrics{}
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 5 * time.Second
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 2 * time.Minute
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = 30 * time.Second
	}
	if cfg.SendTimeout > cfg.Lease/2 {
		cfg.SendTimeout = cfg.Lease / 2
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 10
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = 5 * time.Second
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 5 * time.Minute
	}
	return &Worker{cfg: cfg, d: d, kick: make(chan struct{}, 1)}, nil
}

// Kick wakes the worker now (mail was just enqueued). It never blocks.
func (w *Worker) Kick() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends: whenever kicked, every Poll, and at once
// again while there is more than a batch.
func (w *Worker) Run(ctx context.Context) error {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.kick:
		case <-t.C:
		}
		n, err := w.DeliverDue(ctx)
		if err != nil && ctx.Err() == nil {
			w.d.Logger.Error("outbox: delivery round", "err", err)
		}
		if n >= w.cfg.Batch {
			w.Kick() // more may be waiting
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(w.cfg.Poll)
	}
}

// DeliverDue does one round: it fails the messages that ran out of time
// (at most once per Poll: a write transaction each round of a sign-in
// storm, every mail kicking the worker, bought nothing; a claim never
// takes a message past its time, so it is only marked failed up to Poll
// later), then claims and delivers due messages until none is left or a
// claim brings less than a batch. It returns how many it tried to
// deliver.
func (w *Worker) DeliverDue(ctx context.Context) (int, error) {
	if now := w.d.Now(); w.expiryDue(now) {
		expired, err := w.d.Store.ExpireOutbox(ctx, now)
		if err != nil {
			return 0, err
		}
		for _, m := range expired {
			w.failed(ctx, m, m.LastError)
		}
	}
	total := 0
	for {
		msgs, err := w.d.Store.ClaimOutbox(ctx, w.d.Now(), w.cfg.Lease, w.cfg.Batch)
		if err != nil {
			return total, err
		}
		for _, m := range msgs {
			w.deliver(ctx, m)
		}
		total += len(msgs)
		if len(msgs) < w.cfg.Batch || ctx.Err() != nil {
			return total, nil
		}
	}
}

// expiryDue reports whether this round expires mail, and if so sets the
// next one a Poll later.
func (w *Worker) expiryDue(now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if now.Before(w.nextExpiry) {
		return false
	}
	w.nextExpiry = now.Add(w.cfg.Poll)
	return true
}

// deliver sends one claimed message and records the outcome.
func (w *Worker) deliver(ctx context.Context, m storage.OutboxMessage) {
	var sendErr error
	msg, err := open(w.d.Keyring, m.ID, m.Sealed)
	if err != nil {
		// A changed secret_key, or a row not ours: nothing can send it.
		sendErr = errors.New("the sealed message does not open")
	} else {
		sctx, cancel := context.WithTimeout(ctx, w.cfg.SendTimeout)
		sendErr = w.d.Mailer.Send(sctx, msg)
		cancel()
	}
	now := w.d.Now()
	res := storage.OutboxResult{Sent: sendErr == nil, At: now}
	fctx := context.WithoutCancel(ctx)
	if sendErr != nil {
		res.Error = sendErr.Error()
		if !mail.Permanent(sendErr) && err == nil {
			if at := now.Add(w.backoff(m)); !at.After(m.GiveUpAt) {
				res.Retry = at
			}
		}
	}
	if ferr := w.d.Store.FinishOutbox(fctx, m.ID, m.Claim, res); ferr != nil {
		// ErrConflict: the lease ran out and another worker has it now.
		w.d.Logger.Warn("outbox: recording an attempt", "id", m.ID, "err", ferr)
		return
	}
	switch {
	case res.Sent:
		w.count(m, "sent")
		w.audit(fctx, m, m.Kind+".sent", "")
	case !res.Retry.IsZero():
		w.d.Logger.Warn("outbox: delivery failed, will retry", "id", m.ID, "kind", m.Kind, "attempt", m.Attempts,
			"retry_at", res.Retry, "err", sendErr)
	default:
		w.failed(fctx, m, res.Error)
	}
}

func (w *Worker) failed(ctx context.Context, m storage.OutboxMessage, why string) {
	w.d.Logger.Error("outbox: gave up on a mail", "id", m.ID, "kind", m.Kind, "attempts", m.Attempts, "err", why)
	w.count(m, "failed")
	w.audit(ctx, m, m.Kind+".send_failed", why)
}

func (w *Worker) audit(ctx context.Context, m storage.OutboxMessage, event, why string) {
	reason := m.Purpose
	if why != "" {
		reason += ": " + why
	}
	if len(reason) > 300 {
		reason = reason[:300]
	}
	if err := w.d.Store.CreateAuditEvent(ctx, storage.AuditEvent{At: w.d.Now(), UserID: m.UserID, Email: m.Recipient,
		Event: event, Reason: reason}); err != nil {
		w.d.Logger.Error("outbox: audit", "err", err)
	}
}

// count counts a code mail's outcome (the purpose of a code mail is one of
// creds' few purposes, so the label stays small).
func (w *Worker) count(m storage.OutboxMessage, stage string) {
	if m.Kind == "code" {
		w.d.Metrics.EmailCode(m.Purpose, stage)
	}
}

// OutboxStats is the backlog (metrics.OutboxStats): messages pending or
// being sent, and when the oldest was queued.
func (w *Worker) OutboxStats(ctx context.Context) (int, time.Time, error) {
	return w.d.Store.MailQueueStats(ctx)
}

// backoff is the wait before the next attempt of m (it has made
// m.Attempts): RetryBase·2^(attempts−1), at most RetryMax, stretched by up
// to a fifth by a jitter of its own so that messages failed together do
// not come back together.
func (w *Worker) backoff(m storage.OutboxMessage) time.Duration {
	d := w.cfg.RetryBase
	for k := m.Attempts; k > 1 && d < w.cfg.RetryMax; k-- {
		d *= 2
	}
	d = min(d, w.cfg.RetryMax)
	h := fnv.New32a()
	_, _ = h.Write([]byte(m.ID))
	return d + d*time.Duration(h.Sum32()%200)/1000
}
