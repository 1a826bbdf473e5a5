package main

// Single sign-on end to end (issue 5): our Latchkey ("down") sends users of
// an organisation's domain to the organisation's identity provider — a
// second, real Latchkey ("up") on its own httptest server, database, mail
// sink and clock — where they sign in with up's own pages (password and
// email code), and come back. The negative cases that need an upstream
// misbehaving on purpose (tampered ID tokens, hanging endpoints) use
// federation/federationtest, a small provider whose tokens the test
// controls.

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/config"
	"github.com/latchkey/latchkey/federation"
	"github.com/latchkey/latchkey/federation/federationtest"
	"github.com/latchkey/latchkey/login/flow"
	"github.com/latchkey/latchkey/op"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

const (
	upClientID     = "latchkey-down"
	upClientSecret = "downstream-secret-at-upstream-0123456789"
	orgDomain      = "corp.example"
)

// fed is one federation: our OP, the organisation's IdP, and a product.
type fed struct {
	t    *testing.T
	up   *testEnv
	down *testEnv
	org  storage.Organization
	app  *rp
}

// newFed starts the upstream, then our OP with the organisation in its
// config file (synced at start-up), and registers our OP at the upstream as
// a confidential client.
func newFed(t *testing.T, d storagetest.Dialect, mut ...func(*config.Organization)) *fed {
	t.Helper()
	up := newTestEnv(t, d)
	down := newTestEnv(t, d, func(c *config.Config) {
		o := config.Organization{Name: "Corp", Domains: []string{"Corp.Example"}, Issuer: up.issuer,
			ClientID: upClientID, ClientSecret: upClientSecret}
		for _, m := range mut {
			m(&o)
		}
		c.Organizations = append(c.Organizations, o)
	})
	org, err := down.store.GetOrganizationByName(context.Background(), "Corp")
	if err != nil {
		t.Fatalf("organisation not synced from the config file: %v", err)
	}
	if org.Source != "config" || !slices.Equal(org.Domains, []string{orgDomain}) {
		t.Fatalf("synced organisation = %+v", org)
	}
	f := &fed{t: t, up: up, down: down, org: org, app: down.newRP("app")}
	f.registerAtUpstream("")
	return f
}

// registerAtUpstream (re)registers our OP at the organisation's IdP, a
// confidential web client with our callback and our signed-out page.
func (f *fed) registerAtUpstream(defaultACR string) {
	f.t.Helper()
	ctx := context.Background()
	now := f.up.clock.Now()
	if err := f.up.store.DeleteClient(ctx, upClientID); err != nil && !errors.Is(err, storage.ErrNotFound) {
		f.t.Fatal(err)
	}
	if err := f.up.store.CreateClient(ctx, storage.Client{
		ID: upClientID, Name: "Latchkey (downstream)", AppType: storage.AppTypeWeb,
		SecretHash:             op.HashClientSecret(f.up.kr, upClientSecret),
		RedirectURIs:           []string{f.down.issuer + "/federation/callback"},
		PostLogoutRedirectURIs: []string{f.down.issuer + "/logout/done"},
		GrantTypes:             []string{op.GrantAuthorizationCode}, DefaultACR: defaultACR,
		Source: "cli", CreatedAt: now, UpdatedAt: now,
	}); err != nil {
		f.t.Fatal(err)
	}
}

// advance moves both clocks (they are different servers).
func (f *fed) advance(d time.Duration) {
	f.up.clock.Advance(d)
	f.down.clock.Advance(d)
}

// fedBrowser follows redirects across our OP and the organisation's IdP
// (and any extra host given) and stops at the product.
type fedBrowser struct {
	*browser
	f     *fed
	hosts map[string]bool
	trail []string // "host path" of every hop
	// stopAt: stop before following a redirect to this path on our OP.
	stopAt string
	// stop, when set, stops before following the redirect it says yes to.
	stop func(req *http.Request, via []*http.Request) bool
}

func (f *fed) newBrowser(extraHosts ...string) *fedBrowser {
	jar, _ := cookiejar.New(nil)
	fb := &fedBrowser{f: f, hosts: map[string]bool{host(f.down.issuer): true, host(f.up.issuer): true}}
	for _, h := range extraHosts {
		fb.hosts[host(h)] = true
	}
	fb.browser = &browser{e: f.down, ua: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"}
	fb.browser.client = &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if !fb.hosts[req.URL.Host] {
			return http.ErrUseLastResponse // the product is not a real server
		}
		if fb.stopAt != "" && req.URL.Host == host(f.down.issuer) && req.URL.Path == fb.stopAt {
			return http.ErrUseLastResponse
		}
		if fb.stop != nil && fb.stop(req, via) {
			return http.ErrUseLastResponse
		}
		fb.trail = append(fb.trail, req.URL.Host+" "+req.URL.Path)
		if len(via) > 30 {
			return fmt.Errorf("too many redirects")
		}
		return nil
	}}
	return fb
}

func host(issuer string) string {
	return strings.TrimPrefix(strings.TrimPrefix(issuer, "http://"), "https://")
}

// visited reports whether the browser went through path on env's host.
func (b *fedBrowser) visited(e *testEnv, path string) bool {
	return slices.Contains(b.trail, host(e.issuer)+" "+path)
}

func (b *fedBrowser) get(u string) response {
	b.trail = append(b.trail, strings.TrimPrefix(strings.TrimPrefix(u, "http://"), "https://"))
	if pu, err := url.Parse(u); err == nil {
		b.trail[len(b.trail)-1] = pu.Host + " " + pu.Path
	}
	return b.browser.get(u)
}

