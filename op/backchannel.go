package op

// OpenID Connect Back-Channel Logout 1.0, the delivery side. When a
// browser session ends, storage.EnqueueBackchannelLogouts (the one hook,
// called where sessions end: sign-out, the Devices page, password and
// 2-step changes, a user disabled) queues a delivery for every client
// with a backchannel_logout_uri that got tokens in that session. The
// BackchannelWorker, run in the background of every instance, claims due
// deliveries (a claim is exclusive across instances: FOR UPDATE SKIP
// LOCKED on PostgreSQL, the single writer on SQLite), posts a signed
// logout token to each, and records the outcome: delivered, retried with
// back-off, or given up. Every outcome is an audit event. Nothing of
// this runs inside the user's request.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey/storage"
)

const (
	// logoutTokenLife: how long a logout token is valid (§2.4 asks for a
	// short exp; two minutes covers clock skew).
	logoutTokenLife = 2 * time.Minute
	// backchannelEvent is the event of a logout token (§2.4).
	backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"
)

// backchannelBackoff are the waits after each failed attempt; after the
// last the delivery is given up (about ten and a half hours in all).
var backchannelBackoff = []time.Duration{
	10 * time.Second, 30 * time.Second, time.Minute, 5 * time.Minute,
	15 * time.Minute, time.Hour, 3 * time.Hour, 6 * time.Hour,
}

// BackchannelWorker delivers queued back-channel logout tokens. Run it on
// every instance (cmd/latchkey's background loop); RunOnce delivers one
// batch.
type BackchannelWorker struct {
	o *OP
	// Batch is how many deliveries one claim takes; Lease how long a
	// claim lasts (longer than a batch can take: a worker that dies
	// mid-batch leaves its claims to others after it); Poll how often
	// Run looks for due work.
	Batch int
	Lease time.Duration
	Poll  time.Duration
}

// BackchannelWorker returns the provider's logout-token delivery worker.
func (o *OP) BackchannelWorker() *BackchannelWorker {
	return &BackchannelWorker{o: o, Batch: 20, Lease: 2 * time.Minute, Poll: 2 * time.Second}
}

// Run delivers until ctx ends, checking for due work every Poll.
func (bw *BackchannelWorker) Run(ctx context.Context) {
	t := time.NewTicker(bw.Poll)
	defer t.Stop()
	for {
		for {
			n, err := bw.RunOnce(ctx)
			if err != nil && ctx.Err() == nil {
				bw.o.opts.Logger.Error("back-channel logout: claim", "err", err)
			}
			if n < bw.Batch || err != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RunOnce claims one batch of due deliveries and attempts each; it
// returns how many it claimed.
func (bw *BackchannelWorker) RunOnce(ctx context.Context) (int, error) {
	o := bw.o
	claimed, err := o.storage.store.ClaimBackchannelLogouts(ctx, o.opts.Now(), bw.Lease, bw.Batch)
	if err != nil {
		return 0, err
	}
	for _, d := range claimed {
		bw.deliver(ctx, d)
	}
	return len(claimed), nil
}

// deliver attempts one delivery and records its outcome.
func (bw *BackchannelWorker) deliver(ctx context.Context, d storage.BackchannelLogout) {
	o := bw.o
	s := o.storage
	status, err := bw.post(ctx, d)
	now := o.opts.Now()
	ev := storage.AuditEvent{UserID: d.UserID, ClientID: d.ClientID, Details: map[string]string{
		"session": d.SessionID, "cause": d.Cause, "attempt": strconv.Itoa(d.Attempts + 1), "delivery": d.ID}}
	var out storage.BackchannelOutcome
	switch {
	case err == nil:
		out.Delivered = true
		ev.Event = "backchannel.delivered"
	case errors.Is(err, errNoLogoutURI) || d.Attempts+1 >= len(backchannelBackoff)+1:
		out = storage.BackchannelOutcome{Error: err.Error(), GiveUp: true}
		ev.Event, ev.Reason = "backchannel.failed", "given up: "+err.Error()
	default:
		wait := backchannelBackoff[min(d.Attempts, len(backchannelBackoff)-1)]
		out = storage.BackchannelOutcome{Error: err.Error(), NextAttemptAt: now.Add(wait)}
		ev.Event, ev.Reason = "backchannel.retry", fmt.Sprintf("%v; next attempt in %s", err, wait)
	}
	if status != 0 {
		ev.Details["status"] = strconv.Itoa(status)
	}
	if err := s.store.FinishBackchannelLogout(context.WithoutCancel(ctx), d.ID, d.ClaimToken, out, now); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			o.opts.Logger.Warn("back-channel logout: claim lost before the outcome was recorded", "delivery", d.ID)
			return
		}
		o.opts.Logger.Error("back-channel logout: record outcome", "err", err, "delivery", d.ID)
		return
	}
	s.audit(context.WithoutCancel(ctx), ev)
}

var errNoLogoutURI = errors.New("the client is gone or has no backchannel_logout_uri")

// post sends the logout token (§2.5): a form POST; 200 or 204 is success,
// anything else (a redirect included) a failure.
func (bw *BackchannelWorker) post(ctx context.Context, d storage.BackchannelLogout) (int, error) {
	o := bw.o
	c, err := o.storage.store.GetClient(ctx, d.ClientID)
	if err != nil || c.BackchannelLogoutURI == "" {
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return 0, err
		}
		return 0, errNoLogoutURI
	}
	tok, err := o.logoutToken(ctx, d, c.IDTokenSigningAlg)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BackchannelLogoutURI,
		strings.NewReader(url.Values{"logout_token": {tok}}.Encode()))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	hc := *o.opts.HTTPClient
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		return resp.StatusCode, fmt.Errorf("the client answered %d", resp.StatusCode)
	}
	return resp.StatusCode, nil
}

// logoutToken is the signed logout token of a delivery (§2.4): iss, aud,
// iat, exp, jti (the delivery id, so a redelivery is recognisable),
// events, sub and sid; typ logout+jwt (§2.4.1 explicit typing); no nonce.
// It is signed with the keys of the client's ID tokens (§2.4), so with
// its registered id_token_signed_response_alg (alg; "": the default).
func (o *OP) logoutToken(ctx context.Context, d storage.BackchannelLogout, alg string) (string, error) {
	ks, err := o.storage.keys.get(ctx)
	if err != nil {
		return "", err
	}
	k := ks.idToken(alg)
	// The token clock: relying parties check iat and exp with theirs.
	iat := o.opts.TokenNow()
	claims := map[string]any{
		"iss": o.opts.Issuer, "aud": d.ClientID, "iat": iat.Unix(), "exp": iat.Add(logoutTokenLife).Unix(),
		"jti": d.ID, "sub": d.UserID, "events": map[string]any{backchannelEvent: map[string]any{}},
	}
	if d.SessionID != "" {
		claims["sid"] = d.SessionID
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	hdr, err := json.Marshal(map[string]string{"alg": string(k.alg), "kid": k.id, "typ": "logout+jwt"})
	if err != nil {
		return "", err
	}
	return k.signWithHeader(base64.RawURLEncoding.AppendEncode(nil, hdr), payload)
}
