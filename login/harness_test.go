package login

// The sign-in's test harness, in the style of Dex's server/authflow tests:
// the real sign-in handler on an httptest server over a real store
// (storagetest: SQLite, and PostgreSQL when configured), a real SMTP
// server receiving the mail, a clock the test moves, browsers with cookie
// jars, and a fake OP that stands where zitadel/oidc does. The fake OP's
// /authorize is a direct insert of the auth request zitadel would create;
// Respond records the finished request and redirects to the product with
// its id as the "code", so a test reads what the OP would have put in the
// ID token (acr, amr, auth_time, sid, sub). The real OP, tokens and
// relying parties are exercised end to end in cmd/latchkey.

import (
	"context"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/login/factor"
	"github.com/latchkey/latchkey/login/flow"
	"github.com/latchkey/latchkey/login/internal/creds"
	"github.com/latchkey/latchkey/login/mail"
	"github.com/latchkey/latchkey/login/mail/mailsink"
	"github.com/latchkey/latchkey/login/mail/outbox"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
	"github.com/latchkey/latchkey/storage/storagetest"
)

const day = 24 * time.Hour

// clock is the injected time; it only moves when the test says.
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

// fakeOP records what the sign-in hands to the OP.
type fakeOP struct {
	mu       sync.Mutex
	finished map[string]storage.AuthRequest
}

func (o *fakeOP) Respond(w http.ResponseWriter, r *http.Request, ar storage.AuthRequest) {
	o.mu.Lock()
	o.finished[ar.ID] = ar
	o.mu.Unlock()
	q := url.Values{"code": {ar.ID}, "state": {ar.State}}
	http.Redirect(w, r, ar.RedirectURI+"?"+q.Encode(), http.StatusSeeOther)
}

func (o *fakeOP) RespondError(w http.ResponseWriter, r *http.Request, ar storage.AuthRequest, code, description string) {
	q := url.Values{"error": {code}, "error_description": {description}, "state": {ar.State}}
	http.Redirect(w, r, ar.RedirectURI+"?"+q.Encode(), http.StatusSeeOther)
}

type testEnv struct {
	t      testing.TB
	h      *Handler
	http   *httptest.Server
	issuer string
	clock  *clock
	sink   *mailsink.Sink
	store  *storage.Store
	kr     *keyring.Keyring
	op     *fakeOP
	// mail delivers the outbox when the test says (deliver): the
	// harness runs no background worker, so what was queued is visible.
	mail     *outbox.Worker
	holdMail bool
	// arLifetime is how long the auth requests the fake OP creates live.
	arLifetime time.Duration
}

// forEachDialect runs fn on SQLite and, when configured, PostgreSQL.
func forEachDialect(t *testing.T, fn func(t *testing.T, d storagetest.Dialect)) {
	for _, d := range storagetest.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, d)
		})
	}
}

// sqlite is the dialect of tests that need only one.
func sqlite(t *testing.T) storagetest.Dialect { return storagetest.Dialects(t)[0] }

// testPolicy is the configuration's default policy (SPEC 2, 5).
func testPolicy() flow.Policy {
	return flow.Policy{SessionIdle: 24 * time.Hour, StaySignedIn: 30 * day, TrustedDevice: 30 * day, Reverify: 30 * day,
		RolloutDefault: time.Date(2025, 4, 2, 0, 0, 0, 0, time.UTC),
		RolloutRegions: map[string]time.Time{"EU": time.Date(2025, 4, 9, 0, 0, 0, 0, time.UTC), "APAC": time.Date(2025, 4, 16, 0, 0, 0, 0, time.UTC)}}
}

// envSetup is what a test may put in place of the harness's defaults.
type envSetup struct {
	verifier creds.Verifier             // nil: login/factor's
	wrap     func(*storage.Store) Store // what the handler sees of the store (nil: the store)
	dbStore  *storage.Store             // the database (nil: a fresh one of the dialect)
	holdMail bool                       // no delivery after each request: the test calls deliver
}

func newTestEnv(t testing.TB, d storagetest.Dialect, opts ...func(*Config)) *testEnv {
	t.Helper()
	return newTestEnvWith(t, d, envSetup{}, opts...)
}

