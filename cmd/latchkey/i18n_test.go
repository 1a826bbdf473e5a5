package main

// Languages end to end (issue 14): the pseudo-locale sweep — every page
// and every mail rendered in en-XA, where every message of the catalogue
// is marked ⟦…⟧, so that any text that did not come from the catalogue
// shows — and the order in which a language is chosen.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode"

	"golang.org/x/net/html"
	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/config"
	"github.com/latchkey/latchkey/login/factor"
	"github.com/latchkey/latchkey/login/i18n"
	"github.com/latchkey/latchkey/login/mail/mailsink"
	"github.com/latchkey/latchkey/login/passkeytest"
	"github.com/latchkey/latchkey/op"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// pseudoLocale turns the pseudo-locale on.
func pseudoLocale(c *config.Config) { c.PseudoLocale = true }

// sweep checks what a pseudo-locale browser is shown.
type sweep struct {
	t *testing.T
	// dynamic are values that are data, not words: the site's name, the
	// users', the clients', the organisations', the passkeys'.
	dynamic []string
	// pages are the templates seen (<body data-page>), with a URL each.
	pages map[string]string
	// checked counts the pages and mails looked at.
	checked int
}

// dynamicRes are data that appear outside the catalogue's messages: email
// addresses, URLs, backup codes, authenticator keys, codes, error and
// request ids, time zones and UTC offsets.
var dynamicRes = []*regexp.Regexp{
	regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]+`),
	regexp.MustCompile(`https?://[^\s"<>]+`),
	regexp.MustCompile(`\b[0-9A-Z]{4}(?:-[0-9A-Z]{4}){2,}\b`),
	regexp.MustCompile(`\b[A-Z2-7]{4}(?: [A-Z2-7]{1,4}){3,}\b`),
	regexp.MustCompile(`(?m)^[A-Z2-7]{1,4}$`), // one group of the key, a box of its own (account_totp.html)
	regexp.MustCompile(`\b[0-9a-f]{12}\b`),
	regexp.MustCompile(`\b[A-Z][A-Za-z_]+(?:/[A-Za-z_ ]+)+\b`),
	regexp.MustCompile(`\bUTC(?:[+-]\d\d:\d\d)?\b`),
}

var markedRe = regexp.MustCompile(`⟦[^⟦⟧]*⟧`)

// leaks are the pieces of text s that have letters once the marked
// messages and the dynamic values are taken out.
func (s *sweep) leaks(text string) []string {
	for {
		next := markedRe.ReplaceAllString(text, " ")
		if next == text {
			break
		}
		text = next
	}
	for _, v := range s.dynamic {
		text = strings.ReplaceAll(text, v, " ")
	}
	for _, re := range dynamicRes {
		text = re.ReplaceAllString(text, " ")
	}
	var out []string
	for _, part := range strings.Split(text, "\n") {
		if strings.IndexFunc(part, unicode.IsLetter) >= 0 {
			out = append(out, strings.TrimSpace(part))
		}
	}
	return out
}

// visible is what a page shows a person: its text (not scripts, styles
// or the demo's JSON) and the attributes that are read (alt, title,
// placeholder, aria-label, the passkey script's messages), one per line.
func visible(doc *html.Node) (string, string) {
	var b strings.Builder
	page := ""
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "script", "style", "pre":
				return
			}
			for _, a := range n.Attr {
				switch a.Key {
				case "alt", "title", "placeholder", "aria-label", "data-passkey-failed", "data-passkey-exists":
					b.WriteString(a.Val + "\n")
				case "data-page":
					page = a.Val
				}
			}
		}
		if n.Type == html.TextNode {
			b.WriteString(n.Data + "\n")
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return b.String(), page
}

var htmlLangRe = regexp.MustCompile(`<html lang="([^"]*)"`)

// page checks one page.
func (s *sweep) page(where, body string) {
	s.t.Helper()
	s.checked++
	if m := htmlLangRe.FindStringSubmatch(body); m == nil || m[1] != i18n.Pseudo {
		s.t.Errorf("%s: <html lang> %v, want %s", where, m, i18n.Pseudo)
	}
	// As a browser without scripts reads it (<noscript> is content).
	doc, err := html.ParseWithOptions(strings.NewReader(body), html.ParseOptionEnableScripting(false))
	if err != nil {
		s.t.Fatalf("%s: %v", where, err)
	}
	text, name := visible(doc)
	if name != "" {
		if _, seen := s.pages[name]; !seen {
			s.pages[name] = where
		}
	}
	for _, l := range s.leaks(text) {
		s.t.Errorf("%s (%s): text not from the catalogue: %q", where, name, l)
	}
}

