package main

// The end-to-end harness: a real Latchkey (the same wiring as serve) on an
// httptest server, a real SMTP server receiving the mail, a clock the test
// moves, and browsers with cookie jars. Relying parties use coreos/go-oidc
// and golang.org/x/oauth2, like any product would.

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/config"
	"github.com/latchkey/latchkey/login/factor"
	"github.com/latchkey/latchkey/login/mail/mailsink"
	"github.com/latchkey/latchkey/op"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// clock is the injected time. It starts at the real time (zitadel and
// go-oidc stamp and check token times with the wall clock) and only moves
// when the test says.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type testEnv struct {
	t      testing.TB
	app    *app
	srv    *server
	http   *httptest.Server
	issuer string
	clock  *clock
	sink   *mailsink.Sink
	store  *storage.Store
	kr     *keyring.Keyring
}

// envOption adjusts the configuration before the server starts.
type envOption func(*config.Config)

// forEachDialect runs fn on SQLite and, when configured, PostgreSQL.
func forEachDialect(t *testing.T, fn func(t *testing.T, d storagetest.Dialect)) {
	for _, d := range storagetest.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, d)
		})
	}
}

func newTestEnv(t testing.TB, d storagetest.Dialect, opts ...envOption) *testEnv {
	t.Helper()
	return newTestEnvLog(t, d, nil, opts...)
}

// newTestEnvLog is newTestEnv with the server's log also written to logw
// (nil: only under -v), at debug level, through the same handler chain
// as serve's (request ids included).
func newTestEnvLog(t testing.TB, d storagetest.Dialect, logw io.Writer, opts ...envOption) *testEnv {
	t.Helper()
	return newTestEnvStore(t, d, logw, nil, opts...)
}

