package op

// What the OP answers when its database is out of reach (issue #11.3):
// never a 4xx that blames the client or the token — a relying party may
// read invalid_grant, invalid_client or invalid_token as "sign the user
// out" — but 503 with Retry-After, and OAuth's temporarily_unavailable
// where it has a word for it (RFC 6749 §4.1.2.1; the JSON endpoints use
// the same code, since §5.2 has none). A storage error is told apart from
// "not found" (storage.IsUnavailable) before anything else is concluded
// from it.

import (
	"context"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/latchkey/latchkey/storage"
)

const (
	// codeUnavailable is OAuth's word for it.
	codeUnavailable = "temporarily_unavailable"
	// retryAfter is what clients are asked to wait: a database restart or
	// fail-over takes seconds.
	retryAfter = 10 // seconds
	// msgUnavailable is the browser's page.
	msgUnavailable  = "Sign-in is temporarily unavailable: we cannot reach our database just now. Please try again in a minute."
	descUnavailable = "the service is temporarily unavailable; retry later"
)

// unavailable reports whether err is the database out of reach.
func unavailable(err error) bool { return storage.IsUnavailable(err) }

// setRetryAfter asks the client to come back later.
func setRetryAfter(h http.Header) { h.Set("Retry-After", strconv.Itoa(retryAfter)) }

// internalError answers a failure of ours at a JSON endpoint (token, PAR,
// introspection, revocation, device authorization): 503
// temporarily_unavailable when the database is out of reach, else 500
// server_error. The cause is logged, never told.
func (o *OP) internalError(w http.ResponseWriter, r *http.Request, what string, err error) {
	if unavailable(err) {
		o.opts.Logger.ErrorContext(r.Context(), what+": database unavailable", "err", err)
		setRetryAfter(w.Header())
		tokenError(w, http.StatusServiceUnavailable, codeUnavailable, descUnavailable, false)
		return
	}
	o.opts.Logger.ErrorContext(r.Context(), what, "err", err)
	tokenError(w, http.StatusInternalServerError, "server_error", "", false)
}

// unavailablePage is the browser's answer when the database is out of
// reach and nothing can be sent to the client.
func (o *OP) unavailablePage(w http.ResponseWriter, r *http.Request) {
	setRetryAfter(w.Header())
	o.page(w, r, http.StatusServiceUnavailable, pageMsg("error.unavailable"))
}

// internalResourceError is internalError for a protected resource
// (userinfo, the account API): no challenge, nothing about the token.
func (o *OP) internalResourceError(r *http.Request, what string, err error) *ResourceError {
	if unavailable(err) {
		o.opts.Logger.ErrorContext(r.Context(), what+": database unavailable", "err", err)
		return o.resourceError(http.StatusServiceUnavailable, codeUnavailable, descUnavailable, false)
	}
	o.opts.Logger.ErrorContext(r.Context(), what, "err", err)
	return o.resourceError(http.StatusInternalServerError, "server_error", "", false)
}

// outageProbe records, for one request, that the storage adapter met the
// database out of reach: zitadel's handlers (end_session, the device
// authorization endpoint) turn our errors into their own answers, and the
// probe lets wrap correct those to 503.
type outageProbe struct{ hit atomic.Bool }

type outageProbeKey struct{}

// withOutageProbe gives the request a probe.
func withOutageProbe(r *http.Request) (*http.Request, *outageProbe) {
	p := &outageProbe{}
	return r.WithContext(context.WithValue(r.Context(), outageProbeKey{}, p)), p
}

// noteUnavailable marks the request's probe when err is the database out
// of reach.
func noteUnavailable(ctx context.Context, err error) {
	if !unavailable(err) {
		return
	}
	if p, ok := ctx.Value(outageProbeKey{}).(*outageProbe); ok {
		p.hit.Store(true)
	}
}
