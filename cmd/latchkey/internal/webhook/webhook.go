// Package webhook delivers security events to the operator's webhook
// (events.webhook_url): sign-in successes and failures, lockouts, 2-step
// and password changes, administrative actions, refresh-token reuse.
//
// Delivery is durable and in the background: storage queues a delivery
// in the transaction that writes the audit event (so nothing committed is
// lost, nothing rolled back is sent), and a Deliverer on every instance
// claims due deliveries (one claimer per row: FOR UPDATE SKIP LOCKED on
// PostgreSQL), POSTs them, and finishes or reschedules them with
// exponential back-off; after MaxAttempts it gives up and logs.
//
// Each POST carries one event as JSON and the header
//
//	Latchkey-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//
// so the receiver can check that the event is ours and fresh (Verify is
// the reference check). Delivery is at least once: a receiver dedupes by
// the body's "id".
//
// It lives under cmd/latchkey because it is wiring of the binary (a
// storage queue, an HTTP client, the clock); serve starts its Run next to
// the key refresh and the sweep.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey/storage"
)

// SignatureHeader carries the signature of a delivery.
const SignatureHeader = "Latchkey-Signature"

// securityPrefixes are the audit events the webhook receives (see
// IsSecurityEvent).
var securityPrefixes = []string{
	"signin.", "secondfactor.failure", "password.", "totp.", "backupcode.", "passkey.",
	"user.", "client.", "org.", "keys.", "refresh.reused", "code.reused", "sessions.revoked", "sso.failure",
	"account.reconfirm_failed",
}

// IsSecurityEvent says whether an audit event goes to the webhook: sign-in
// outcomes and lockouts, failed second steps, password and 2-step
// changes, administrative actions on users, clients, organisations and
// keys, refresh-token reuse, SSO failures. Routine events (codes sent,
// sign-outs, privacy changes) stay in the audit trail only.
func IsSecurityEvent(event string) bool {
	for _, p := range securityPrefixes {
		if strings.HasPrefix(event, p) {
			return true
		}
	}
	return false
}

// Store is the delivery queue (*storage.Store).
type Store interface {
	ClaimEventDeliveries(ctx context.Context, now time.Time, lease time.Duration, n int) ([]storage.EventDelivery, error)
	FinishEventDelivery(ctx context.Context, id int64, now time.Time, failed bool, lastErr string) error
	RetryEventDelivery(ctx context.Context, id int64, next time.Time, lastErr string) error
	EventQueueStats(ctx context.Context) (pending int, oldest time.Time, err error)
}

// Metrics counts delivery results ("delivered", "retry", "failed").
type Metrics interface{ WebhookDelivery(result string) }

// Options configure a Deliverer.
type Options struct {
	URL    string
	Secret string
	Store  Store
	// Client posts the events (default: a client with a 10 s timeout).
	Client *http.Client
	Now    func() time.Time
	Logger *slog.Logger
	// Metrics counts results; nil: none.
	Metrics Metrics
	// Poll is how often Run looks for due deliveries (default 2 s).
	Poll time.Duration
	// MaxAttempts: after this many failed attempts a delivery is given up
	// (default 12: about a day of back-off).
	MaxAttempts int
}

// Deliverer posts queued events.
type Deliverer struct{ o Options }

