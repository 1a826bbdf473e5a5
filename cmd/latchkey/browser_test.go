package main

// The real-browser passkey test: Debian's Chromium, headless, driven over
// the DevTools protocol (chromedp), with Chrome's virtual authenticator
// (the CDP WebAuthn domain) standing in for a phone or security key,
// against the wired server on http://localhost:PORT (a secure context for
// WebAuthn: plain http is one only on localhost). It runs our own
// passkey.js as a user's browser would: set up a passkey on the security
// page, sign out, sign in with it without a password, then as the second
// step after the password, and step a password+code sign-in up to
// urn:latchkey:acr:phr. A product (a small HTTP server on loopback)
// receives the codes; go-oidc checks the ID tokens.
//
// Without Chromium the test skips with a message, except under CI=true,
// where .ci/run installs Debian's chromium package and a missing browser
// fails. Every browser action has its own timeout; the whole test takes a
// few seconds.

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/login/flow"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// chromiumPath finds a Chromium: $LATCHKEY_CHROMIUM, Debian's
// /usr/bin/chromium, or one on the PATH.
func chromiumPath() string {
	if p := os.Getenv("LATCHKEY_CHROMIUM"); p != "" {
		return p
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// chrome is one headless Chromium tab and what the test reads through it.
type chrome struct {
	t   *testing.T
	e   *testEnv
	ctx context.Context
}

// do runs actions with their own deadline; on failure it says where the
// browser was and what the page showed.
func (c *chrome) do(what string, d time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, d)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		dctx, dcancel := context.WithTimeout(c.ctx, 2*time.Second)
		defer dcancel()
		loc, _ := chromedp.Run(dctx, chromedp.Location())
		body, _ := chromedp.Run(dctx, chromedp.OuterHTML(chromedp.CSS("main")))
		c.t.Fatalf("%s: %v\nat %s:\n%s", what, err, loc, body)
	}
}

const step = 10 * time.Second

func (c *chrome) open(u string) { c.do("open "+u, step, chromedp.Navigate(u)) }

// fill types value into the input sel and presses the form's button.
func (c *chrome) fill(sel, value, button string) {
	c.t.Helper()
	c.do("fill "+sel, step, chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.SetValue(chromedp.CSS(sel), value),
		chromedp.Click(chromedp.CSS(button)))
}

func (c *chrome) click(sel string) {
	c.t.Helper()
	c.do("click "+sel, step, chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.Click(chromedp.CSS(sel)))
}

// waitText waits until the text of sel contains want (pages change under
// the query while the browser navigates) and returns it.
func (c *chrome) waitText(sel, want string) string {
	c.t.Helper()
	deadline := time.Now().Add(step)
	var got string
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(c.ctx, time.Second)
		got, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		cancel()
		if err == nil && strings.Contains(got, want) {
			return got
		}
		time.Sleep(50 * time.Millisecond) // polling the browser, not timing the server
	}
	loc, _ := chromedp.Run(c.ctx, chromedp.Location())
	c.t.Fatalf("no %q in %s at %s (%v): %q", want, sel, loc, err, got)
	return ""
}

// Pages of the sign-in, answered as a user would.
func (c *chrome) identify(email string) {
	c.fill("#email", email, `form[action="/login/identify"] button[type=submit]`)
}
func (c *chrome) password() {
	c.fill("#password", testPassword, `form[action="/login/password"] button[type=submit]`)
}
func (c *chrome) emailCode(email string) {
	c.t.Helper()
	c.do("wait for the code page", step, chromedp.WaitVisible(chromedp.CSS("#code")))
	c.fill("#code", c.e.mailCode(email), `form[action="/login/code"] button[type=submit]`)
}
func (c *chrome) dontTrust() { c.click(`form[action="/login/remember"] button[value=no]`) }

// usePasskey presses the page's passkey button: the virtual authenticator
// answers (user present and verified at once).
func (c *chrome) usePasskey() { c.click(`form[data-passkey] button[type=submit]`) }

func (c *chrome) signOut() {
	c.open(c.e.issuer + "/logout")
	c.click(`form[action="/logout"] button[type=submit]`)
	c.waitText("main", "You are signed out")
}

// product is a relying party on loopback that the browser really reaches.
type product struct {
	*rp
	codes chan url.Values
}

func (e *testEnv) newProduct(t *testing.T) *product {
	codes := make(chan url.Values, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/callback" {
			codes <- r.URL.Query()
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, `<!doctype html><title>Shop</title><p id="rp-done">Back at the product.</p>`)
	}))
	t.Cleanup(srv.Close)
	r := e.newRP("shop", func(c *storage.Client) { c.RedirectURIs = []string{srv.URL + "/callback"} })
	return &product{rp: r, codes: codes}
}