// submit posts the page's form like browser.submit, recording the hop.
func (b *fedBrowser) submit(p response, action string, fields url.Values) response {
	b.f.t.Helper()
	b.trail = append(b.trail, p.url.Host+" "+action)
	return b.browser.submit(p, action, fields)
}

var whoRe = regexp.MustCompile(`<p class="who">([^<]*)</p>`)

// signIn drives a sign-in from the product's authorize URL: on our OP
// only the identifier page may appear (typed is the email typed there);
// at the organisation's IdP the user signs in as upEmail with its own
// pages. It returns the redirect to the product, or the first error page.
func (b *fedBrowser) signIn(authURL, typed, upEmail string) response {
	t := b.f.t
	t.Helper()
	down, up := host(b.f.down.issuer), host(b.f.up.issuer)
	p := b.get(authURL)
	for i := 0; i < 16; i++ {
		if p.location != "" || p.status >= 400 {
			return p
		}
		switch {
		case p.url.Host == down && p.at("/login/identify"):
			p = b.submit(p, "/login/identify", url.Values{"email": {typed}})
		case p.url.Host == down:
			t.Fatalf("our OP showed %s to an organisation user (%d):\n%s", p.url.Path, p.status, p.body)
		case p.url.Host == up && p.at("/login/identify"):
			p = b.submit(p, "/login/identify", url.Values{"email": {upEmail}})
		case p.url.Host == up && p.at("/login/password"):
			if m := whoRe.FindStringSubmatch(p.body); m != nil && !strings.EqualFold(html.UnescapeString(m[1]), upEmail) {
				p = b.submit(p, "/login/restart", nil) // "Use another account"
				continue
			}
			p = b.submit(p, "/login/password", url.Values{"password": {testPassword}})
		case p.url.Host == up && p.at("/login/code"):
			p = b.submit(p, "/login/code", url.Values{"code": {b.f.up.mailCode(strings.ToLower(upEmail))}})
		case p.url.Host == up && p.at("/login/remember"):
			p = b.submit(p, "/login/remember", url.Values{"choice": {"no"}})
		case p.url.Host == up && p.at("/login/backup-code"):
			p = b.submit(p, "/login/backup-code", url.Values{"saved": {"yes"}})
		default:
			t.Fatalf("unexpected page %s (%d):\n%s", p.url, p.status, p.body)
		}
	}
	t.Fatal("sign-in did not finish")
	return p
}

// ssoSignIn signs email in through the organisation and returns the
// product's verified claims.
func (f *fed) ssoSignIn(b *fedBrowser, email string, extra ...oauth2.AuthCodeOption) map[string]any {
	f.t.Helper()
	authURL, verifier, state, nonce := f.app.authorizeURL(extra...)
	p := b.signIn(authURL, email, email)
	_, _, claims := f.app.exchange(p.code(f.t, state), verifier, nonce)
	return claims
}

// auditHas reports whether an audit event with this name (and a reason
// containing reason) was written by env.
func auditHas(t *testing.T, e *testEnv, event, reason string) bool {
	t.Helper()
	evs, err := e.store.ListAuditEvents(context.Background(), storage.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.Event == event && strings.Contains(ev.Reason, reason) {
			return true
		}
	}
	return false
}

