// Package access is the server's outermost handler: it gives every request
// an id (X-Request-Id from a trusted proxy, else a fresh one), puts it in
// the response header and the request's context (so every log line
// written with that context carries it: Handler), and writes one
// access-log line per request — method, route pattern, status, duration,
// bytes, client address, request id; the path only for unrouted requests,
// never a query string (codes and tokens travel in queries).
//
// It lives under cmd/latchkey because it is wiring: the trust decision
// and the client address come in as functions (the hardening work's
// trusted_proxies plugs in there), metrics as a callback. Packages that
// render error pages read the id from the response header
// (X-Request-Id), so none of them imports this package.
package access

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
)

// Header is the request id header, read from trusted proxies and always
// written on the response.
const Header = "X-Request-Id"

// Options configure the middleware.
type Options struct {
	Logger *slog.Logger
	// Trusted says whether the request came through a proxy we trust, so
	// that its X-Request-Id may be kept. Nil trusts nobody.
	Trusted func(*http.Request) bool
	// ClientAddr is the client's address for the log line. Nil: the peer
	// address.
	ClientAddr func(*http.Request) string
	// Observe receives every finished request (metrics). Nil: nothing.
	Observe func(route, method string, status int, d time.Duration)
	// Quiet routes are not access-logged (health checks every few
	// seconds would drown the log); they are still observed.
	Quiet map[string]bool
}

type ctxKey struct{}

// info is what the middleware learns about a request while it runs.
type info struct {
	id    string
	route string
}

// RequestID is the id of the request ctx belongs to, or "".
func RequestID(ctx context.Context) string {
	if i, ok := ctx.Value(ctxKey{}).(*info); ok {
		return i.id
	}
	return ""
}

// SetRoute records the route pattern that served r ("/login/code",
// "/admin/v1/users/:id"); the router calls it once it has matched.
// Unset, the route is "unmatched".
func SetRoute(r *http.Request, route string) {
	if i, ok := r.Context().Value(ctxKey{}).(*info); ok {
		i.route = route
	}
}

// Middleware wraps next.
func Middleware(o Options, next http.Handler) http.Handler {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ClientAddr == nil {
		o.ClientAddr = PeerAddr
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := ""
		if o.Trusted != nil && o.Trusted(r) {
			id = clean(r.Header.Get(Header))
		}
		if id == "" {
			id = newID()
		}
		in := &info{id: id}
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, in))
		w.Header().Set(Header, id)
		rec := &recorder{ResponseWriter: w}
		defer func() {
			d := time.Since(start)
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			route := in.route
			if route == "" {
				route = "unmatched"
			}
			if o.Observe != nil {
				o.Observe(route, r.Method, status, d)
			}
			if o.Quiet[route] && status < 500 {
				return
			}
			attrs := []slog.Attr{
				slog.String("method", r.Method),
				slog.String("route", route),
				slog.Int("status", status),
				slog.Duration("duration", d),
				slog.Int64("bytes", rec.bytes),
				slog.String("client", o.ClientAddr(r)),
			}
			if in.route == "" {
				// Unrouted (404s above all): the path says what was asked.
				attrs = append(attrs, slog.String("path", truncate(r.URL.Path, 200)))
			}
			o.Logger.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
		}()
		next.ServeHTTP(rec, r)
	})
}

// PeerAddr is the TCP peer's IP address.
func PeerAddr(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// NeverTrusted trusts no proxy: the request id is always ours. It is
// what serve uses until the configuration names trusted proxies.
func NeverTrusted(*http.Request) bool { return false }

// clean accepts a proxy's request id only if it is short and made of
// characters that cannot forge a log line or a header.
func clean(s string) string {
	if s == "" || len(s) > 64 {
		return ""
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_.:", c)) {
			return ""
		}
	}
	return s
}

// newID is 80 random bits, 16 characters of lower-case base32.
func newID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return strings.ToLower(base32.StdEncoding.EncodeToString(b[:]))
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// recorder notes the status and the bytes written.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Flush passes through (zitadel's and echo's writers may flush).
func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Handler adds the request id of the record's context to every log line
// (as request_id); wrap the process's slog handler with it.
func Handler(h slog.Handler) slog.Handler { return idHandler{h} }

type idHandler struct{ slog.Handler }

func (h idHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h idHandler) WithAttrs(as []slog.Attr) slog.Handler { return idHandler{h.Handler.WithAttrs(as)} }
func (h idHandler) WithGroup(name string) slog.Handler    { return idHandler{h.Handler.WithGroup(name)} }
