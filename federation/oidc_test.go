package federation

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/federation/federationtest"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
)

const (
	testClient   = "latchkey"
	testSecret   = "upstream-secret-0123456789abcdef"
	testRedirect = "http://rp.test/federation/callback"
)

func newUpstream(t *testing.T) *federationtest.Provider {
	p := federationtest.New(t.Cleanup, testClient, testSecret)
	p.SetClaims(map[string]any{"sub": "u-1", "email": "ada@corp.example", "name": "Ada", "amr": []string{"pwd", "mfa"}})
	return p
}

func discoverTest(t *testing.T, p *federationtest.Provider, timeout time.Duration) Connector {
	t.Helper()
	c, err := discover(context.Background(), OIDCConfig{Issuer: p.Issuer, ClientID: testClient, ClientSecret: testSecret,
		RedirectURL: testRedirect, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// roundTrip follows the authorize URL (the test provider answers at once)
// and returns the code.
func roundTrip(t *testing.T, c Connector, state, nonce, verifier string, o AuthOptions) string {
	t.Helper()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(c.AuthURL(state, nonce, verifier, o))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("state") != state {
		t.Fatalf("authorize answered %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return loc.Query().Get("code")
}

func TestConnectorRoundTrip(t *testing.T) {
	p := newUpstream(t)
	c := discoverTest(t, p, 2*time.Second)
	if c.EndSessionURL() != p.Issuer+"/end_session" {
		t.Errorf("end session = %q", c.EndSessionURL())
	}
	maxAge := 0
	verifier := NewVerifier()
	code := roundTrip(t, c, "st", "n-1", verifier, AuthOptions{Prompt: "login", MaxAge: &maxAge, LoginHint: "ada@corp.example"})
	q := p.LastAuthorize()
	for k, want := range map[string]string{"prompt": "login", "max_age": "0", "login_hint": "ada@corp.example", "nonce": "n-1",
		"code_challenge_method": "S256", "redirect_uri": testRedirect, "scope": "openid email profile"} {
		if q.Get(k) != want {
			t.Errorf("authorize %s = %q, want %q", k, q.Get(k), want)
		}
	}
	if q.Get("code_challenge") == "" || q.Get("code_challenge") == verifier {
		t.Errorf("code_challenge = %q", q.Get("code_challenge"))
	}
	id, err := c.Exchange(context.Background(), code, verifier, "n-1")
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != "u-1" || id.Issuer != p.Issuer || id.Email != "ada@corp.example" || id.Name != "Ada" ||
		!slices.Equal(id.AMR, []string{"pwd", "mfa"}) || id.AuthTimeAbsent || id.RawIDToken == "" {
		t.Fatalf("identity = %+v", id)
	}
	// A code is single use upstream, and PKCE is real.
	if _, err := c.Exchange(context.Background(), code, verifier, "n-1"); KindOf(err) != KindRejected {
		t.Fatalf("replayed code: %v", err)
	}
	code = roundTrip(t, c, "st", "n-2", verifier, AuthOptions{})
	if _, err := c.Exchange(context.Background(), code, NewVerifier(), "n-2"); KindOf(err) != KindRejected {
		t.Fatalf("wrong verifier: %v", err)
	}
	q = p.LastAuthorize()
	if q.Has("prompt") || q.Has("max_age") || q.Has("login_hint") {
		t.Errorf("options sent although not asked: %v", q)
	}
}

func TestConnectorRefusesTamperedTokens(t *testing.T) {
	p := newUpstream(t)
	c := discoverTest(t, p, 2*time.Second)
	for _, tc := range []struct {
		name   string
		tamper func(map[string]any)
	}{
		{"wrong nonce", func(m map[string]any) { m["nonce"] = "someone-else" }},
		{"no nonce", func(m map[string]any) { delete(m, "nonce") }},
		{"wrong audience", func(m map[string]any) { m["aud"] = "another-client" }},
		{"several audiences, no azp", func(m map[string]any) { m["aud"] = []string{testClient, "other"} }},
		{"azp of another client", func(m map[string]any) { m["azp"] = "other" }},
		{"expired", func(m map[string]any) { m["exp"] = time.Now().Add(-time.Minute).Unix() }},
		{"other issuer", func(m map[string]any) { m["iss"] = "https://evil.example" }},
		{"bad at_hash", func(m map[string]any) { m["at_hash"] = "AAAAAAAAAAAAAAAAAAAAAA" }},
		{"no sub", func(m map[string]any) { delete(m, "sub") }},
		{"oversized sub", func(m map[string]any) { m["sub"] = strings.Repeat("s", 256) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p.Tamper(tc.tamper)
			defer p.Tamper(nil)
			v := NewVerifier()
			code := roundTrip(t, c, "s", "n", v, AuthOptions{})
			_, err := c.Exchange(context.Background(), code, v, "n")
			if KindOf(err) != KindInvalidToken {
				t.Fatalf("got %v, want an invalid token error", err)
			}
		})
	}
	// A token signed by a key the upstream does not publish.
	p.ForgeSignatures(true)
	v := NewVerifier()
	if _, err := c.Exchange(context.Background(), roundTrip(t, c, "s", "n", v, AuthOptions{}), v, "n"); KindOf(err) != KindInvalidToken {
		t.Fatalf("forged signature: %v", err)
	}
	p.ForgeSignatures(false)
	// Several audiences with our azp are fine.
	p.Tamper(func(m map[string]any) { m["aud"] = []string{testClient, "other"}; m["azp"] = testClient })
	v = NewVerifier()
	if _, err := c.Exchange(context.Background(), roundTrip(t, c, "s", "n", v, AuthOptions{}), v, "n"); err != nil {
		t.Fatalf("azp = our client: %v", err)
	}
	p.Tamper(nil)
}

func TestConnectorRefusesBadCallbacks(t *testing.T) {
	p := newUpstream(t)
	c := discoverTest(t, p, 2*time.Second)
	ctx := context.Background()
	// A callback without a code, or with an absurd one, never reaches the
	// upstream (whose token endpoint would now time out).
	p.Hang("token", 10*time.Second)
	for _, code := range []string{"", strings.Repeat("c", 4097)} {
		if _, err := c.Exchange(ctx, code, NewVerifier(), "n"); KindOf(err) != KindRejected {
			t.Errorf("code of %d bytes: %v", len(code), err)
		}
	}
	p.Hang("token", 0)
	// A code the upstream never issued.
	if _, err := c.Exchange(ctx, "forged-code", NewVerifier(), "n"); KindOf(err) != KindRejected {
		t.Errorf("forged code: %v", err)
	}
	// A wrong client secret: the upstream refuses our client.
	wrong, err := discover(ctx, OIDCConfig{Issuer: p.Issuer, ClientID: testClient, ClientSecret: "not-the-secret",
		RedirectURL: testRedirect, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	v := NewVerifier()
	if _, err := wrong.Exchange(ctx, roundTrip(t, wrong, "s", "n", v, AuthOptions{}), v, "n"); KindOf(err) != KindRejected {
		t.Errorf("wrong client secret: %v", err)
	}
}

func TestConnectorUserInfo(t *testing.T) {
	p := newUpstream(t)
	// The ID token carries no email: it comes from userinfo, and the ID
	// token's claims win where both have one.
	p.SetClaims(map[string]any{"sub": "u-1", "name": "Ada"})
	p.SetUserInfo(map[string]any{"sub": "u-1", "email": "ada@corp.example", "name": "Not Ada"})
	c := discoverTest(t, p, 2*time.Second)
	ctx := context.Background()
	v := NewVerifier()
	id, err := c.Exchange(ctx, roundTrip(t, c, "s", "n", v, AuthOptions{}), v, "n")
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != "u-1" || id.Email != "ada@corp.example" || id.Name != "Ada" {
		t.Fatalf("identity = %+v", id)
	}
	// Userinfo about someone else (OIDC Core 5.3.2).
	p.SetUserInfo(map[string]any{"sub": "u-2", "email": "eve@corp.example"})
	v = NewVerifier()
	if _, err := c.Exchange(ctx, roundTrip(t, c, "s", "n", v, AuthOptions{}), v, "n"); KindOf(err) != KindInvalidToken {
		t.Fatalf("userinfo of another subject: %v", err)
	}
}

// oddUpstream serves a discovery document (meta overrides its fields) and
// a token endpoint that answers status and body, for what the test
// provider does not do wrong.
func oddUpstream(t *testing.T, meta map[string]any, status int, body string) string {
	var issuer string
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		doc := map[string]any{"issuer": issuer, "authorization_endpoint": issuer + "/authorize",
			"token_endpoint": issuer + "/token", "jwks_uri": issuer + "/keys"}
		maps.Copy(doc, meta)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(doc)
	})
	mux.HandleFunc("/token", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	issuer = srv.URL
	return issuer
}

func TestConnectorOddUpstream(t *testing.T) {
	ctx := context.Background()
	open := func(issuer string) (*oidcConnector, error) {
		return discover(ctx, OIDCConfig{Issuer: issuer, ClientID: testClient, ClientSecret: testSecret,
			RedirectURL: testRedirect, Timeout: 2 * time.Second})
	}
	// Endpoints that are not http(s) URLs are a misconfigured upstream.
	for _, meta := range []map[string]any{
		{"authorization_endpoint": "javascript:alert(1)"},
		{"token_endpoint": "file:///etc/passwd"},
		{"token_endpoint": "/token"},
	} {
		if _, err := open(oddUpstream(t, meta, http.StatusOK, "{}")); KindOf(err) != KindConfig {
			t.Errorf("discovery %v: %v", meta, err)
		}
	}
	// An end_session_endpoint that is not an http(s) URL is dropped, never
	// offered as a sign-out link.
	c, err := open(oddUpstream(t, map[string]any{"end_session_endpoint": "javascript:alert(1)"}, http.StatusOK, "{}"))
	if err != nil {
		t.Fatal(err)
	}
	if c.EndSessionURL() != "" {
		t.Fatalf("end session = %q", c.EndSessionURL())
	}
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   Kind
	}{
		{"no id_token", http.StatusOK, `{"access_token":"a","token_type":"Bearer"}`, KindInvalidToken},
		{"server error", http.StatusBadGateway, `{"error":"server_error"}`, KindUnreachable},
		{"not JSON", http.StatusOK, `<html>`, KindUnreachable},
	} {
		c, err := open(oddUpstream(t, nil, tc.status, tc.body))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Exchange(ctx, "code", NewVerifier(), "n"); KindOf(err) != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestConnectorUnreachable(t *testing.T) {
	// Nothing listens: connection refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = discover(context.Background(), OIDCConfig{Issuer: "http://" + addr, ClientID: testClient, Timeout: time.Second})
	if KindOf(err) != KindUnreachable {
		t.Fatalf("closed port: %v", err)
	}

	// Discovery hangs: the timeout ends it.
	p := newUpstream(t)
	p.Hang("discovery", 5*time.Second)
	start := time.Now()
	_, err = discover(context.Background(), OIDCConfig{Issuer: p.Issuer, ClientID: testClient, Timeout: 200 * time.Millisecond})
	if KindOf(err) != KindUnreachable || time.Since(start) > 3*time.Second {
		t.Fatalf("hanging discovery: %v after %v", err, time.Since(start))
	}
	p.Hang("discovery", 0)

	// The token endpoint hangs.
	c := discoverTest(t, p, 200*time.Millisecond)
	p.Hang("token", 5*time.Second)
	v := NewVerifier()
	start = time.Now()
	_, err = c.Exchange(context.Background(), roundTrip(t, c, "s", "n", v, AuthOptions{}), v, "n")
	if KindOf(err) != KindUnreachable || time.Since(start) > 3*time.Second {
		t.Fatalf("hanging token endpoint: %v after %v", err, time.Since(start))
	}

	// An issuer that does not match its discovery document is ours to fix.
	_, err = discover(context.Background(), OIDCConfig{Issuer: p.Issuer + "/", ClientID: testClient, Timeout: time.Second})
	if KindOf(err) != KindConfig {
		t.Fatalf("issuer mismatch: %v", err)
	}
}

func TestRegistry(t *testing.T) {
	kr, err := keyring.New([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	p := newUpstream(t)
	now := time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)
	r := NewRegistry(Options{Keyring: kr, RedirectURL: testRedirect, Timeout: time.Second, Now: func() time.Time { return now }})
	org := storage.Organization{ID: "org1", Name: "Corp", Issuer: p.Issuer, ClientID: testClient,
		ClientSecretSealed: SealSecret(kr, "org1", testSecret), Scopes: []string{"openid", "email"}}
	ctx := context.Background()
	c1, err := r.Connector(ctx, org)
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := r.Connector(ctx, org)
	if c1 != c2 {
		t.Fatal("discovery not cached")
	}
	// The secret opens only under its organisation's id.
	v := NewVerifier()
	if _, err := c1.Exchange(ctx, roundTrip(t, c1, "s", "n", v, AuthOptions{}), v, "n"); err != nil {
		t.Fatalf("exchange with the unsealed secret: %v", err)
	}
	other := org
	other.ID = "org2"
	if _, err := r.Connector(ctx, other); KindOf(err) != KindConfig {
		t.Fatalf("secret sealed for another organisation: %v", err)
	}
	// A changed organisation is discovered again; so is a stale one.
	changed := org
	changed.Scopes = []string{"openid"}
	if c3, _ := r.Connector(ctx, changed); c3 == c1 {
		t.Fatal("changed organisation served from the cache")
	}
	c4, _ := r.Connector(ctx, changed)
	now = now.Add(2 * time.Hour)
	if c5, _ := r.Connector(ctx, changed); c5 == c4 {
		t.Fatal("stale discovery served from the cache")
	}
	// An unreachable upstream is forgotten: the next sign-in discovers again.
	c6, _ := r.Connector(ctx, changed)
	p.Hang("token", 3*time.Second)
	r.SetTimeout(100 * time.Millisecond)
	c7, _ := r.Connector(ctx, changed)
	if c7 == c6 {
		t.Fatal("SetTimeout kept the cache")
	}
	v = NewVerifier()
	if _, err := c7.Exchange(ctx, roundTrip(t, c7, "s", "n", v, AuthOptions{}), v, "n"); KindOf(err) != KindUnreachable {
		t.Fatalf("hanging token endpoint: %v", err)
	}
	if c8, _ := r.Connector(ctx, changed); c8 == c7 {
		t.Fatal("unreachable upstream still cached")
	}
}