func countUsers(t *testing.T, e *testEnv) int {
	t.Helper()
	us, err := e.store.ListUsers(context.Background(), storage.ListOptions{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(us)
}

// TestFederationSignIn: a product signs a user of the organisation's
// domain in through our OP, which sends them upstream by their domain
// (never showing our password or code pages); the user signs in at the
// organisation's IdP and comes back; the user is created just in time and
// the product gets acr sso, amr fed and the upstream auth_time. The link
// is reused by later sign-ins (no second user), login_hint skips our
// identifier page, and signing out offers to sign out upstream too.
func TestFederationSignIn(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		f := newFed(t, d)
		ctx := context.Background()
		upUser := f.up.createUser("ada@corp.example")
		b := f.newBrowser()

		claims := f.ssoSignIn(b, "Ada@Corp.Example")
		upAuthTime := f.up.clock.Now().Unix()
		for _, path := range []string{"/federation/start", "/federation/callback"} {
			if !b.visited(f.down, path) {
				t.Errorf("never went through our %s: %v", path, b.trail)
			}
		}
		if !b.visited(f.up, "/login/password") || b.visited(f.down, "/login/password") || b.visited(f.down, "/login/code") {
			t.Errorf("password asked at the wrong place: %v", b.trail)
		}
		u, err := f.down.store.GetUserByEmail(ctx, "ada@corp.example")
		if err != nil {
			t.Fatalf("user not created just in time: %v", err)
		}
		if u.OrgID != f.org.ID || u.PasswordHash != "" || !u.EmailVerified || u.Name != upUser.Name || u.Email != "ada@corp.example" {
			t.Fatalf("JIT user = %+v", u)
		}
		if claims["sub"] != u.ID || claims["acr"] != flow.ACRSSO || claims["email"] != "ada@corp.example" {
			t.Fatalf("claims sub/acr/email = %v %v %v", claims["sub"], claims["acr"], claims["email"])
		}
		if amr := toStrings(claims["amr"]); !slices.Equal(amr, []string{"fed"}) {
			t.Errorf("amr = %v, want [fed] (upstream mfa not trusted)", amr)
		}
		if at, _ := claims["auth_time"].(float64); int64(at) != upAuthTime {
			t.Errorf("auth_time = %v, want the upstream's %d", claims["auth_time"], upAuthTime)
		}
		if !auditHas(t, f.down, "user.created", "just in time") || !auditHas(t, f.down, "signin.success", flow.ACRSSO) {
			t.Error("JIT creation or the sign-in not audited")
		}
		if fi, err := f.down.store.GetFederatedIdentity(ctx, f.org.ID, upUser.ID); err != nil || fi.UserID != u.ID {
			t.Fatalf("link (org, upstream sub) = %+v, %v", fi, err)
		}

		// The same browser: our session stands, no trip upstream.
		b.trail = nil
		authURL, verifier, state, nonce := f.app.authorizeURL()
		p := b.get(authURL)
		_, _, c2 := f.app.exchange(p.code(t, state), verifier, nonce)
		if c2["sub"] != u.ID || c2["acr"] != flow.ACRSSO || b.visited(f.down, "/federation/start") {
			t.Fatalf("session reuse: sub %v acr %v trail %v", c2["sub"], c2["acr"], b.trail)
		}

		// Another browser, with the product's login_hint: straight
		// upstream (no identifier page), and the link is reused.
		f.advance(time.Hour)
		b2 := f.newBrowser()
		c3 := f.ssoSignIn(b2, "ada@corp.example", oauth2.SetAuthURLParam("login_hint", "ada@corp.example"))
		if b2.visited(f.down, "/login/identify") {
			t.Errorf("login_hint: our identifier page was shown: %v", b2.trail)
		}
		if c3["sub"] != u.ID || countUsers(t, f.down) != 1 {
			t.Fatalf("second sign-in: sub %v (want %s), %d users", c3["sub"], u.ID, countUsers(t, f.down))
		}
		if at, _ := c3["auth_time"].(float64); int64(at) != f.up.clock.Now().Unix() {
			t.Errorf("auth_time = %v, want the new upstream sign-in %d", c3["auth_time"], f.up.clock.Now().Unix())
		}

		// A product asking for sso gets it; prompt=none in a new browser
		// fails without going anywhere.
		authURL, verifier, state, nonce = f.app.authorizeURL(oauth2.SetAuthURLParam("acr_values", flow.ACRSSO))
		if _, _, c := f.app.exchange(b2.get(authURL).code(t, state), verifier, nonce); c["acr"] != flow.ACRSSO {
			t.Errorf("acr_values=sso: acr %v", c["acr"])
		}
		authURL, _, _, _ = f.app.authorizeURL(oauth2.SetAuthURLParam("prompt", "none"))
		if got := f.newBrowser().get(authURL).rpError(); got != "login_required" {
			t.Errorf("prompt=none, new browser: %q", got)
		}

		// Sign out of our OP: the done page offers to sign out of the
		// organisation too (end_session with id_token_hint).
		p = b2.get(f.down.issuer + "/logout")
		p = b2.submit(p, "/logout", nil)
		if !p.at("/logout/done") || !strings.Contains(p.body, "Also sign out of Corp") {
			t.Fatalf("logout done page (%s):\n%s", p.url, p.body)
		}
		m := regexp.MustCompile(`<a href="([^"]+)">Also sign out of Corp</a>`).FindStringSubmatch(p.body)
		if m == nil {
			t.Fatalf("no upstream sign-out link:\n%s", p.body)
		}
		link, _ := url.Parse(html.UnescapeString(m[1]))
		if link.Host != host(f.up.issuer) || link.Query().Get("id_token_hint") == "" || link.Query().Get("client_id") != upClientID ||
			link.Query().Get("post_logout_redirect_uri") != f.down.issuer+"/logout/done" {
			t.Fatalf("upstream sign-out link = %s", link)
		}
		p = b2.get(link.String())
		if !p.at("/logout/done") || p.url.Host != host(f.down.issuer) || strings.Contains(p.body, "Also sign out") {
			t.Fatalf("after the upstream sign-out: %s\n%s", p.url, p.body)
		}
		// Both sessions are gone: the next sign-in asks the password
		// upstream again.
		b2.trail = nil
		f.ssoSignIn(b2, "ada@corp.example")
		if !b2.visited(f.up, "/login/password") {
			t.Errorf("upstream session survived its sign-out: %v", b2.trail)
		}
	})
}