// newTestEnvStore is newTestEnvLog on a store of the test's own (nil: a
// fresh one of the dialect), e.g. one opened with a storage.Fault.
func newTestEnvStore(t testing.TB, d storagetest.Dialect, logw io.Writer, store *storage.Store, opts ...envOption) *testEnv {
	t.Helper()
	sink, err := mailsink.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	hs := httptest.NewUnstartedServer(nil)
	issuer := "http://" + hs.Listener.Addr().String()

	cfg := config.Default()
	cfg.Issuer = issuer
	cfg.SMTPURL = sink.URL()
	cfg.DataDir = t.TempDir()
	cfg.SecretKey = config.Secret(make([]byte, 32))
	for i := range cfg.SecretKey {
		cfg.SecretKey[i] = byte(i + 1)
	}
	cfg.Keys.Algorithm = "ES256" // fast key generation in tests; RS256 has its own test
	for _, o := range opts {
		o(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	kr, err := keyring.New(cfg.SecretKey.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case store != nil:
	case cfg.Events.WebhookURL == "":
		store = d.Open(t)
	default:
		// The webhook's queue is filled by the store (as openApp opens it).
		if store, err = storage.Open(context.Background(), d.URL(t), storage.Options{QueueEvent: webhookEvents(cfg)}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		if err := store.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	clk := &clock{now: time.Now().UTC().Truncate(time.Second)}
	var ws []io.Writer
	if logw != nil {
		ws = append(ws, logw)
	}
	if testing.Verbose() {
		ws = append(ws, &testLogWriter{t})
	}
	logger := newLogger(io.MultiWriter(ws...), config.Log{Level: "debug", Format: "text"})
	th, err := loadTheme(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a := &app{cfg: cfg, log: logger, store: store, kr: kr, theme: th, closer: func() {}}
	srv, err := newServer(context.Background(), a, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	hs.Config.Handler = srv.handler
	hs.Start()
	t.Cleanup(hs.Close)
	return &testEnv{t: t, app: a, srv: srv, http: hs, issuer: cfg.Issuer, clock: clk, sink: sink, store: store, kr: kr}
}

type testLogWriter struct{ t testing.TB }

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// --- fixtures ---

const testPassword = "correct horse battery staple"

// createUser makes a user with a password; needsBackup mimics a new
// account (a first backup code at the first sign-in).
func (e *testEnv) createUser(email string, mut ...func(*storage.User)) storage.User {
	e.t.Helper()
	phc, err := factor.HashPassword(testPassword, factor.PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
	if err != nil {
		e.t.Fatal(err)
	}
	now := e.clock.Now()
	u := storage.User{Email: email, Name: "Test " + email, PasswordHash: phc, EmailVerified: true, CreatedAt: now, UpdatedAt: now}
	for _, m := range mut {
		m(&u)
	}
	u, err = e.store.CreateUser(context.Background(), u)
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// rp is a relying party registered with Latchkey.
type rp struct {
	e        *testEnv
	id       string
	secret   string
	redirect string
	oauth    *oauth2.Config
	provider *oidc.Provider
}

const rpRedirect = "http://rp.test/callback"

// newRP registers a confidential web client (or public native with
// public=true) and discovers the issuer like any product would.
func (e *testEnv) newRP(id string, mut ...func(*storage.Client)) *rp {
	e.t.Helper()
	ctx := context.Background()
	secret := "s3cret-" + id + "-0123456789abcdefghijklmnop"
	now := e.clock.Now()
	c := storage.Client{
		ID: id, Name: "App " + id, AppType: storage.AppTypeWeb, SecretHash: op.HashClientSecret(e.kr, secret),
		RedirectURIs: []string{rpRedirect}, PostLogoutRedirectURIs: []string{"http://rp.test/signed-out"},
		GrantTypes: []string{op.GrantAuthorizationCode, op.GrantRefreshToken, op.GrantClientCredentials},
		Source:     "cli", CreatedAt: now, UpdatedAt: now,
	}
	for _, m := range mut {
		m(&c)
	}
	if c.Public {
		c.SecretHash = nil
		secret = ""
	}
	if err := e.store.CreateClient(ctx, c); err != nil {
		e.t.Fatal(err)
	}
	provider, err := oidc.NewProvider(ctx, e.issuer)
	if err != nil {
		e.t.Fatal(err)
	}
	redirect := c.RedirectURIs[0]
	return &rp{e: e, id: id, secret: secret, redirect: redirect, provider: provider, oauth: &oauth2.Config{
		ClientID: id, ClientSecret: secret, Endpoint: provider.Endpoint(), RedirectURL: redirect,
		Scopes: []string{oidc.ScopeOpenID, "email", "profile", oidc.ScopeOfflineAccess},
	}}
}

// authorizeURL starts a sign-in with PKCE; it returns the URL, the PKCE
// verifier, the state and the nonce.
func (r *rp) authorizeURL(extra ...oauth2.AuthCodeOption) (string, string, string, string) {
	verifier := oauth2.GenerateVerifier()
	state, nonce := keyring.RandomString(8), keyring.RandomString(8)
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)}, extra...)
	return r.oauth.AuthCodeURL(state, opts...), verifier, state, nonce
}

// exchange trades a code for tokens and verifies the ID token.
func (r *rp) exchange(code, verifier, nonce string) (*oauth2.Token, *oidc.IDToken, map[string]any) {
	r.e.t.Helper()
	ctx := context.Background()
	tok, err := r.oauth.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		r.e.t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := r.provider.Verifier(&oidc.Config{ClientID: r.id}).Verify(ctx, raw)
	if err != nil {
		r.e.t.Fatalf("verify id token: %v", err)
	}
	if nonce != "" && idt.Nonce != nonce {
		r.e.t.Fatalf("nonce = %q, want %q", idt.Nonce, nonce)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		r.e.t.Fatal(err)
	}
	return tok, idt, claims
}

// --- browsers ---

type browser struct {
	e      *testEnv
	client *http.Client
	ua     string
	xff    string // an X-Forwarded-For header to send ("": none)
}

func (e *testEnv) newBrowser() *browser {
	jar, _ := cookiejar.New(nil)
	b := &browser{e: e, ua: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"}
	b.client = &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		// Stop at the relying party: it is not a real server.
		if req.URL.Host != strings.TrimPrefix(e.issuer, "http://") {
			return http.ErrUseLastResponse
		}
		if len(via) > 20 {
			return fmt.Errorf("too many redirects")
		}
		return nil
	}}
	return b
}

// response is a fetched page: where it ended and what it says.
type response struct {
	status   int
	url      *url.URL
	body     string
	location string // a redirect out of Latchkey (to the RP)
}

func (b *browser) do(req *http.Request) response {
	b.e.t.Helper()
	req.Header.Set("User-Agent", b.ua)
	if b.xff != "" {
		req.Header.Set("X-Forwarded-For", b.xff)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.e.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	// The server's worker delivers what the request queued at once (it is
	// kicked); the harness runs no background jobs and does it here (a
	// test that took the database away sees the failure where it reads
	// mail).
	if _, err := b.e.srv.mail.DeliverDue(context.Background()); err != nil {
		b.e.t.Logf("deliver mail: %v", err)
	}
	return response{status: resp.StatusCode, url: resp.Request.URL, body: string(body), location: resp.Header.Get("Location")}
}

func (b *browser) get(u string) response {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		b.e.t.Fatal(err)
	}
	return b.do(req)
}

func (b *browser) post(u string, form url.Values) response {
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		b.e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var (
	formRe   = regexp.MustCompile(`(?s)<form method="post" action="([^"]*)"[^>]*>(.*?)</form>`)
	hiddenRe = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
)

// submit posts the page's form whose action is action, with its hidden
// fields plus fields, to the server the page came from (as a browser
// resolves the action against the page).
func (b *browser) submit(p response, action string, fields url.Values) response {
	b.e.t.Helper()
	for _, m := range formRe.FindAllStringSubmatch(p.body, -1) {
		if html.UnescapeString(m[1]) != action {
			continue
		}
		form := url.Values{}
		for _, h := range hiddenRe.FindAllStringSubmatch(m[2], -1) {
			form.Set(h[1], html.UnescapeString(h[2]))
		}
		for k, v := range fields {
			form[k] = v
		}
		return b.post(p.url.Scheme+"://"+p.url.Host+action, form)
	}
	b.e.t.Fatalf("no form %q on %s (status %d):\n%s", action, p.url, p.status, p.body)
	return response{}
}

// at reports whether the browser is on a Latchkey page with this path.
func (p response) at(path string) bool { return p.url != nil && p.url.Path == path && p.location == "" }

// code extracts the authorization code from a redirect to the RP.
func (p response) code(t testing.TB, state string) string {
	t.Helper()
	if p.location == "" {
		t.Fatalf("no redirect to the RP; on %s (%d):\n%s", p.url, p.status, p.body)
	}
	u, err := url.Parse(p.location)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if e := q.Get("error"); e != "" {
		t.Fatalf("RP got error %s: %s", e, q.Get("error_description"))
	}
	if q.Get("state") != state {
		t.Fatalf("state = %q, want %q", q.Get("state"), state)
	}
	return q.Get("code")
}

// rpError is the OAuth error the RP got, or "".
func (p response) rpError() string {
	if p.location == "" {
		return ""
	}
	u, err := url.Parse(p.location)
	if err != nil {
		return ""
	}
	return u.Query().Get("error")
}

// deliver runs the server's outbox worker once, as its background loop
// would (the harness does not start the background jobs).
func (e *testEnv) deliver() {
	e.t.Helper()
	if _, err := e.srv.mail.DeliverDue(context.Background()); err != nil {
		e.t.Fatalf("deliver mail: %v", err)
	}
}

// mailCode reads the newest code mailed to addr (delivering the outbox
// first).
func (e *testEnv) mailCode(addr string) string {
	e.t.Helper()
	e.deliver()
	m, code, ok := e.sink.LastCode(addr)
	if !ok {
		last, _ := e.sink.Last(addr)
		e.t.Fatalf("no code in mail to %s: %q", addr, last.Text)
	}
	_ = m
	return code
}

// signInOpts steer drive and signIn.
type signInOpts struct {
	password string        // default testPassword
	totp     func() string // the code for an authenticator page (nil: fail the test there)
	remember string        // "trust", "stay" or "no" (default)
}

// drive answers sign-in pages like a user until the browser is somewhere
// else (an account page, an error page, a redirect to a relying party).
func (b *browser) drive(p response, email string, o signInOpts) response {
	b.e.t.Helper()
	if o.password == "" {
		o.password = testPassword
	}
	for i := 0; i < 15; i++ {
		switch {
		case p.location != "":
			return p
		case p.at("/login/identify"):
			p = b.submit(p, "/login/identify", url.Values{"email": {email}})
		case p.at("/login/password"):
			p = b.submit(p, "/login/password", url.Values{"password": {o.password}})
		case p.at("/login/code"):
			if strings.Contains(p.body, `name="method" value="totp"`) {
				if o.totp == nil {
					b.e.t.Fatalf("the code page asks for the authenticator app:\n%s", p.body)
				}
				p = b.submit(p, "/login/code", url.Values{"code": {o.totp()}})
			} else {
				p = b.submit(p, "/login/code", url.Values{"code": {b.e.mailCode(email)}})
			}
			if p.at("/login/code") {
				b.e.t.Fatalf("the code was refused (%d):\n%s", p.status, p.body)
			}
		case p.at("/login/remember"):
			choice := o.remember
			if choice == "" {
				choice = "no"
			}
			p = b.submit(p, "/login/remember", url.Values{"choice": {choice}})
		case p.at("/login/backup-code"):
			p = b.submit(p, "/login/backup-code", url.Values{"saved": {"yes"}})
		default:
			return p
		}
	}
	b.e.t.Fatalf("sign-in did not finish: %s", p.url)
	return p
}

// signIn drives a whole interactive sign-in from the authorize URL to the
// redirect back to the RP, answering each page as a user would.
func (b *browser) signIn(authURL, email string, o signInOpts) response {
	b.e.t.Helper()
	p := b.drive(b.get(authURL), email, o)
	if p.location == "" {
		b.e.t.Fatalf("unexpected page %s (%d):\n%s", p.url, p.status, p.body)
	}
	return p
}

// identifyAndPassword answers the identifier page (when shown) and the
// password page, and returns the page after the password.
func (b *browser) identifyAndPassword(p response, email string) response {
	b.e.t.Helper()
	if p.at("/login/identify") {
		p = b.submit(p, "/login/identify", url.Values{"email": {email}})
	}
	if !p.at("/login/password") {
		b.e.t.Fatalf("expected the password page, got %s (%d)", p.url, p.status)
	}
	return b.submit(p, "/login/password", url.Values{"password": {testPassword}})
}

// toCodePage drives one sign-in of the browser up to the email-code page,
// which mails the first code.
func (b *browser) toCodePage(authURL, email string) response {
	b.e.t.Helper()
	p := b.identifyAndPassword(b.get(authURL), email)
	if !p.at("/login/code") {
		b.e.t.Fatalf("expected the code page, got %s (%d):\n%s", p.url, p.status, p.body)
	}
	return p
}

// s256 is the PKCE challenge of a verifier.
func s256(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// authRequestID returns the id of the sign-in a page belongs to.
func authRequestID(t *testing.T, p response) string {
	t.Helper()
	id := p.url.Query().Get("id")
	if id == "" {
		if m := hiddenRe.FindAllStringSubmatch(p.body, -1); m != nil {
			for _, h := range m {
				if h[1] == "id" {
					id = h[2]
				}
			}
		}
	}
	if id == "" {
		t.Fatalf("no auth request id on %s", p.url)
	}
	return id
}

const day = 24 * time.Hour

// start opens a fresh authorize of r: the first sign-in page, or the
// redirect back to the product when none is needed.
func (b *browser) start(r *rp, extra ...oauth2.AuthCodeOption) response {
	authURL, _, _, _ := r.authorizeURL(extra...)
	return b.get(authURL)
}

// signOut signs the browser out at /logout, confirming when asked.
func (b *browser) signOut() {
	p := b.get(b.e.issuer + "/logout")
	if p.at("/logout") {
		b.submit(p, "/logout", nil)
	}
}

// enrolTOTP gives a user an active authenticator and returns its seed.
func (e *testEnv) enrolTOTP(u storage.User) []byte {
	e.t.Helper()
	ctx := context.Background()
	seed := factor.NewTOTPSeed()
	id := storage.NewID()
	if _, err := e.store.CreateTOTP(ctx, storage.TOTPCredential{ID: id, UserID: u.ID, Status: storage.TOTPPending,
		SeedSealed: e.kr.Seal(seed, []byte("totp-seed:"+id)), CreatedAt: e.clock.Now()}); err != nil {
		e.t.Fatal(err)
	}
	if err := e.store.ActivateTOTP(ctx, u.ID, id, 0, e.clock.Now()); err != nil {
		e.t.Fatal(err)
	}
	return seed
}

func totpNow(e *testEnv, seed []byte) string {
	return factor.TOTPCode(seed, factor.TOTPStep(e.clock.Now()))
}

// idClaims verifies a raw ID token for client id as a relying party would
// (signature, issuer, audience, expiry) and returns its claims; a missing
// or invalid token fails the test.
func (r *rp) idClaims(raw string) (*oidc.IDToken, map[string]any) {
	r.e.t.Helper()
	if raw == "" {
		r.e.t.Fatal("no id_token in the response")
	}
	idt, err := r.provider.Verifier(&oidc.Config{ClientID: r.id}).Verify(context.Background(), raw)
	if err != nil {
		r.e.t.Fatalf("verify id token: %v", err)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		r.e.t.Fatalf("id token claims: %v", err)
	}
	return idt, claims
}