// New builds a Deliverer.
func New(o Options) (*Deliverer, error) {
	if o.URL == "" || o.Secret == "" || o.Store == nil {
		return nil, errors.New("webhook: URL, secret and store are required")
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Poll <= 0 {
		o.Poll = 2 * time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 12
	}
	return &Deliverer{o: o}, nil
}

// Run delivers due events until ctx ends.
func (d *Deliverer) Run(ctx context.Context) {
	t := time.NewTicker(d.o.Poll)
	defer t.Stop()
	for {
		if _, err := d.DeliverDue(ctx); err != nil && ctx.Err() == nil {
			d.o.Logger.Error("webhook: deliver events", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// lease is how long a claimed delivery is ours: longer than one attempt
// (the client's timeout), so no other instance posts it meanwhile.
const lease = time.Minute

// DeliverDue posts every due delivery, a batch at a time, and returns how
// many it delivered.
func (d *Deliverer) DeliverDue(ctx context.Context) (int, error) {
	delivered := 0
	for ctx.Err() == nil {
		batch, err := d.o.Store.ClaimEventDeliveries(ctx, d.o.Now(), lease, 10)
		if err != nil || len(batch) == 0 {
			return delivered, err
		}
		for _, ev := range batch {
			if d.deliver(ctx, ev) {
				delivered++
			}
		}
	}
	return delivered, ctx.Err()
}

// Backoff is the wait before attempt n+1 after n failed ones: 5 s
// doubling, capped at 4 hours.
func Backoff(n int) time.Duration {
	d := 5 * time.Second
	for i := 1; i < n && d < 4*time.Hour; i++ {
		d *= 2
	}
	return min(d, 4*time.Hour)
}

func (d *Deliverer) deliver(ctx context.Context, ev storage.EventDelivery) bool {
	ctx = context.WithoutCancel(ctx) // finish what was claimed
	now := d.o.Now()
	if ev.Event.ID == 0 {
		_ = d.o.Store.FinishEventDelivery(ctx, ev.ID, now, true, "the audit event is gone")
		return false
	}
	err := d.post(ctx, ev)
	switch {
	case err == nil:
		d.count("delivered")
		if ferr := d.o.Store.FinishEventDelivery(ctx, ev.ID, d.o.Now(), false, ""); ferr != nil {
			d.o.Logger.Error("webhook: finish delivery", "err", ferr, "delivery", ev.ID)
		}
		return true
	case ev.Attempts >= d.o.MaxAttempts:
		d.count("failed")
		d.o.Logger.Error("webhook: giving up on an event", "delivery", ev.ID, "event", ev.Event.Event, "attempts", ev.Attempts, "err", err)
		_ = d.o.Store.FinishEventDelivery(ctx, ev.ID, d.o.Now(), true, truncate(err.Error(), 500))
	default:
		d.count("retry")
		next := d.o.Now().Add(Backoff(ev.Attempts))
		d.o.Logger.Warn("webhook: delivery failed, will retry", "delivery", ev.ID, "event", ev.Event.Event, "attempt", ev.Attempts,
			"next", next, "err", err)
		_ = d.o.Store.RetryEventDelivery(ctx, ev.ID, next, truncate(err.Error(), 500))
	}
	return false
}

func (d *Deliverer) count(result string) {
	if d.o.Metrics != nil {
		d.o.Metrics.WebhookDelivery(result)
	}
}

// Payload is the JSON body of one delivery.
type Payload struct {
	ID        string            `json:"id"` // the delivery's id: dedupe by it
	EventID   int64             `json:"event_id"`
	Type      string            `json:"type"`
	At        time.Time         `json:"at"`
	UserID    string            `json:"user_id,omitempty"`
	Email     string            `json:"email,omitempty"`
	ClientID  string            `json:"client_id,omitempty"`
	IP        string            `json:"ip,omitempty"`
	UserAgent string            `json:"user_agent,omitempty"`
	Reason    string            `json:"reason,omitempty"`
	Details   map[string]string `json:"details,omitempty"`
}

func (d *Deliverer) post(ctx context.Context, ev storage.EventDelivery) error {
	e := ev.Event
	body, err := json.Marshal(Payload{ID: "evd_" + strconv.FormatInt(ev.ID, 10), EventID: e.ID, Type: e.Event, At: e.At.UTC(),
		UserID: e.UserID, Email: e.Email, ClientID: e.ClientID, IP: e.IP, UserAgent: e.UserAgent, Reason: e.Reason, Details: e.Details})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.o.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Latchkey-Webhook/1")
	req.Header.Set(SignatureHeader, Sign(d.o.Secret, d.o.Now().Unix(), body))
	resp, err := d.o.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("the receiver answered %s", resp.Status)
	}
	return nil
}

// Sign is the signature header's value for body sent at unix time ts.
func Sign(secret string, ts int64, body []byte) string {
	t := strconv.FormatInt(ts, 10)
	return "t=" + t + ",v1=" + hex.EncodeToString(mac(secret, t, body))
}

func mac(secret, t string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(t))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify is the receiver's check: the signature is ours over body and its
// time is within tolerance of now. Receivers in other languages do the
// same: split the header on ',', recompute HMAC-SHA256(secret,
// t + "." + body), compare in constant time, check t.
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var t, v1 string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			t = v
		case "v1":
			v1 = v
		}
	}
	sec, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v1 == "" {
		return errors.New("webhook: malformed signature header")
	}
	got, err := hex.DecodeString(v1)
	if err != nil || !hmac.Equal(got, mac(secret, t, body)) {
		return errors.New("webhook: bad signature")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return errors.New("webhook: signature too old or from the future")
	}
	return nil
}

// OutboxStats reports the queue's backlog (metrics.OutboxStats).
func (d *Deliverer) OutboxStats(ctx context.Context) (int, time.Time, error) {
	return d.o.Store.EventQueueStats(ctx)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