// TestFederationConversion: a local account whose email is in the
// organisation's domain is converted on its first SSO sign-in (password,
// authenticator, backup code, trusted devices and sessions removed,
// audited); its password no longer works. An operator's SSO user is
// linked on first sign-in even without just-in-time creation.
func TestFederationConversion(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		f := newFed(t, d, func(o *config.Organization) { no := false; o.JIT = &no })
		ctx := context.Background()
		local := f.down.createUser("bob@corp.example", func(u *storage.User) { u.NeedsBackupCode = true })
		f.down.enrolTOTP(local)
		if err := f.down.store.SetBackupCode(ctx, storage.BackupCode{UserID: local.ID, CodeHash: []byte("x"), CreatedAt: f.down.clock.Now()}, storage.BackupCodeShow{}); err != nil {
			t.Fatal(err)
		}
		// A domain no organisation owns still gets our password page.
		authURL, _, _, _ := f.app.authorizeURL()
		lb := f.down.newBrowser()
		p := lb.submit(lb.get(authURL), "/login/identify", url.Values{"email": {"someone@example.org"}})
		if !p.at("/login/password") {
			t.Fatalf("a domain no organisation owns must get the password page, got %s", p.url)
		}
		f.up.createUser("bob@corp.example")

		b := f.newBrowser()
		claims := f.ssoSignIn(b, "bob@corp.example")
		if claims["sub"] != local.ID || claims["acr"] != flow.ACRSSO {
			t.Fatalf("converted sign-in: sub %v (want %s) acr %v", claims["sub"], local.ID, claims["acr"])
		}
		if b.visited(f.down, "/login/password") {
			t.Fatal("the local password page was shown to a user of an owned domain")
		}
		u, _ := f.down.store.GetUser(ctx, local.ID)
		if u.OrgID != f.org.ID || u.PasswordHash != "" || u.NeedsBackupCode {
			t.Fatalf("converted user = %+v", u)
		}
		if ts, _ := f.down.store.ListTOTP(ctx, u.ID); len(ts) != 0 {
			t.Errorf("authenticator kept: %+v", ts)
		}
		if _, err := f.down.store.GetBackupCode(ctx, u.ID); err == nil {
			t.Error("backup code kept")
		}
		if !auditHas(t, f.down, "user.converted_to_sso", "") {
			t.Error("conversion not audited")
		}

		// The password no longer works: the identifier page sends bob
		// upstream, and the password step refuses to run.
		lb = f.down.newBrowser()
		authURL, _, _, _ = f.app.authorizeURL()
		p = lb.get(authURL)
		csrf := p.csrf(t)
		id := authRequestID(t, p)
		p = lb.submit(p, "/login/identify", url.Values{"email": {"bob@corp.example"}})
		if !strings.HasPrefix(p.location, f.up.issuer+"/authorize?") {
			t.Fatalf("bob was not sent upstream: %s %q", p.url, p.location)
		}
		p = lb.post(f.down.issuer+"/login/password", url.Values{"csrf": {csrf}, "id": {id}, "password": {testPassword}})
		if !strings.HasPrefix(p.location, f.up.issuer+"/authorize?") {
			t.Fatalf("the password step ran for an SSO user: %s (%d)", p.url, p.status)
		}
		if ar, _ := f.down.store.GetAuthRequest(ctx, id); !ar.PasswordAt.IsZero() {
			t.Fatal("a password was recorded for an SSO user")
		}
		// Without JIT: an unknown user is refused and not created; a user
		// the operator made for the organisation is linked.
		f.up.createUser("carol@corp.example")
		authURL, _, _, _ = f.app.authorizeURL()
		p = f.newBrowser().signIn(authURL, "carol@corp.example", "carol@corp.example")
		if p.status != http.StatusForbidden || !strings.Contains(p.body, "has not given you access") {
			t.Fatalf("no JIT: %d\n%s", p.status, p.body)
		}
		if _, err := f.down.store.GetUserByEmail(ctx, "carol@corp.example"); err == nil {
			t.Fatal("a user was created although JIT is off")
		}
		carol := f.down.createUser("carol@corp.example", func(u *storage.User) { u.PasswordHash, u.OrgID = "", f.org.ID })
		if c := f.ssoSignIn(f.newBrowser(), "carol@corp.example"); c["sub"] != carol.ID {
			t.Fatalf("operator's SSO user not linked: sub %v", c["sub"])
		}
	})
}