// signIn starts a sign-in in the browser, lets answer drive its pages, and
// returns the verified ID token's claims.
func (p *product) signIn(c *chrome, answer func(), extra ...oauth2.AuthCodeOption) map[string]any {
	c.t.Helper()
	authURL, verifier, state, nonce := p.authorizeURL(extra...)
	c.open(authURL)
	answer()
	c.do("back at the product", step, chromedp.WaitVisible(chromedp.ID("rp-done")))
	select {
	case q := <-p.codes:
		_, _, claims := p.exchange(q.Get("code"), verifier, nonce)
		if q.Get("state") != state {
			c.t.Fatalf("state %q, want %q", q.Get("state"), state)
		}
		return claims
	case <-time.After(step):
		c.t.Fatal("the product got no code")
	}
	return nil
}

func TestPasskeyRealBrowser(t *testing.T) {
	t.Parallel()
	bin := chromiumPath()
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("no Chromium, but CI=true: .ci/run installs Debian's chromium (apt-get install -y chromium); the real-browser passkey test must run in CI")
		}
		t.Skip("no Chromium found (/usr/bin/chromium, $LATCHKEY_CHROMIUM or chromium on the PATH): the real-browser passkey test is skipped; apt-get install -y chromium runs it")
	}
	// One database after the other: one Chromium at a time on a small
	// machine.
	for _, d := range storagetest.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) { passkeysInChromium(t, bin, d) })
	}
}