// mail checks one mail: subject, text part, HTML part.
func (s *sweep) mail(m mailsink.Received) {
	s.t.Helper()
	s.checked++
	where := "mail " + m.Subject
	for _, l := range s.leaks(m.Subject + "\n" + m.Text) {
		s.t.Errorf("%s: text not from the catalogue: %q", where, l)
	}
	if m.HTML == "" {
		s.t.Errorf("%s: no HTML part", where)
		return
	}
	s.page(where+" (HTML)", m.HTML)
}

// sweepTransport asks for the pseudo-locale on every request and checks
// every page of ours that comes back.
type sweepTransport struct {
	s    *sweep
	host string
}

func (tr *sweepTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Accept-Language", i18n.Pseudo)
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || r.URL.Host != tr.host || resp.StatusCode/100 == 3 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	tr.s.page(r.Method+" "+r.URL.Path, string(body))
	return resp, nil
}

func (s *sweep) browser(e *testEnv) *browser {
	b := e.newBrowser()
	b.client.Transport = &sweepTransport{s: s, host: strings.TrimPrefix(e.issuer, "http://")}
	return b
}

// templates are the names of every page template.
func templates(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, g := range []string{"../../login/templates/*.html", "../../login/account/templates/*.html", "../../login/internal/web/templates/*.html"} {
		files, err := filepath.Glob(g)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			name := strings.TrimSuffix(filepath.Base(f), ".html")
			if name != "partials" && name != "layout" {
				out = append(out, name)
			}
		}
	}
	sort.Strings(out)
	if len(out) < 30 {
		t.Fatalf("only %d templates", len(out))
	}
	return out
}