// TestFederationRefusals: an upstream identity outside the organisation's
// domains, an upstream access_denied, a forged state, a replayed callback
// and a callback in another browser each get a clear page, are audited,
// and create no user.
func TestFederationRefusals(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		f := newFed(t, d)

		// Outside the domains: the user typed an address of the owned
		// domain but signs in upstream as someone of another domain.
		f.up.createUser("eve@other.example")
		authURL, _, _, _ := f.app.authorizeURL()
		p := f.newBrowser().signIn(authURL, "eve@corp.example", "eve@other.example")
		if p.status != http.StatusForbidden || !strings.Contains(p.body, "does not belong to it") {
			t.Fatalf("email outside the domains: %d\n%s", p.status, p.body)
		}
		if countUsers(t, f.down) != 0 || !auditHas(t, f.down, "sso.failure", "outside the organisation's domains") {
			t.Fatalf("outside the domains: %d users, audited %v", countUsers(t, f.down), auditHas(t, f.down, "sso.failure", "outside"))
		}

		// The upstream says access_denied (its policy refuses our client,
		// which demands acr sso, for its local users).
		f.registerAtUpstream(flow.ACRSSO)
		f.up.createUser("dan@corp.example")
		authURL, _, _, _ = f.app.authorizeURL()
		p = f.newBrowser().signIn(authURL, "dan@corp.example", "dan@corp.example")
		if p.status != http.StatusForbidden || !strings.Contains(p.body, "Your organisation did not let you in") {
			t.Fatalf("upstream access_denied: %d\n%s", p.status, p.body)
		}
		if countUsers(t, f.down) != 0 || !auditHas(t, f.down, "sso.failure", "upstream error: access_denied") {
			t.Fatal("access_denied: a user was created or the failure not audited")
		}
		f.registerAtUpstream("")

		// A forged state.
		b := f.newBrowser()
		p = b.get(f.down.issuer + "/federation/callback?state=forged&code=whatever")
		if p.status != http.StatusBadRequest || !strings.Contains(p.body, "not valid or has expired") {
			t.Fatalf("forged state: %d\n%s", p.status, p.body)
		}
		if !auditHas(t, f.down, "sso.failure", "unknown or expired state") {
			t.Error("forged state not audited")
		}
		for _, q := range []string{"", "?code=x", "?state=" + strings.Repeat("a", 600)} {
			if p := b.get(f.down.issuer + "/federation/callback" + q); p.status != http.StatusBadRequest {
				t.Errorf("callback%s: %d", q, p.status)
			}
		}
		if p := b.get(f.down.issuer + "/federation/start?id=nope"); p.status != http.StatusBadRequest {
			t.Errorf("start with an unknown sign-in: %d", p.status)
		}

		// The callback arrives in another browser: refused; the state is
		// spent, so the real browser must start again too.
		b = f.newBrowser()
		b.stopAt = "/federation/callback"
		authURL, _, _, _ = f.app.authorizeURL()
		p = b.signIn(authURL, "dan@corp.example", "dan@corp.example")
		callback := p.location
		if !strings.HasPrefix(callback, f.down.issuer+"/federation/callback?") {
			t.Fatalf("expected a redirect to our callback, got %q (%s)", callback, p.url)
		}
		if p := f.newBrowser().get(callback); p.status != http.StatusForbidden || !strings.Contains(p.body, "another browser") {
			t.Fatalf("callback in another browser: %d\n%s", p.status, p.body)
		}
		b.stopAt = ""
		if p := b.get(callback); p.status != http.StatusBadRequest || !strings.Contains(p.body, "already been used") {
			t.Fatalf("callback after it was spent: %d\n%s", p.status, p.body)
		}
		if countUsers(t, f.down) != 0 {
			t.Fatal("a refused callback created a user")
		}

		// A replayed callback, after a sign-in that worked.
		b = f.newBrowser()
		b.stopAt = "/federation/callback"
		authURL, verifier, state, nonce := f.app.authorizeURL()
		callback = b.signIn(authURL, "dan@corp.example", "dan@corp.example").location
		b.stopAt = ""
		p = b.get(callback)
		f.app.exchange(p.code(t, state), verifier, nonce)
		if p := b.get(callback); p.status != http.StatusBadRequest || !strings.Contains(p.body, "already been used") {
			t.Fatalf("replayed callback: %d\n%s", p.status, p.body)
		}
		if !auditHas(t, f.down, "sso.failure", "replayed callback") || countUsers(t, f.down) != 1 {
			t.Fatal("replay not audited, or it created a user")
		}

		// An upstream sign-in vouches for the user it linked only: back
		// from the callback, "Use another account" and another SSO user's
		// email must not finish as that user.
		dan, err := f.down.store.GetUserByEmail(context.Background(), "dan@corp.example")
		if err != nil {
			t.Fatal(err)
		}
		f.up.createUser("mallory@corp.example")
		b = f.newBrowser()
		b.stop = func(req *http.Request, via []*http.Request) bool {
			return req.URL.Path == "/login" && via[len(via)-1].URL.Path == "/federation/callback"
		}
		authURL, verifier, state, nonce = f.app.authorizeURL()
		p = b.get(authURL)
		id, csrf := authRequestID(t, p), p.csrf(t)
		p = b.signIn(authURL, "mallory@corp.example", "mallory@corp.example")
		if !strings.HasPrefix(p.location, "/login?") {
			t.Fatalf("expected to stop at the dispatcher after the callback, got %q (%s)", p.location, p.url)
		}
		ar, _ := f.down.store.GetAuthRequest(context.Background(), authRequestIDFrom(t, p.location))
		if ar.FederatedAt.IsZero() {
			t.Fatal("the callback did not record the upstream sign-in")
		}
		id = ar.ID
		b.stop = nil
		// The upstream sign-in gave the browser a new handle: the forms of
		// before it are dead; a page now has a token for the new one.
		if p = b.post(f.down.issuer+"/login/restart", url.Values{"csrf": {csrf}, "id": {id}}); p.status != http.StatusForbidden {
			t.Fatalf("a form from before the upstream sign-in: %d", p.status)
		}
		csrf = b.get(f.down.issuer + "/device").csrf(t)
		p = b.post(f.down.issuer+"/login/restart", url.Values{"csrf": {csrf}, "id": {id}})
		b.stopAt = "/federation/start"
		p = b.post(f.down.issuer+"/login/identify", url.Values{"csrf": {csrf}, "id": {id}, "email": {dan.Email}})
		if !strings.HasPrefix(p.location, "/federation/start?") {
			t.Fatalf("after restart, another SSO user's email must go upstream again, got %q (%s)", p.location, p.url)
		}
		if ar, _ := f.down.store.GetAuthRequest(context.Background(), id); ar.Done || !ar.FederatedAt.IsZero() || ar.UserID != dan.ID {
			t.Fatalf("restart kept the upstream sign-in: done %v federated %v user %s", ar.Done, ar.FederatedAt, ar.UserID)
		}
		// Upstream, mallory's session answers: the product gets mallory.
		b.stopAt = ""
		p = b.get(f.down.issuer + p.location)
		if _, _, c := f.app.exchange(p.code(t, state), verifier, nonce); c["sub"] == dan.ID || c["email"] != "mallory@corp.example" {
			t.Fatalf("signed in as %v (%v)", c["sub"], c["email"])
		}
	})
}

// authRequestIDFrom reads the auth request id of a dispatcher URL.
func authRequestIDFrom(t *testing.T, loc string) string {
	t.Helper()
	u, err := url.Parse(loc)
	if err != nil || u.Query().Get("authRequestID") == "" {
		t.Fatalf("no auth request in %q", loc)
	}
	return u.Query().Get("authRequestID")
}