func newTestEnvWith(t testing.TB, d storagetest.Dialect, setup envSetup, opts ...func(*Config)) *testEnv {
	t.Helper()
	sink, err := mailsink.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	hs := httptest.NewUnstartedServer(nil)
	issuer := "http://" + hs.Listener.Addr().String()
	cfg := Config{Issuer: issuer, SiteName: "Latchkey", Policy: testPolicy(), EmailCodeTTL: 10 * time.Minute,
		SignupEnabled: true, ReconfirmClientID: "account"}
	for _, o := range opts {
		o(&cfg)
	}
	kr, err := keyring.New([]byte(strings.Repeat("k", keyring.MinSecretLen)))
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(&testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	mailer, err := mail.NewWithOptions(sink.URL(), "noreply@localhost", logger, mail.Options{Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	store := setup.dbStore
	if store == nil {
		store = d.Open(t)
	}
	var st Store = store
	if setup.wrap != nil {
		st = setup.wrap(store)
	}
	clk := &clock{now: time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)}
	op := &fakeOP{finished: map[string]storage.AuthRequest{}}
	worker, err := outbox.New(outbox.Config{}, outbox.Deps{Store: store, Keyring: kr, Mailer: mailer, Now: clk.Now, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(cfg, Deps{Store: st, Keyring: kr, OP: op, Outbox: worker, Now: clk.Now, Logger: logger,
		Hasher: factor.NewPasswordHasher(testHashParams), Verifier: setup.verifier})
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	h.Register(e)
	hs.Config.Handler = e
	hs.Start()
	t.Cleanup(hs.Close)
	return &testEnv{t: t, h: h, http: hs, issuer: cfg.Issuer, clock: clk, sink: sink, store: store, kr: kr, op: op, mail: worker,
		holdMail: setup.holdMail, arLifetime: 30 * time.Minute}
}

// testHashParams keep argon2id cheap in tests (the real parameters have
// their own tests in login/factor).
var testHashParams = factor.PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

type testLogWriter struct{ t testing.TB }

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// --- fixtures ---

const testPassword = "correct horse battery staple"

// createUser makes a user with a password.
func (e *testEnv) createUser(email string, mut ...func(*storage.User)) storage.User {
	e.t.Helper()
	phc, err := factor.HashPassword(testPassword, testHashParams)
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

// rp is a product registered with Latchkey.
type rp struct {
	e        *testEnv
	id       string
	redirect string
}

const rpRedirect = "http://rp.test/callback"

// newRP registers a client.
func (e *testEnv) newRP(id string, mut ...func(*storage.Client)) *rp {
	e.t.Helper()
	now := e.clock.Now()
	c := storage.Client{ID: id, Name: "App " + id, AppType: storage.AppTypeWeb, RedirectURIs: []string{rpRedirect},
		GrantTypes: []string{"authorization_code", "refresh_token"}, Source: "cli", CreatedAt: now, UpdatedAt: now}
	for _, m := range mut {
		m(&c)
	}
	if err := e.store.CreateClient(context.Background(), c); err != nil {
		e.t.Fatal(err)
	}
	return &rp{e: e, id: id, redirect: c.RedirectURIs[0]}
}

// authorizeURL does what the OP's /authorize does for a valid request of
// this product: it stores the auth request and sends the browser to the
// login UI. extra takes the usual oauth2 options (prompt, max_age,
// acr_values, login_hint; id_token_hint as "sub:<subject>", the subject
// the OP would have verified). It returns the URL and the state.
func (r *rp) authorizeURL(extra ...oauth2.AuthCodeOption) (string, string) {
	r.e.t.Helper()
	state := keyring.RandomString(8)
	cfg := oauth2.Config{ClientID: r.id, RedirectURL: r.redirect, Endpoint: oauth2.Endpoint{AuthURL: "http://op.test/authorize"},
		Scopes: []string{"openid", "email", "profile", "offline_access"}}
	u, err := url.Parse(cfg.AuthCodeURL(state, extra...))
	if err != nil {
		r.e.t.Fatal(err)
	}
	q := u.Query()
	now := r.e.clock.Now()
	ar := storage.AuthRequest{ID: storage.NewID(), ClientID: r.id, RedirectURI: r.redirect, Scopes: strings.Fields(q.Get("scope")),
		State: state, Nonce: keyring.RandomString(8), ResponseType: "code", Prompt: strings.Fields(q.Get("prompt")),
		ACRValues: strings.Fields(q.Get("acr_values")), LoginHint: q.Get("login_hint"),
		IDTokenHintSubject: strings.TrimPrefix(q.Get("id_token_hint"), "sub:"),
		CreatedAt:          now, ExpiresAt: now.Add(r.e.arLifetime)}
	if v := q.Get("max_age"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			r.e.t.Fatal(err)
		}
		ar.MaxAge = &n
	}
	if err := r.e.store.CreateAuthRequest(context.Background(), ar); err != nil {
		r.e.t.Fatal(err)
	}
	return r.e.issuer + "/login?authRequestID=" + url.QueryEscape(ar.ID), state
}

// claims are what the OP would put in the ID token of the finished
// sign-in whose "code" (its auth request id) the product received.
func (r *rp) claims(code string) map[string]any {
	r.e.t.Helper()
	r.e.op.mu.Lock()
	ar, ok := r.e.op.finished[code]
	r.e.op.mu.Unlock()
	if !ok || ar.ClientID != r.id {
		r.e.t.Fatalf("no finished sign-in %q for %s", code, r.id)
	}
	amr := make([]any, len(ar.AMR))
	for i, m := range ar.AMR {
		amr[i] = m
	}
	return map[string]any{"sub": ar.UserID, "acr": ar.ACR, "amr": amr, "auth_time": float64(ar.AuthTime.Unix()), "sid": ar.SessionID}
}

func amrOf(claims map[string]any) string {
	var out []string
	for _, m := range claims["amr"].([]any) {
		out = append(out, m.(string))
	}
	return strings.Join(out, " ")
}

// --- browsers ---

type browser struct {
	e      *testEnv
	client *http.Client
	ua     string
	ip     string // the client address the requests come from ("" : 127.0.0.1)
}

func (e *testEnv) newBrowser() *browser {
	jar, _ := cookiejar.New(nil)
	b := &browser{e: e, ua: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"}
	b.client = &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		// Stop at the product: it is not a real server.
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
	location string // a redirect out of Latchkey (to the product)
}

func (b *browser) do(req *http.Request) response {
	b.e.t.Helper()
	req.Header.Set("User-Agent", b.ua)
	if b.ip != "" {
		// The harness's echo has no IPExtractor, so it reads this header
		// (cmd wires the trusted-proxy rule; see its tests).
		req.Header.Set("X-Forwarded-For", b.ip)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.e.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	// The instance's worker delivers what the request queued at once (it
	// is kicked); the harness does it here, between requests.
	if !b.e.holdMail {
		b.e.deliver()
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
// fields plus fields, as a browser would.
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

// code is the "code" the product received (the auth request id).
func (p response) code(t testing.TB, state string) string {
	t.Helper()
	if p.location == "" {
		t.Fatalf("no redirect to the product; on %s (%d):\n%s", p.url, p.status, p.body)
	}
	u, err := url.Parse(p.location)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if e := q.Get("error"); e != "" {
		t.Fatalf("product got error %s: %s", e, q.Get("error_description"))
	}
	if q.Get("state") != state {
		t.Fatalf("state = %q, want %q", q.Get("state"), state)
	}
	return q.Get("code")
}

// rpError is the OAuth error the product got, or "".
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

// deliver runs the outbox worker once, as a background worker would.
func (e *testEnv) deliver() {
	e.t.Helper()
	if _, err := e.mail.DeliverDue(context.Background()); err != nil {
		e.t.Fatalf("deliver mail: %v", err)
	}
}

// sent delivers the outbox and returns the mail sink: what a reader of
// the mailboxes would see.
func (e *testEnv) sent() *mailsink.Sink {
	e.t.Helper()
	e.deliver()
	return e.sink
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

// lastSubject is the subject of the newest mail to addr ("" if none).
func (e *testEnv) lastSubject(addr string) string {
	e.deliver()
	m, ok := e.sink.Last(addr)
	if !ok {
		return ""
	}
	return m.Subject
}

// signInOpts steer drive and signIn.
type signInOpts struct {
	password string        // default testPassword
	totp     func() string // the code for an authenticator page (nil: fail the test there)
	remember string        // "trust", "stay" or "no" (default)
}

// drive answers sign-in pages like a user until the browser is somewhere
// else (an error page, a redirect to a product).
func (b *browser) drive(p response, email string, o signInOpts) response {
	b.e.t.Helper()
	if o.password == "" {
		o.password = testPassword
	}
	for range 15 {
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
// redirect back to the product.
func (b *browser) signIn(authURL, email string, o signInOpts) response {
	b.e.t.Helper()
	p := b.drive(b.get(authURL), email, o)
	if p.location == "" {
		b.e.t.Fatalf("unexpected page %s (%d):\n%s", p.url, p.status, p.body)
	}
	return p
}

// start opens a fresh sign-in of r: the first page, or the redirect back
// to the product when none is needed.
func (b *browser) start(r *rp, extra ...oauth2.AuthCodeOption) response {
	authURL, _ := r.authorizeURL(extra...)
	return b.get(authURL)
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

// toCodePage drives one sign-in up to the email-code page, which mails
// the first code.
func (b *browser) toCodePage(authURL, email string) response {
	b.e.t.Helper()
	p := b.identifyAndPassword(b.get(authURL), email)
	if !p.at("/login/code") {
		b.e.t.Fatalf("expected the code page, got %s (%d):\n%s", p.url, p.status, p.body)
	}
	return p
}

// signOut signs the browser out at /logout, confirming when asked.
func (b *browser) signOut() {
	p := b.get(b.e.issuer + "/logout")
	if p.at("/logout") {
		b.submit(p, "/logout", nil)
	}
}