// TestPseudoLocaleSweep renders every page and every mail in the
// pseudo-locale and fails on any visible text that did not come from the
// catalogue; it also sees every page template once.
func TestPseudoLocaleSweep(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, storagetest.Dialects(t)[0], localhostIssuer, pseudoLocale)
	// The same server with the demo (serve --demo), as the sweep's own.
	hs := httptest.NewUnstartedServer(nil)
	cfg := *e.app.cfg
	cfg.Issuer = "http://" + strings.Replace(hs.Listener.Addr().String(), "127.0.0.1", "localhost", 1)
	a := &app{cfg: &cfg, log: e.app.log, store: e.store, kr: e.kr, demo: true, closer: func() {}}
	srv, err := newServer(context.Background(), a, e.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	hs.Config.Handler = srv.handler
	hs.Start()
	t.Cleanup(hs.Close)
	e = &testEnv{t: t, app: a, srv: srv, http: hs, issuer: cfg.Issuer, clock: e.clock, sink: e.sink, store: e.store, kr: e.kr}
	ctx := context.Background()

	s := &sweep{t: t, pages: map[string]string{}}
	s.dynamic = []string{cfg.SiteName}
	for _, l := range i18n.Languages() {
		s.dynamic = append(s.dynamic, i18n.MustLoad().SelfName(l)) // the language picker names each in itself
	}
	newUser := func(email string, mut ...func(*storage.User)) storage.User {
		u := e.createUser(email, mut...)
		s.dynamic = append(s.dynamic, u.Name)
		return u
	}
	newRP := func(id string, mut ...func(*storage.Client)) *rp {
		r := e.newRP(id, mut...)
		s.dynamic = append(s.dynamic, "App "+id)
		return r
	}
	mailsBefore := e.sink.Total()

	// A new account's first sign-in at a third-party product: identifier,
	// password, the email code, trust, the first backup code, consent.
	ada := newUser("ada@example.com", func(u *storage.User) { u.NeedsBackupCode = true })
	partner := newRP("partner", func(c *storage.Client) { c.ThirdParty = true })
	b := s.browser(e)
	p := b.get(e.issuer + "/")
	p = b.drive(b.start(partner), ada.Email, signInOpts{remember: "trust"})
	if !p.at("/login/consent") {
		t.Fatalf("expected the consent page, got %s (%d)", p.url, p.status)
	}
	if p = b.submit(p, "/login/consent", url.Values{"choice": {"allow"}}); p.location == "" {
		t.Fatalf("consent: %s (%d)", p.url, p.status)
	}
	// Wrong answers on the way: identifier, password, code, the remember
	// choice, the backup code, the throttle.
	b2 := s.browser(e)
	p = b2.start(partner)
	b2.submit(p, "/login/identify", url.Values{"email": {"not an address"}})
	p = b2.submit(p, "/login/identify", url.Values{"email": {ada.Email}})
	b2.submit(p, "/login/password", url.Values{"password": {"wrong"}})
	for i := 0; i < 6; i++ {
		b2.submit(p, "/login/password", url.Values{"password": {"wrong"}})
	}
	e.clock.Advance(time.Minute)
	p = b2.submit(p, "/login/password", url.Values{"password": {testPassword}})
	b2.submit(p, "/login/code", url.Values{"code": {"000000"}})
	b2.submit(p, "/login/code/send", nil)
	b2.get(e.issuer + "/login/code?id=" + authRequestID(t, p) + "&method=backup")
	p = b2.submit(p, "/login/code", url.Values{"code": {e.mailCode(ada.Email)}})
	if p.at("/login/remember") {
		b2.post(e.issuer+"/login/remember", url.Values{"csrf": {p.csrf(t)}, "id": {authRequestID(t, p)}, "choice": {"bogus"}})
	}

	// Error pages: an unknown sign-in, nothing here, a bad /authorize, a
	// bad sign-out.
	b.get(e.issuer + "/login?authRequestID=nope")
	b.get(e.issuer + "/nothing-here")
	b.get(e.issuer + "/authorize?client_id=nobody&response_type=code&redirect_uri=http://x.example/cb&scope=openid")
	b.get(e.issuer + "/end_session?id_token_hint=garbage")

	// "Stay signed in" (after an authenticator code), and a sign-in that
	// asks again (prompt=login) with its reasons.
	tia := newUser("tia@example.com")
	seed := e.enrolTOTP(tia)
	shop := newRP("shop")
	b3 := s.browser(e)
	b3.drive(b3.start(shop), tia.Email, signInOpts{remember: "stay", totp: func() string { return totpNow(e, seed) }})
	b3.start(shop, oauth2.SetAuthURLParam("prompt", "login"))

	// The pages that leave for a product: a form_post response, and the
	// page after one of our forms that sends the browser away.
	authURL, _, _, _ := shop.authorizeURL(oauth2.SetAuthURLParam("response_mode", "form_post"))
	if p = b3.get(authURL); p.status != http.StatusOK || !strings.Contains(p.body, `action="http://rp.test/callback"`) {
		t.Fatalf("form_post: %d\n%s", p.status, p.body)
	}
	p = b3.get(e.issuer + "/end_session?client_id=shop&post_logout_redirect_uri=" + url.QueryEscape("http://rp.test/signed-out"))
	if !p.at("/logout") {
		t.Fatalf("end_session: %s (%d)", p.url, p.status)
	}
	req, err := http.NewRequest(http.MethodPost, e.issuer+"/logout", strings.NewReader(url.Values{"csrf": {p.csrf(t)}, "id": {authRequestID(t, p)}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if p = b3.do(req); p.status != http.StatusOK || !strings.Contains(p.body, "rp.test/signed-out") {
		t.Fatalf("sign-out away: %d\n%s", p.status, p.body)
	}

	// A device: the code page, a wrong code, the confirmation, approved.
	cli := newRP("cli", func(c *storage.Client) {
		c.Public, c.AppType = true, storage.AppTypeNative
		c.RedirectURIs = []string{"http://127.0.0.1/callback"}
		c.GrantTypes = []string{op.GrantDeviceCode, op.GrantRefreshToken}
	})
	da, err := cli.oauth.DeviceAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p = b.get(e.issuer + "/device")
	b.submit(p, "/device", url.Values{"user_code": {"WRONG-CODE"}})
	p = b.drive(b.submit(p, "/device", url.Values{"user_code": {da.UserCode}}), ada.Email, signInOpts{})
	if !p.at("/device/confirm") {
		t.Fatalf("device: %s (%d)", p.url, p.status)
	}
	b.submit(p, "/device/confirm", url.Values{"choice": {"approve"}})

	// Sign-up: a new address, and one that has an account (its owner
	// gets a mail).
	b4 := s.browser(e)
	p = b4.start(shop)
	p = b4.get(e.issuer + "/signup?id=" + authRequestID(t, p))
	b4.submit(p, "/signup", url.Values{"email": {"x@example.com"}, "name": {""}, "password": {"short"}})
	q := b4.submit(p, "/signup", url.Values{"email": {"new@example.com"}, "name": {"New Person"}, "password": {testPassword}})
	s.dynamic = append(s.dynamic, "New Person")
	b4.submit(q, "/signup/code", url.Values{"code": {"000000"}})
	b4.drive(b4.submit(q, "/signup/code", url.Values{"code": {e.mailCode("new@example.com")}}), "new@example.com", signInOpts{})
	// The owner of the address reads the mail in their language.
	if _, err := e.store.UpdateUser(ctx, tia.ID, func(u *storage.User) error { u.Language = i18n.Pseudo; return nil }); err != nil {
		t.Fatal(err)
	}
	b5 := s.browser(e)
	p = b5.start(shop)
	p = b5.get(e.issuer + "/signup?id=" + authRequestID(t, p))
	b5.submit(p, "/signup", url.Values{"email": {tia.Email}, "name": {"Someone"}, "password": {testPassword}})
	s.dynamic = append(s.dynamic, "Someone")

	// Forgot password, for a user with an authenticator app: the address,
	// the mailed code, the app's code, a new password.
	b6 := s.browser(e)
	p = b6.start(shop)
	p = b6.submit(p, "/login/identify", url.Values{"email": {tia.Email}})
	p = b6.get(e.issuer + "/forgot?id=" + authRequestID(t, p))
	p = b6.submit(p, "/forgot", url.Values{"email": {tia.Email}})
	b6.submit(p, "/forgot/code", url.Values{"code": {"000000"}})
	p = b6.submit(p, "/forgot/code", url.Values{"code": {e.mailCode(tia.Email)}})
	e.clock.Advance(30 * time.Second)
	p = b6.submit(p, "/forgot/second", url.Values{"method": {"totp"}, "code": {totpNow(e, seed)}})
	b6.submit(p, "/forgot/password", url.Values{"new_password": {"short"}})
	b6.submit(p, "/forgot/password", url.Values{"new_password": {"a new password for tia"}})

	// The set-password link an administrator sends, used, then dead; the
	// support desk's 2-step reset (a notice).
	admin := e.adminToken("desk", storage.AdminFull, "", op.ScopeAdmin)
	bo := newUser("bo@example.com", func(u *storage.User) { u.PasswordHash, u.Language = "", i18n.Pseudo })
	e.api(admin, "POST", "/admin/v1/users/"+bo.ID+"/send-reset", "").want(t, http.StatusAccepted)
	m, _ := e.sink.Last(bo.Email)
	link := regexp.MustCompile(`https?://\S+/account/set-password\?token=\S+`).FindString(m.Text)
	p = b.get(link)
	b.submit(p, "/account/set-password", url.Values{"new_password": {"short"}})
	b.submit(p, "/account/set-password", url.Values{"new_password": {"bo's new password"}})
	b.get(link)
	e.api(admin, "POST", "/admin/v1/users/"+tia.ID+"/reset-2fa", "").want(t, http.StatusOK)

	// The account pages, every change with its reconfirmation (and its
	// mailed code) and its notice.
	pk := newUser("pk@example.com", func(u *storage.User) { u.TimeZone = "Asia/Tokyo" })
	b7 := s.browser(e)
	b7.account("/account/security", pk.Email, signInOpts{remember: "trust"})
	b7.get(e.issuer + "/account/devices")
	b7.get(e.issuer + "/account/privacy")
	p = b7.get(e.issuer + "/account/language")
	b7.submit(p, "/account/language", url.Values{"language": {"tlh"}})
	p = b7.reconfirmed("/account/security/totp", pk.Email, signInOpts{})
	b7.submit(p, "/account/security/totp", url.Values{"code": {"000000"}})
	tseed := totpSeed(t, p)
	e.clock.Advance(time.Minute)
	b7.submit(p, "/account/security/totp", url.Values{"code": {e.totpAt(tseed, 0)}})
	p = b7.get(e.issuer + "/account/security/totp/manage")
	p = b7.get(e.issuer + "/account/security/totp/off")
	b7.submit(p, "/account/security/totp/off", nil)
	p = b7.get(e.issuer + "/account/security/backup-code")
	p = b7.submit(p, "/account/security/backup-code", nil)
	b7.submit(p, "/account/security/backup-code/saved", nil)
	b7.submit(p, "/account/security/backup-code/saved", url.Values{"saved": {"yes"}})
	p = b7.get(e.issuer + "/account/security/passkeys")
	phone := passkeytest.New(e.issuer)
	s.dynamic = append(s.dynamic, "Phone")
	p = b7.setUpPasskey(p, phone, "Phone")
	p = b7.get(e.issuer + "/account/security/password")
	b7.submit(p, "/account/security/password", url.Values{"password": {"wrong"}, "new_password": {"x"}})
	p = b7.submit(p, "/account/security/password", url.Values{"password": {testPassword}, "new_password": {"pk's new password"}})
	p = b7.get(e.issuer + "/account/devices")
	if p = b7.submit(p, "/account/devices/signout-others", nil); !p.at("/account/devices") {
		t.Fatalf("sign out others: %s", p.url)
	}
	// A change posted after the reconfirmation went stale: the page offers
	// to confirm again.
	csrf := p.csrf(t)
	e.clock.Advance(10 * time.Minute)
	b7.post(e.issuer+"/account/security/totp/off", url.Values{"csrf": {csrf}})
	p = b7.get(e.issuer + "/logout")
	b7.submit(p, "/logout", nil)

	// The demo, signed in and signed out.
	b8 := s.browser(e)
	b8.drive(b8.get(e.issuer+"/demo"), ada.Email, signInOpts{})
	b8.get(e.issuer + "/demo?signed_out=1")

	// A sign-in with the backup code in a browser new to the account: the
	// mails of a used backup code and of a new sign-in (issue 14 §4).
	kit := newUser("kit@example.com")
	boCode := factor.NewBackupCode()
	boCanon, _ := factor.NormalizeBackupCode(boCode)
	if err := e.store.SetBackupCode(ctx, storage.BackupCode{UserID: kit.ID, CodeHash: e.kr.MACString(keyring.PurposeBackupCode, boCanon),
		CreatedAt: e.clock.Now()}, storage.BackupCodeShow{}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	b9 := s.browser(e)
	p = b9.start(newRP("plain"))
	p = b9.submit(p, "/login/identify", url.Values{"email": {kit.Email}})
	p = b9.submit(p, "/login/password", url.Values{"password": {testPassword}})
	p = b9.get(e.issuer + "/login/code?id=" + authRequestID(t, p) + "&method=backup")
	p = b9.submit(p, "/login/code", url.Values{"code": {boCode}})
	if p = b9.drive(p, kit.Email, signInOpts{}); p.location == "" {
		t.Fatalf("backup code sign-in: %s (%d)", p.url, p.status)
	}

	// Every mail sent, in the pseudo-locale.
	all := e.sink.Messages()
	if len(all) < e.sink.Total()-mailsBefore {
		t.Fatalf("the sink kept %d of %d mails", len(all), e.sink.Total())
	}
	for _, m := range all {
		s.mail(m)
	}
	// Each kind of mail was among them.
	ps := i18n.MustLoad().Localizer(i18n.Pseudo)
	for _, heading := range []string{"mail.code.signin.heading", "mail.code.reconfirm.heading", "mail.code.signup.heading",
		"mail.code.reset.heading", "mail.link.heading", "mail.signup_exists.heading", "mail.signin.new_browser.heading",
		"mail.signin.backup_code.heading"} {
		if !slices.ContainsFunc(all, func(m mailsink.Received) bool { return strings.Contains(m.HTML, ps.T(heading)) }) {
			t.Errorf("no mail with the heading %s", heading)
		}
	}
	if !slices.ContainsFunc(all, func(m mailsink.Received) bool { return strings.Contains(m.HTML, ps.T("notice.second_step_reset")) }) {
		t.Error("no security notice")
	}

	// Every page template was seen.
	for _, name := range templates(t) {
		if _, ok := s.pages[name]; !ok {
			t.Errorf("template %s was never rendered by the sweep", name)
		}
	}
	t.Logf("%d pages and mails checked; templates seen: %v", s.checked, s.pages)
}

// langTransport sends an Accept-Language header with every request.
type langTransport string

func (l langTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if l != "" {
		r.Header.Set("Accept-Language", string(l))
	}
	return http.DefaultTransport.RoundTrip(r)
}

// langBrowser is a browser whose Accept-Language is accept.
func (e *testEnv) langBrowser(accept string) *browser {
	b := e.newBrowser()
	b.client.Transport = langTransport(accept)
	return b
}

// lang is a page's <html lang>.
func (p response) lang() string {
	if m := htmlLangRe.FindStringSubmatch(p.body); m != nil {
		return m[1]
	}
	return ""
}

// TestLanguageChoice: a page's language is the product's ui_locales, then
// the account's saved language (once the person has shown who they are,
// so that the language never tells whether an address has an account),
// then the browser's Accept-Language, then default_language; mails follow
// the same order with the recipient's own language, and show times in the
// recipient's time zone (UTC, said so, without one). Discovery lists the
// languages; sign-up keeps the browser's; the account page changes both.
func TestLanguageChoice(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d, pseudoLocale)
		ctx := context.Background()
		app := e.newRP("shop")
		xa := i18n.Pseudo

		// Discovery advertises the catalogue's languages (not the
		// pseudo-locale).
		var disc struct {
			UI     []string `json:"ui_locales_supported"`
			Claims []string `json:"claims_locales_supported"`
		}
		resp, err := http.Get(e.issuer + "/.well-known/openid-configuration")
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&disc)
		resp.Body.Close()
		if err != nil || !slices.Equal(disc.UI, i18n.Languages()) || !slices.Equal(disc.Claims, i18n.Languages()) {
			t.Fatalf("discovery: %+v (%v), want %v", disc, err, i18n.Languages())
		}

		// Nothing asked: the default. The browser's language when it is
		// one we have (by its q-values).
		if p := e.langBrowser("").start(app); p.lang() != "en" {
			t.Errorf("no preference: %q", p.lang())
		}
		if p := e.langBrowser("tlh, en-XA;q=0.8, en;q=0.5").start(app); p.lang() != xa || !strings.Contains(p.body, "⟦") {
			t.Errorf("browser: %q", p.lang())
		}
		// The product's ui_locales win over the browser, for the whole
		// sign-in, and its error pages.
		b := e.langBrowser("en")
		p := b.start(app, oauth2.SetAuthURLParam("ui_locales", "tlh en-XA"))
		if p.lang() != xa {
			t.Errorf("ui_locales: %q", p.lang())
		}
		if p = b.submit(p, "/login/identify", url.Values{"email": {"nobody@example.com"}}); !p.at("/login/password") || p.lang() != xa {
			t.Errorf("ui_locales on the next page: %s %q", p.url, p.lang())
		}
		if p = b.get(e.issuer + "/authorize?client_id=nobody&ui_locales=en-XA"); p.status != http.StatusBadRequest || p.lang() != xa {
			t.Errorf("the OP's error page: %d %q", p.status, p.lang())
		}

		// The account's language: not before the password (an unknown
		// address gets the same page), from the password on; and in the
		// mails.
		u := e.createUser("xa@example.com", func(u *storage.User) { u.Language = xa })
		b = e.langBrowser("en")
		p = b.submit(b.start(app), "/login/identify", url.Values{"email": {u.Email}})
		if !p.at("/login/password") || p.lang() != "en" {
			t.Errorf("before the password, the account's language shows: %s %q", p.url, p.lang())
		}
		p = b.submit(p, "/login/password", url.Values{"password": {testPassword}})
		if !p.at("/login/code") || p.lang() != xa {
			t.Errorf("after the password: %s %q", p.url, p.lang())
		}
		m, _ := e.sink.Last(u.Email)
		if !strings.HasPrefix(m.Subject, i18n.PseudoOpen) || !strings.Contains(m.HTML, `<html lang="en-XA">`) || !strings.Contains(m.Text, " UTC") {
			t.Errorf("code mail not in the account's language, or without UTC: %q\n%s", m.Subject, m.Text)
		}
		// ui_locales still win over the account.
		b = e.langBrowser("en")
		p = b.submit(b.start(app, oauth2.SetAuthURLParam("ui_locales", "en")), "/login/identify", url.Values{"email": {u.Email}})
		if p = b.submit(p, "/login/password", url.Values{"password": {testPassword}}); !p.at("/login/code") || p.lang() != "en" {
			t.Errorf("ui_locales against the account: %s %q", p.url, p.lang())
		}
		if m, _ := e.sink.Last(u.Email); strings.HasPrefix(m.Subject, i18n.PseudoOpen) {
			t.Errorf("the mail of a sign-in with ui_locales=en: %q", m.Subject)
		}

		// Sign-up keeps the browser's language (one we have, or none).
		for accept, want := range map[string]string{"en-XA, en;q=0.5": xa, "tlh": ""} {
			email := "new-" + strings.ToLower(strings.Fields(strings.NewReplacer(",", " ", ";", " ").Replace(accept))[0]) + "@example.com"
			b := e.langBrowser(accept)
			p := b.start(app)
			p = b.get(e.issuer + "/signup?id=" + authRequestID(t, p))
			p = b.submit(p, "/signup", url.Values{"email": {email}, "name": {"New"}, "password": {testPassword}})
			b.drive(b.submit(p, "/signup/code", url.Values{"code": {e.mailCode(email)}}), email, signInOpts{})
			nu, err := e.store.GetUserByEmail(ctx, email)
			if err != nil || nu.Language != want {
				t.Errorf("sign-up with %q: language %q (%v), want %q", accept, nu.Language, err, want)
			}
		}

		// The language page: in the account's language; it saves the
		// language and the time zone, refusing what it does not offer.
		b = e.langBrowser("en")
		p = b.account("/account/language", u.Email, signInOpts{})
		if !p.at("/account/language") || p.lang() != xa || !strings.Contains(p.body, `<option value="en-XA" lang="en-XA" selected>`) {
			t.Fatalf("language page: %s %q\n%s", p.url, p.lang(), p.body)
		}
		// A reconfirmation asks in the account pages' language from its
		// first page on.
		if q := b.get(e.issuer + "/account/security/totp"); !q.at("/login/password") || q.lang() != xa {
			t.Errorf("reconfirmation: %s %q", q.url, q.lang())
		}
		for _, bad := range []url.Values{{"language": {"tlh"}}, {"time_zone": {"Mars/Olympus"}}, {"time_zone": {"Local"}}} {
			if q := b.submit(p, "/account/language", bad); q.status != http.StatusUnprocessableEntity {
				t.Errorf("%v: %d", bad, q.status)
			}
		}
		if got := e.user(u.ID); got.Language != xa || got.TimeZone != "" {
			t.Fatalf("changed by a refused form: %+v", got)
		}
		p = b.submit(p, "/account/language", url.Values{"language": {""}, "time_zone": {"Asia/Tokyo"}})
		if !p.at("/account/language") || p.lang() != "en" || !strings.Contains(p.body, "Your language and time zone are saved.") ||
			!strings.Contains(p.body, `<option value="Asia/Tokyo" selected>`) {
			t.Fatalf("after saving: %s %q\n%s", p.url, p.lang(), p.body)
		}
		if got := e.user(u.ID); got.Language != "" || got.TimeZone != "Asia/Tokyo" {
			t.Fatalf("saved: %+v", got)
		}
		if evs := e.auditEvents(u.ID); !slices.Contains(evs, "account.language_changed") {
			t.Errorf("audit: %v", evs)
		}
		// Mails now show the user's time.
		b = e.langBrowser("en")
		b.toCodePage(app.authURLOnly(), u.Email)
		m, _ = e.sink.Last(u.Email)
		tokyo := e.clock.Now().In(i18n.Location("Asia/Tokyo"))
		if want := tokyo.Format("15:04") + " JST"; !strings.Contains(m.Text, want) || strings.Contains(m.Text, " UTC") {
			t.Errorf("code mail lacks %q:\n%s", want, m.Text)
		}
	})
}

// authURLOnly is a fresh authorization URL of r.
func (r *rp) authURLOnly() string {
	u, _, _, _ := r.authorizeURL()
	return u
}