// TestFederationPromptLoginAndMaxAge: a product's prompt=login and max_age
// are passed upstream, which asks for the password again; the new
// upstream auth_time reaches the product.
func TestFederationPromptLoginAndMaxAge(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		f := newFed(t, d)
		f.up.createUser("ada@corp.example")
		b := f.newBrowser()
		first := f.ssoSignIn(b, "ada@corp.example")

		f.advance(5 * time.Minute)
		b.trail = nil
		c := f.ssoSignIn(b, "ada@corp.example", oauth2.SetAuthURLParam("prompt", "login"))
		if !b.visited(f.down, "/federation/start") || !b.visited(f.up, "/login/password") {
			t.Fatalf("prompt=login did not make the upstream ask again: %v", b.trail)
		}
		if at, _ := c["auth_time"].(float64); int64(at) != f.up.clock.Now().Unix() || at <= first["auth_time"].(float64) {
			t.Errorf("prompt=login auth_time = %v, want %d", c["auth_time"], f.up.clock.Now().Unix())
		}
		if c["sub"] != first["sub"] {
			t.Errorf("prompt=login changed the user")
		}

		// Within max_age our session stands; beyond it, the upstream is
		// asked with max_age and signs the user in again.
		b.trail = nil
		f.ssoSignIn(b, "ada@corp.example", oauth2.SetAuthURLParam("max_age", "600"))
		if b.visited(f.down, "/federation/start") {
			t.Errorf("max_age=600 after 0 s went upstream: %v", b.trail)
		}
		f.advance(2 * time.Minute)
		b.trail = nil
		c = f.ssoSignIn(b, "ada@corp.example", oauth2.SetAuthURLParam("max_age", "60"))
		if !b.visited(f.up, "/login/password") {
			t.Fatalf("max_age=60 after 2 min did not ask upstream again: %v", b.trail)
		}
		if at, _ := c["auth_time"].(float64); int64(at) != f.up.clock.Now().Unix() {
			t.Errorf("max_age auth_time = %v, want %d", c["auth_time"], f.up.clock.Now().Unix())
		}
	})
}

// TestFederationTrustUpstreamMFA: the upstream Latchkey's ID token says
// amr pwd otp mfa; our tokens carry it only when the organisation says to
// trust it.
func TestFederationTrustUpstreamMFA(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		f := newFed(t, d, func(o *config.Organization) { o.TrustUpstreamMFA = true })
		ctx := context.Background()
		f.up.createUser("ada@corp.example")
		b := f.newBrowser()
		c := f.ssoSignIn(b, "ada@corp.example")
		if amr := toStrings(c["amr"]); !slices.Equal(amr, []string{"fed", "pwd", "otp", "mfa"}) {
			t.Errorf("trusted upstream amr = %v, want [fed pwd otp mfa]", amr)
		}
		if c["acr"] != flow.ACRSSO {
			t.Errorf("acr = %v", c["acr"])
		}
		// A product that wants mfa accepts a trusted upstream's.
		authURL, verifier, state, nonce := f.app.authorizeURL(oauth2.SetAuthURLParam("acr_values", flow.ACRMFA))
		if _, _, c := f.app.exchange(b.get(authURL).code(t, state), verifier, nonce); !slices.Contains(toStrings(c["amr"]), "mfa") {
			t.Errorf("acr_values=mfa with a trusted upstream: amr %v", c["amr"])
		}

		if _, err := f.down.store.UpdateOrganization(ctx, f.org.ID, func(o *storage.Organization) error {
			o.TrustUpstreamMFA = false
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		f.advance(5 * time.Minute)
		c = f.ssoSignIn(b, "ada@corp.example", oauth2.SetAuthURLParam("prompt", "login"))
		if amr := toStrings(c["amr"]); !slices.Equal(amr, []string{"fed"}) {
			t.Errorf("untrusted upstream amr = %v, want [fed]", amr)
		}
		// … and then a product wanting mfa is refused.
		authURL, _, _, _ = f.app.authorizeURL(oauth2.SetAuthURLParam("acr_values", flow.ACRMFA))
		if got := b.get(authURL).rpError(); got != "access_denied" {
			t.Errorf("acr_values=mfa without a trusted upstream: %q", got)
		}
	})
}

