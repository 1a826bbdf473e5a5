package op

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// TestRespondError: the login UI names the error by its standard OAuth
// code (OIDC Core 3.1.2.6); the client gets that code with the request's
// state, and anything unknown goes out as access_denied, never as
// something weaker.
func TestRespondError(t *testing.T) {
	e := newTokenEnv(t, storagetest.OpenSQLite(t))
	ar := storage.AuthRequest{
		ID: storage.NewID(), ClientID: "conf", RedirectURI: confRedir, Scopes: []string{"openid"},
		ResponseType: "code", State: "st-1", CreatedAt: e.now, ExpiresAt: e.now.Add(time.Minute),
	}
	for code, want := range map[string]string{
		"login_required":       "login_required",
		"interaction_required": "interaction_required",
		"consent_required":     "consent_required",
		"access_denied":        "access_denied",
		"server_error":         "access_denied",
		"":                     "access_denied",
	} {
		w := httptest.NewRecorder()
		e.o.RespondError(w, httptest.NewRequest(http.MethodGet, "https://id.example/login", nil), ar, code, "because")
		loc, err := url.Parse(w.Header().Get("Location"))
		if w.Code != http.StatusFound || err != nil {
			t.Fatalf("%q: %d %q", code, w.Code, w.Header().Get("Location"))
		}
		q := loc.Query()
		if loc.Scheme+"://"+loc.Host+loc.Path != confRedir || q.Get("error") != want ||
			q.Get("state") != "st-1" || q.Get("error_description") != "because" {
			t.Errorf("%q: redirected to %s, want error=%s", code, loc, want)
		}
	}
}

// TestDiscoveryACRValues: discovery advertises the acr values the options
// name (the sign-in policy's, wired in by cmd/latchkey), in their order.
func TestDiscoveryACRValues(t *testing.T) {
	want := []string{"urn:example:acr:low", "urn:example:acr:high"}
	e := newTokenEnvWith(t, storagetest.OpenSQLite(t), func(o *Options) { o.ACRValues = want })
	w := httptest.NewRecorder()
	e.o.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "https://id.example/.well-known/openid-configuration", nil))
	var d struct {
		ACRValues []string `json:"acr_values_supported"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &d); err != nil || !slices.Equal(d.ACRValues, want) {
		t.Fatalf("acr_values_supported = %v (%v), want %v", d.ACRValues, err, want)
	}
}

// TestNewRequiresTheRules: a provider without its clock or its
// re-verification rule would fail open; New refuses to build one.
func TestNewRequiresTheRules(t *testing.T) {
	store := storagetest.OpenSQLite(t)
	for name, edit := range map[string]func(*Options){
		"no clock":                         func(o *Options) { o.Now = nil },
		"no reverify rule":                 func(o *Options) { o.ReverifyDue = nil },
		"no login path":                    func(o *Options) { o.LoginPath = "" },
		"unknown algorithm":                func(o *Options) { o.Algorithm = "HS256" },
		"minimal options, no TokenNow: ok": nil,
	} {
		opts := Options{
			Issuer: "https://id.example", Algorithm: AlgES256, KeyRotation: time.Hour,
			ReverifyDue: func(time.Time, time.Time, []string, time.Time) bool { return false },
			LoginPath:   "/login", LogoutPath: "/logout", DevicePath: "/device",
			Now: func() time.Time { return time.Unix(1_800_000_000, 0) },
		}
		if edit != nil {
			edit(&opts)
		}
		_, err := New(t.Context(), opts, store, testKeyring(t))
		if (err == nil) != (edit == nil) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

// TestBackchannelWorkerRunStops: the worker's loop (started by serve's
// background) ends with its context.
func TestBackchannelWorkerRunStops(t *testing.T) {
	e := newTokenEnv(t, storagetest.OpenSQLite(t))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		e.o.BackchannelWorker().Run(ctx)
		close(done)
	}()
	cancel()
	<-done
}

// TestDPoPNonceWindows: a nonce is good in its five-minute window and the
// next, on every instance (it is an HMAC under the server secret), and
// nowhere else.
func TestDPoPNonceWindows(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	store := storagetest.OpenSQLite(t)
	e := newTokenEnvWith(t, store, func(o *Options) { o.Now = clock })
	n := e.o.dpopNonce()
	for d, ok := range map[time.Duration]bool{0: true, 5 * time.Minute: true, 10 * time.Minute: false, -5 * time.Minute: false} {
		if got := e.o.validDPoPNonce(n, now.Add(d)); got != ok {
			t.Errorf("%v later: %v, want %v", d, got, ok)
		}
	}
	raw, err := base64.RawURLEncoding.DecodeString(n)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-1] ^= 1 // its MAC's last byte changed (not the encoding's spare bits)
	for _, bad := range []string{"", "x", base64.RawURLEncoding.EncodeToString(raw)} {
		if e.o.validDPoPNonce(bad, now) {
			t.Errorf("%q accepted", bad)
		}
	}
}