func passkeysInChromium(t *testing.T, bin string, d storagetest.Dialect) {
	e := newTestEnv(t, d, localhostIssuer)
	u := e.createUser("chromium@example.com")
	shop := e.newProduct(t)

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()),
		// No internet here: without these Chromium keeps calling home.
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true), chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true), chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter"),
	)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	c := &chrome{t: t, e: e, ctx: ctx}

	// Start the browser (the first call, without a deadline: a deadline
	// there would end the browser with it), then give it a platform
	// authenticator that holds discoverable credentials and verifies its
	// user.
	start := make(chan error, 1)
	go func() { start <- chromedp.Do(ctx, chromedp.Navigate("about:blank")) }()
	select {
	case err := <-start:
		if err != nil {
			t.Fatalf("start Chromium %s: %v", bin, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Chromium did not start within 30 s")
	}
	// Each call gets its own deadline (a slow machine may take longer than
	// one step for the whole test).
	actx := func() context.Context {
		c, cancel := context.WithTimeout(ctx, step)
		t.Cleanup(cancel)
		return c
	}
	if _, err := chromedp.Call(actx(), webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatalf("WebAuthn.enable: %v", err)
	}
	auth, err := chromedp.Call(actx(), webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
		Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol: webauthn.AuthenticatorProtocolCtap2, Transport: webauthn.AuthenticatorTransportInternal,
			HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
		},
	})
	if err != nil {
		t.Fatalf("WebAuthn.addVirtualAuthenticator: %v", err)
	}

	// 1. Set up a passkey on the security page: sign in (password and
	// email code), reconfirm, name it, "Set up".
	c.open(e.issuer + "/account/security")
	c.identify(u.Email)
	c.password()
	c.emailCode(u.Email)
	c.dontTrust()
	c.waitText("main", "Not set up. A passkey")
	c.click(`a[href="/account/security/passkeys"]`)
	c.password() // the reconfirmation
	c.emailCode(u.Email)
	c.dontTrust()
	c.fill("#name", "Chromium", `form[data-passkey="create"] button[type=submit]`)
	c.waitText("p.notice", "Your passkey is set up")
	pks, err := e.store.ListPasskeys(context.Background(), u.ID)
	if err != nil || len(pks) != 1 || pks[0].Name != "Chromium" || !pks[0].UserVerified {
		t.Fatalf("stored passkeys: %+v %v", pks, err)
	}
	creds, err := chromedp.Call(actx(), webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: auth.AuthenticatorID})
	if err != nil || len(creds.Credentials) != 1 || !creds.Credentials[0].IsResidentCredential ||
		string(creds.Credentials[0].CredentialID) != string(pks[0].CredentialID) {
		t.Fatalf("the authenticator's credentials: %+v %v", creds, err)
	}

	// The authenticator app's key on a 320 px screen (issue 14): it wraps
	// between its groups of four, never inside one, and stays on screen.
	c.do("a 320 px screen", step, chromedp.EmulateViewport(320, 640))
	c.open(e.issuer + "/account/security/totp")
	c.waitText("main", "Can't scan it?")
	kctx, kcancel := context.WithTimeout(ctx, step)
	layout, err := chromedp.Run(kctx, chromedp.Evaluate[[]int](`(() => {
		const gs = [...document.querySelectorAll("#totp-key .group")];
		const rows = new Set(gs.map(g => Math.round(g.getBoundingClientRect().top)));
		const split = gs.filter(g => g.getClientRects().length !== 1 || g.getBoundingClientRect().height > gs[0].getBoundingClientRect().height + 1);
		const off = gs.filter(g => g.getBoundingClientRect().right > window.innerWidth);
		return [gs.length, rows.size, split.length, off.length, window.innerWidth];
	})()`))
	kcancel()
	if err != nil || len(layout) != 5 || layout[0] < 8 || layout[1] < 2 || layout[2] != 0 || layout[3] != 0 || layout[4] != 320 {
		t.Fatalf("the key at 320 px: [groups rows broken-groups off-screen width] = %v (%v)", layout, err)
	}
	c.do("back to a wide screen", step, chromedp.EmulateViewport(1280, 800))
	c.signOut()

	// 2a. Passwordless through the browser's passkey autofill: the
	// identifier page starts a conditional request as it loads, and the
	// virtual authenticator, which needs no touch, answers it at once.
	ectx, ecancel := context.WithTimeout(ctx, step)
	conditional, err := chromedp.Run(ectx, chromedp.Evaluate[bool](
		`PublicKeyCredential.isConditionalMediationAvailable ? PublicKeyCredential.isConditionalMediationAvailable() : false`,
		chromedp.EvalAwaitPromise))
	ecancel()
	if err != nil {
		t.Fatalf("isConditionalMediationAvailable: %v", err)
	}
	if conditional {
		claims := shop.signIn(c, func() {})
		if claims["sub"] != u.ID || claims["acr"] != flow.ACRPhishingResistant || strings.Join(amrList(claims), " ") != "hwk user pin mfa" {
			t.Fatalf("passwordless (autofill): %v", claims)
		}
		c.signOut()
	} else {
		t.Log("this Chromium has no passkey autofill (conditional mediation): only the button is tested")
	}

	// 2b. Passwordless with "Sign in with a passkey": the authenticator
	// waits for a touch while the page loads (so the autofill request
	// stays pending), then the button aborts that request and asks again.
	presence := func(on bool) {
		t.Helper()
		if _, err := chromedp.Call(actx(), webauthn.SetAutomaticPresenceSimulation, webauthn.SetAutomaticPresenceSimulationParams{
			AuthenticatorID: auth.AuthenticatorID, Enabled: on}); err != nil {
			t.Fatalf("WebAuthn.setAutomaticPresenceSimulation: %v", err)
		}
	}
	presence(false)
	claims := shop.signIn(c, func() {
		c.waitText(`form[data-passkey] button`, "Sign in with a passkey")
		c.do("the email field offers passkeys", step, chromedp.WaitVisible(chromedp.CSS(`#email[autocomplete="username webauthn"]`)))
		presence(true)
		c.usePasskey()
	})
	if claims["sub"] != u.ID || claims["acr"] != flow.ACRPhishingResistant || strings.Join(amrList(claims), " ") != "hwk user pin mfa" {
		t.Fatalf("passwordless (button): %v", claims)
	}
	c.signOut()

	// 3. The passkey as the second step, offered first after the password
	// (the authenticator waits for a touch, so the identifier page's
	// autofill does not sign in first).
	presence(false)
	claims = shop.signIn(c, func() {
		c.identify(u.Email)
		c.password()
		c.waitText(`form[data-passkey] button`, "Use a passkey")
		presence(true)
		c.usePasskey()
	})
	if claims["acr"] != flow.ACRPhishingResistant || strings.Join(amrList(claims), " ") != "pwd hwk user pin mfa" {
		t.Fatalf("second step: %v", claims)
	}
	c.signOut()

	// 4. Step-up: signed in with password and email code ("Get code by
	// email"), the product asks for phr: only a passkey will do.
	presence(false)
	claims = shop.signIn(c, func() {
		c.identify(u.Email)
		c.password()
		c.click(`form[action="/login/code/send"] button`)
		c.emailCode(u.Email)
		c.dontTrust()
	})
	if claims["acr"] != flow.ACRMFAFresh || strings.Join(amrList(claims), " ") != "pwd otp mfa" {
		t.Fatalf("email code sign-in: %v", claims)
	}
	claims = shop.signIn(c, func() {
		if got := c.waitText("main", "this product asks for a passkey"); strings.Contains(got, "Get code by email") {
			t.Fatalf("step-up page offers a code: %q", got)
		}
		presence(true)
		c.usePasskey()
	}, oauth2.SetAuthURLParam("acr_values", flow.ACRPhishingResistant))
	if claims["acr"] != flow.ACRPhishingResistant {
		t.Fatalf("step-up: %v", claims)
	}
	pks, _ = e.store.ListPasskeys(context.Background(), u.ID)
	if pks[0].SignCount == 0 || pks[0].LastUsedAt.IsZero() {
		t.Errorf("the counter and last use were not stored: %+v", pks[0])
	}
	if err := ctx.Err(); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}