// TestFederationBadUpstream: tampered ID tokens (wrong nonce, wrong
// audience, another issuer, expired, no email, unverified email, an
// auth_time that does not meet max_age / prompt=login) and an upstream
// that is down or hangs each give a clear page, an audit event and no
// user. These need an upstream misbehaving on purpose: federationtest.
func TestFederationBadUpstream(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		tp := federationtest.New(t.Cleanup, upClientID, upClientSecret)
		closed, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		gone := "http://" + closed.Addr().String()
		closed.Close()
		down := newTestEnv(t, d, func(c *config.Config) {
			c.Organizations = append(c.Organizations,
				config.Organization{Name: "Tamper", Domains: []string{"tamper.example"}, Issuer: tp.Issuer,
					ClientID: upClientID, ClientSecret: upClientSecret},
				config.Organization{Name: "Gone", Domains: []string{"gone.example"}, Issuer: gone,
					ClientID: upClientID, ClientSecret: upClientSecret})
		})
		f := &fed{t: t, up: down, down: down, app: down.newRP("app")}
		down.srv.fed.SetTimeout(500 * time.Millisecond)
		// auth_time on our (frozen) clock, so that only the tampered cases
		// are out of bounds.
		tp.SetClaims(map[string]any{"sub": "t-1", "email": "tim@tamper.example", "name": "Tim", "auth_time": down.clock.Now().Unix()})
		hourAgo := down.clock.Now().Add(-time.Hour).Unix()

		try := func(email string, extra ...oauth2.AuthCodeOption) response {
			t.Helper()
			authURL, _, _, _ := f.app.authorizeURL(extra...)
			b := f.newBrowser(tp.Issuer)
			return b.signIn(authURL, email, email)
		}
		for _, tc := range []struct {
			name   string
			tamper func(map[string]any)
			extra  []oauth2.AuthCodeOption
			status int
			page   string
			audit  string
		}{
			{"wrong nonce", func(m map[string]any) { m["nonce"] = "replayed-from-elsewhere" }, nil,
				http.StatusForbidden, "could not verify the answer", "invalid id token"},
			{"wrong audience", func(m map[string]any) { m["aud"] = "some-other-client" }, nil,
				http.StatusForbidden, "could not verify the answer", "invalid id token"},
			{"another issuer", func(m map[string]any) { m["iss"] = "https://idp.evil.example" }, nil,
				http.StatusForbidden, "could not verify the answer", "invalid id token"},
			{"expired", func(m map[string]any) { m["exp"] = time.Now().Add(-10 * time.Minute).Unix() }, nil,
				http.StatusForbidden, "could not verify the answer", "invalid id token"},
			{"no email", func(m map[string]any) { delete(m, "email") }, nil,
				http.StatusForbidden, "did not tell us your email", "no email claim"},
			{"email not verified", func(m map[string]any) { m["email_verified"] = false }, nil,
				http.StatusForbidden, "has not confirmed your email", "email_verified=false"},
			{"auth_time older than max_age", func(m map[string]any) { m["auth_time"] = hourAgo },
				[]oauth2.AuthCodeOption{oauth2.SetAuthURLParam("max_age", "300")},
				http.StatusForbidden, "did not confirm your identity again", "older than max_age"},
			{"no auth_time although max_age", func(m map[string]any) { delete(m, "auth_time") },
				[]oauth2.AuthCodeOption{oauth2.SetAuthURLParam("max_age", "300")},
				http.StatusForbidden, "did not confirm your identity again", "no auth_time"},
			{"old auth_time despite prompt=login", func(m map[string]any) { m["auth_time"] = hourAgo },
				[]oauth2.AuthCodeOption{oauth2.SetAuthURLParam("prompt", "login")},
				http.StatusForbidden, "did not confirm your identity again", "did not sign the user in again"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tp.Tamper(tc.tamper)
				defer tp.Tamper(nil)
				p := try("tim@tamper.example", tc.extra...)
				if p.status != tc.status || !strings.Contains(p.body, tc.page) {
					t.Fatalf("status %d, page:\n%s", p.status, p.body)
				}
				if !auditHas(t, down, "sso.failure", tc.audit) {
					t.Errorf("no sso.failure audit with %q", tc.audit)
				}
				if countUsers(t, down) != 0 {
					t.Fatal("a refused sign-in created a user")
				}
			})
		}
		// The upstream got what the product asked for (zitadel turns
		// prompt=login into max_age=0 as well).
		try("tim@tamper.example", oauth2.SetAuthURLParam("max_age", "300"))
		if q := tp.LastAuthorize(); q.Get("max_age") != "300" || q.Has("prompt") ||
			q.Get("login_hint") != "tim@tamper.example" || q.Get("code_challenge_method") != "S256" || q.Get("nonce") == "" {
			t.Errorf("upstream authorize request = %v", q)
		}
		try("tim@tamper.example", oauth2.SetAuthURLParam("prompt", "login"))
		if q := tp.LastAuthorize(); q.Get("prompt") != "login" {
			t.Errorf("upstream authorize request = %v", q)
		}
		if countUsers(t, down) != 1 {
			t.Fatalf("the untampered sign-in: %d users", countUsers(t, down))
		}

		// Upstream down: connection refused, discovery hanging, token
		// endpoint hanging.
		start := time.Now()
		p := try("gus@gone.example")
		if p.status != http.StatusBadGateway || !strings.Contains(p.body, "could not reach your organisation") {
			t.Fatalf("connection refused: %d\n%s", p.status, p.body)
		}
		tp.Hang("token", 10*time.Second)
		p = try("tim@tamper.example")
		if p.status != http.StatusBadGateway || !strings.Contains(p.body, "could not reach your organisation") {
			t.Fatalf("token endpoint hanging: %d\n%s", p.status, p.body)
		}
		tp.Hang("token", 0)
		tp.Hang("discovery", 10*time.Second) // the failed exchange dropped the cached discovery
		p = try("tim@tamper.example")
		if p.status != http.StatusBadGateway || !strings.Contains(p.body, "could not reach your organisation") {
			t.Fatalf("discovery hanging: %d\n%s", p.status, p.body)
		}
		tp.Hang("discovery", 0)
		if time.Since(start) > 8*time.Second {
			t.Errorf("upstream timeouts took %v", time.Since(start))
		}
		if !auditHas(t, down, "sso.failure", "upstream unreachable") {
			t.Error("unreachable upstream not audited")
		}
		if p := try("tim@tamper.example"); p.location == "" {
			t.Fatalf("after the upstream recovered: %d\n%s", p.status, p.body)
		}
	})
}

// TestOrganizationsFromConfig: the config file's organisations are synced
// at start-up (secret sealed under the organisation's id, removed ones
// deleted); organisations created with the CLI are left alone.
func TestOrganizationsFromConfig(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d, func(c *config.Config) {
			c.Organizations = []config.Organization{{Name: "Corp", Domains: []string{"corp.example", "corp.test"},
				Issuer: "https://idp.corp.example", ClientID: "lk", ClientSecret: "s3cret", Claims: config.Claims{Groups: "groups"}}}
		})
		ctx := context.Background()
		o, err := e.store.GetOrganizationByDomain(ctx, "CORP.test")
		if err != nil {
			t.Fatal(err)
		}
		if secret, err := e.kr.Open(o.ClientSecretSealed, federation.SecretAD(o.ID)); err != nil || string(secret) != "s3cret" {
			t.Fatalf("sealed secret: %q, %v", secret, err)
		}
		if !o.JITProvisioning || o.ClaimEmail != "email" || o.ClaimName != "name" || o.ClaimGroups != "groups" ||
			!slices.Equal(o.Scopes, []string{"openid", "email", "profile"}) {
			t.Fatalf("defaults not applied: %+v", o)
		}
		cli := storage.Organization{ID: storage.NewID(), Name: "Other", Domains: []string{"other.example"}, Issuer: "https://idp.other.example",
			ClientID: "lk", Source: "cli", Scopes: []string{"openid"}}
		if _, err := e.store.CreateOrganization(ctx, cli); err != nil {
			t.Fatal(err)
		}
		// Restart with the file changed: Corp keeps its id (its users stay
		// linked) and loses a domain.
		e.app.cfg.Organizations[0].Domains = []string{"corp.example"}
		if err := e.app.syncOrganizations(ctx, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		o2, err := e.store.GetOrganizationByName(ctx, "Corp")
		if err != nil || o2.ID != o.ID || !slices.Equal(o2.Domains, []string{"corp.example"}) {
			t.Fatalf("after the change: %+v, %v", o2, err)
		}
		if _, err := e.kr.Open(o2.ClientSecretSealed, federation.SecretAD(o2.ID)); err != nil {
			t.Fatalf("secret after re-sync: %v", err)
		}
		// Removed from the file: deleted; the CLI's stays.
		e.app.cfg.Organizations = nil
		if err := e.app.syncOrganizations(ctx, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.GetOrganizationByName(ctx, "Corp"); err == nil {
			t.Fatal("organisation removed from the file survived")
		}
		if _, err := e.store.GetOrganizationByName(ctx, "Other"); err != nil {
			t.Fatalf("the CLI's organisation was touched: %v", err)
		}
		if configOrgID("Corp") != configOrgID("Corp") || configOrgID("Corp") == configOrgID("Corp2") {
			t.Fatal("config organisation ids must be a function of the name")
		}
	})
}

