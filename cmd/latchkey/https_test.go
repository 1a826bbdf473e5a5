package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/config"
	"github.com/latchkey/latchkey/login/mail/mailsink"
	"github.com/latchkey/latchkey/op"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// newTLSEnv is newTestEnv with an https issuer (httptest's TLS server on
// 127.0.0.1): the cookies are "__Host-" cookies there.
func newTLSEnv(t *testing.T, d storagetest.Dialect) *testEnv {
	t.Helper()
	sink, err := mailsink.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	hs := httptest.NewUnstartedServer(nil)
	issuer := "https://" + hs.Listener.Addr().String()
	cfg := config.Default()
	cfg.Issuer = issuer
	cfg.SMTPURL = sink.URL()
	cfg.DataDir = t.TempDir()
	cfg.SecretKey = config.Secret(make([]byte, 32))
	for i := range cfg.SecretKey {
		cfg.SecretKey[i] = byte(i + 7)
	}
	cfg.Keys.Algorithm = "ES256"
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	kr, err := keyring.New(cfg.SecretKey.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	store := d.Open(t)
	clk := &clock{now: time.Now().UTC().Truncate(time.Second)}
	a := &app{cfg: cfg, log: slog.New(slog.DiscardHandler), store: store, kr: kr, closer: func() {}}
	srv, err := newServer(context.Background(), a, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	hs.Config.Handler = srv.handler
	hs.StartTLS()
	t.Cleanup(hs.Close)
	return &testEnv{t: t, app: a, srv: srv, http: hs, issuer: issuer, clock: clk, sink: sink, store: store, kr: kr}
}

// newTLSBrowser is a browser that trusts the test server's certificate.
func (e *testEnv) newTLSBrowser() *browser {
	jar, _ := cookiejar.New(nil)
	b := &browser{e: e, ua: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"}
	host := strings.TrimPrefix(e.issuer, "https://")
	b.client = &http.Client{Jar: jar, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.http.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Host != host {
				return http.ErrUseLastResponse
			}
			if len(via) > 20 {
				return fmt.Errorf("too many redirects")
			}
			return nil
		}}
	return b
}

// setCookies records every Set-Cookie the server sends to b.
type setCookies struct {
	rt   http.RoundTripper
	seen []*http.Cookie
}

func (s *setCookies) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.rt.RoundTrip(r)
	if err == nil {
		s.seen = append(s.seen, resp.Cookies()...)
	}
	return resp, err
}

// TestHostCookiesOverHTTPS: with an https issuer every cookie the pages
// set is a "__Host-" cookie (Secure, Path=/, no Domain, HttpOnly), and a
// sign-in to the account pages and a product works with them.
func TestHostCookiesOverHTTPS(t *testing.T) {
	t.Parallel()
	e := newTLSEnv(t, storagetest.Dialects(t)[0])
	u := e.createUser("https@example.com")
	b := e.newTLSBrowser()
	rec := &setCookies{rt: b.client.Transport}
	b.client.Transport = rec
	p := b.account("/account/devices", u.Email, signInOpts{remember: "trust"})
	if !p.at("/account/devices") {
		t.Fatalf("account page over https: %s (%d)\n%s", p.url, p.status, p.body)
	}
	names := map[string]bool{}
	for _, ck := range rec.seen {
		names[ck.Name] = true
		if !strings.HasPrefix(ck.Name, "__Host-") || !ck.Secure || ck.Path != "/" || ck.Domain != "" || !ck.HttpOnly {
			t.Errorf("cookie %s", ck.String())
		}
	}
	for _, want := range []string{"__Host-lk_browser", "__Host-lk_session", "__Host-id.secret", "__Host-lk_account", "__Host-lk_account_rp"} {
		if !names[want] {
			t.Errorf("no %s among %v", want, names)
		}
	}
}

// TestLegacyCookiesStillSignIn: after the upgrade to "__Host-" names, a
// browser holding its session and trusted-device cookies under their old
// bare names is still signed in (no password asked) and trusted (no code
// asked), and is moved to the new names; for one release.
func TestLegacyCookiesStillSignIn(t *testing.T) {
	t.Parallel()
	e := newTLSEnv(t, storagetest.Dialects(t)[0])
	u := e.createUser("legacy@example.com")
	app := e.tlsRP("app")
	b := e.newTLSBrowser()
	// Sign in with trust, then rename the cookies as a browser of the
	// release before would hold them.
	authURL, _, state, _ := app.authorizeURL()
	b.signIn(authURL, u.Email, signInOpts{remember: "trust"}).code(t, state)
	iu, _ := url.Parse(e.issuer)
	old, _ := cookiejar.New(nil)
	for _, ck := range b.client.Jar.Cookies(iu) {
		switch ck.Name {
		case "__Host-lk_session", "__Host-id.secret":
			old.SetCookies(iu, []*http.Cookie{{Name: strings.TrimPrefix(ck.Name, "__Host-"), Value: ck.Value, Path: "/", Secure: true}})
		}
	}
	b.client.Jar = old
	authURL, _, state, _ = app.authorizeURL()
	p := b.get(authURL)
	if p.location == "" {
		t.Fatalf("the legacy session did not sign in silently: %s (%d)", p.url, p.status)
	}
	p.code(t, state)
	got := map[string]string{}
	for _, ck := range b.client.Jar.Cookies(iu) {
		got[ck.Name] = ck.Value
	}
	if got["__Host-lk_session"] == "" || got["lk_session"] != "" {
		t.Fatalf("session cookie not moved: %v", got)
	}
	// A fresh sign-in (prompt=login) of the trusted browser: password, no
	// code (the legacy device cookie still counts).
	authURL, _, state, _ = app.authorizeURL(oauth2.SetAuthURLParam("prompt", "login"))
	p = b.get(authURL)
	if !p.at("/login/password") {
		t.Fatalf("prompt=login: %s", p.url)
	}
	p = b.submit(p, "/login/password", url.Values{"password": {testPassword}})
	if p.at("/login/remember") {
		p = b.submit(p, "/login/remember", url.Values{"choice": {"no"}})
	}
	if p.location == "" {
		t.Fatalf("a code was asked of the trusted browser: %s (%d)", p.url, p.status)
	}
	p.code(t, state)
}

// tlsRP registers a web client like newRP, without discovery (the test's
// default HTTP client does not trust the test certificate).
func (e *testEnv) tlsRP(id string) *rp {
	e.t.Helper()
	secret := "s3cret-" + id + "-0123456789abcdefghijklmnop"
	now := e.clock.Now()
	if err := e.store.CreateClient(context.Background(), storage.Client{
		ID: id, Name: "App " + id, AppType: storage.AppTypeWeb, SecretHash: op.HashClientSecret(e.kr, secret),
		RedirectURIs: []string{rpRedirect}, GrantTypes: []string{op.GrantAuthorizationCode, op.GrantRefreshToken},
		Source: "cli", CreatedAt: now, UpdatedAt: now,
	}); err != nil {
		e.t.Fatal(err)
	}
	return &rp{e: e, id: id, secret: secret, redirect: rpRedirect, oauth: &oauth2.Config{
		ClientID: id, ClientSecret: secret, RedirectURL: rpRedirect, Scopes: []string{"openid", "email"},
		Endpoint: oauth2.Endpoint{AuthURL: e.issuer + "/authorize", TokenURL: e.issuer + "/oauth/token"},
	}}
}
