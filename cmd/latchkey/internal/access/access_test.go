package access

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestRequestIDFromTrustedProxy: a trusted proxy's id is kept when it is
// clean, replaced when it could forge a log line; an untrusted one never.
func TestRequestIDFromTrustedProxy(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(Handler(slog.NewTextHandler(&logs, nil)))
	var seen string
	var observed []string
	h := Middleware(Options{
		Logger:  logger,
		Trusted: func(r *http.Request) bool { return r.Header.Get("X-Via-Proxy") == "yes" },
		Observe: func(route, method string, status int, d time.Duration) { observed = append(observed, route) },
	}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		SetRoute(r, "/things/:id")
		seen = RequestID(r.Context())
		logger.InfoContext(r.Context(), "inside")
		w.WriteHeader(http.StatusTeapot)
	}))
	for _, tc := range []struct {
		proxy, id string
		kept      bool
	}{
		{"yes", "abc-123.def_4:5", true},
		{"yes", "bad id\nlevel=ERROR", false},
		{"yes", strings.Repeat("a", 65), false},
		{"no", "abc-123", false},
	} {
		logs.Reset()
		req := httptest.NewRequest(http.MethodGet, "/things/7?code=secret", nil)
		req.Header.Set("X-Via-Proxy", tc.proxy)
		req.Header.Set(Header, tc.id)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		got := rec.Header().Get(Header)
		if (got == tc.id) != tc.kept || got == "" || got != seen {
			t.Fatalf("proxy %s, id %q: response id %q, context id %q", tc.proxy, tc.id, got, seen)
		}
		if n := strings.Count(logs.String(), "request_id="+got); n != 2 {
			t.Fatalf("request id on %d log lines, want 2:\n%s", n, logs.String())
		}
		if !strings.Contains(logs.String(), "route=/things/:id status=418") || strings.Contains(logs.String(), "secret") {
			t.Fatalf("access line:\n%s", logs.String())
		}
	}
	if len(observed) != 4 || observed[0] != "/things/:id" {
		t.Fatalf("observed %v", observed)
	}
}