// TestCLIOrg: org create / list / delete and their exit codes.
func TestCLIOrg(t *testing.T) {
	t.Parallel()
	env := cliEnviron(t)
	if code, out, errOut := cli(t, env, "", "migrate"); code != exitOK {
		t.Fatalf("migrate: %d %s %s", code, out, errOut)
	}
	create := []string{"org", "create", "--name", "Corp", "--domain", "corp.example", "--domain", "Corp.Test",
		"--issuer", "https://idp.corp.example", "--client-id", "lk", "--client-secret-stdin",
		"--claim-groups", "roles", "--trust-upstream-mfa", "--no-jit", "--scope", "openid", "--scope", "email"}
	for _, tc := range []struct {
		name   string
		stdin  string
		args   []string
		code   int
		stdout string
	}{
		{"no subcommand", "", []string{"org"}, exitUsage, ""},
		{"unknown subcommand", "", []string{"org", "frob"}, exitUsage, ""},
		{"missing flags", "s", []string{"org", "create", "--name", "X", "--client-secret-stdin"}, exitUsage, ""},
		{"secret not from stdin", "", []string{"org", "create", "--name", "X", "--domain", "x.example", "--issuer", "https://x.example", "--client-id", "c"}, exitUsage, ""},
		{"plain http issuer", "s", []string{"org", "create", "--name", "X", "--domain", "x.example", "--issuer", "http://x.example", "--client-id", "c", "--client-secret-stdin"}, exitUsage, ""},
		{"bad domain", "s", []string{"org", "create", "--name", "X", "--domain", "nodot", "--issuer", "https://x.example", "--client-id", "c", "--client-secret-stdin"}, exitUsage, ""},
		{"scopes without openid", "s", []string{"org", "create", "--name", "X", "--domain", "x.example", "--issuer", "https://x.example", "--client-id", "c", "--client-secret-stdin", "--scope", "email"}, exitUsage, ""},
		{"empty secret", "", []string{"org", "create", "--name", "X", "--domain", "x.example", "--issuer", "https://x.example", "--client-id", "c", "--client-secret-stdin"}, exitUsage, ""},
		{"create", "the-upstream-secret\n", create, exitOK, "created organisation Corp"},
		{"same name", "s", create, exitConflict, ""},
		{"domain owned by another", "s", []string{"org", "create", "--name", "Corp2", "--domain", "corp.test", "--issuer", "https://x.example", "--client-id", "c", "--client-secret-stdin"}, exitConflict, ""},
		{"list", "", []string{"org", "list"}, exitOK, "corp.example,corp.test"},
		{"delete unknown", "", []string{"org", "delete", "--name", "Nope"}, exitNotFound, ""},
		{"delete without name", "", []string{"org", "delete"}, exitUsage, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := cli(t, env, tc.stdin, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.stdout) {
				t.Fatalf("exit %d (want %d)\nstdout: %s\nstderr: %s", code, tc.code, out, errOut)
			}
			if strings.Contains(out+errOut, "the-upstream-secret") {
				t.Fatal("the client secret was printed")
			}
		})
	}
	a, err := openApp(&cmdEnv{ctx: context.Background(), stderr: &strings.Builder{}, environ: env, createDB: true}, "", false)
	if err != nil {
		t.Fatal(err)
	}
	o, err := a.store.GetOrganizationByName(context.Background(), "Corp")
	if err != nil {
		t.Fatal(err)
	}
	secret, err := a.kr.Open(o.ClientSecretSealed, federation.SecretAD(o.ID))
	if err != nil || string(secret) != "the-upstream-secret" || o.Source != "cli" || o.JITProvisioning || !o.TrustUpstreamMFA ||
		o.ClaimGroups != "roles" || !slices.Equal(o.Scopes, []string{"openid", "email"}) || !slices.Equal(o.Domains, []string{"corp.example", "corp.test"}) {
		t.Fatalf("stored organisation = %+v (secret %q, %v)", o, secret, err)
	}
	a.close()
	if code, out, errOut := cli(t, env, "", "org", "delete", "--name", "Corp"); code != exitOK || !strings.Contains(out, "deleted organisation Corp") {
		t.Fatalf("delete: %d %s %s", code, out, errOut)
	}
	if code, _, _ := cli(t, env, "", "org", "delete", "--name", "Corp"); code != exitNotFound {
		t.Fatalf("delete twice: %d", code)
	}
}
