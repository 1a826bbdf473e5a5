package main

// A sign-in in German end to end (issue 14 §1): the pages a person sees,
// the code mail and a security notice, all in German, whether German comes
// from the browser (Accept-Language) or from the product (ui_locales) in an
// English browser.

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/login/i18n"
	"github.com/latchkey/latchkey/login/mail/mailsink"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// german checks pages and mails against the German catalogue: every
// message looked for is there in German, and its English is not.
type german struct {
	t      *testing.T
	de, en *i18n.Localizer
	ids    map[string]bool // the catalogue's message ids
}

func newGerman(t *testing.T) german {
	t.Helper()
	b := i18n.MustLoad()
	if !slices.Contains(b.Languages(), "de") {
		t.Fatalf("no German catalogue: languages %v", b.Languages())
	}
	ids := map[string]bool{}
	for _, x := range b.MessageFile(i18n.English).Messages {
		ids[x.ID] = true
	}
	return german{t: t, de: b.Localizer("de"), en: b.Localizer(i18n.English), ids: ids}
}

// germanMsg is a message of the catalogue with its arguments.
type germanMsg struct {
	id   string
	args []any
}

func gm(id string, args ...any) germanMsg { return germanMsg{id, args} }

// pair renders a message in German and in English; a message whose German
// is its English cannot tell the languages apart, so it is a test bug.
func (g german) pair(x germanMsg) (string, string) {
	g.t.Helper()
	de, en := g.de.T(x.id, x.args...), g.en.T(x.id, x.args...)
	if de == en {
		g.t.Fatalf("%s: the German %q is the English: pick another message to look for", x.id, de)
	}
	return de, en
}

// text is what a page shows a person (text and read attributes), one
// piece per line, as the pseudo-locale sweep reads it.
func (g german) text(body string) string {
	g.t.Helper()
	doc, err := html.ParseWithOptions(strings.NewReader(body), html.ParseOptionEnableScripting(false))
	if err != nil {
		g.t.Fatal(err)
	}
	text, _ := visible(doc)
	return text
}

// page checks that p is the page at path, in German, showing msgs.
func (g german) page(p response, path string, msgs ...germanMsg) {
	g.t.Helper()
	if !p.at(path) {
		g.t.Fatalf("expected %s, got %s (%d):\n%s", path, p.url, p.status, p.body)
	}
	if p.lang() != "de" {
		g.t.Errorf("%s: <html lang=%q>, want de", path, p.lang())
	}
	text := g.text(p.body)
	for _, x := range msgs {
		de, en := g.pair(x)
		if !strings.Contains(text, de) {
			g.t.Errorf("%s: no %s %q:\n%s", path, x.id, de, text)
		}
		if strings.Contains(text, en) {
			g.t.Errorf("%s: English %s %q:\n%s", path, x.id, en, text)
		}
	}
}

// mail checks that a mail is German: its subject is subject, its HTML
// part is <html lang="de">, and both parts say msgs (the HTML part the
// message's _html form where it has one).
func (g german) mail(got mailsink.Received, subject germanMsg, msgs ...germanMsg) {
	g.t.Helper()
	de, en := g.pair(subject)
	if got.Subject != de {
		g.t.Errorf("mail subject %q, want %q (English: %q)", got.Subject, de, en)
	}
	if !strings.Contains(got.HTML, `<html lang="de">`) {
		g.t.Errorf("mail %q: HTML part not lang=de:\n%s", got.Subject, got.HTML)
	}
	htmlText := g.words(g.text(got.HTML))
	for _, x := range msgs {
		de, en := g.pair(x)
		if !strings.Contains(got.Text, de) {
			g.t.Errorf("mail %q (text): no %s %q:\n%s", got.Subject, x.id, de, got.Text)
		}
		if strings.Contains(got.Text, en) {
			g.t.Errorf("mail %q (text): English %s %q", got.Subject, x.id, en)
		}
		if h := x.id + i18n.HTMLSuffix; g.ids[h] {
			x.id = h
			de, en = g.pair(x)
			de, en = g.text(de), g.text(en)
		}
		if de, en = g.words(de), g.words(en); !strings.Contains(htmlText, de) {
			g.t.Errorf("mail %q (HTML): no %s %q:\n%s", got.Subject, x.id, de, htmlText)
		}
		if strings.Contains(htmlText, en) {
			g.t.Errorf("mail %q (HTML): English %s %q", got.Subject, x.id, en)
		}
	}
}

// words is s with its runs of white space made one space.
func (german) words(s string) string { return strings.Join(strings.Fields(s), " ") }

// TestGermanSignIn: a person signs in to a product in German — from a
// German browser, and from an English browser through a product that asks
// for German (ui_locales) — through go-oidc as the relying party, with the
// email code read from the SMTP sink. The identifier, password, code and
// trust pages, the code mail, and the notice of a password change (on the
// account pages) or of a password reset ("Forgot password?") are German,
// with the time in German and its zone said.
func TestGermanSignIn(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		site := e.app.cfg.SiteName
		firefox := newGerman(t).de.T("browser.on", "Browser", "Firefox", "OS", "Linux")

		for _, c := range []struct {
			name, accept string
			extra        []oauth2.AuthCodeOption
		}{
			{"Accept-Language", "de-DE,de;q=0.9,en;q=0.5", nil},
			{"ui_locales", "en-US,en;q=0.9", []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("ui_locales", "de")}},
		} {
			t.Run(c.name, func(t *testing.T) {
				g := newGerman(t)
				u := e.createUser(strings.ToLower(strings.ReplaceAll(c.name, "_", "-"))+"@example.com", func(u *storage.User) { u.Name = "Erika Mustermann" })
				app := e.newRP("shop-" + strings.ToLower(strings.ReplaceAll(c.name, "_", "-")))
				b := e.langBrowser(c.accept)

				// The identifier page.
				authURL, verifier, state, nonce := app.authorizeURL(c.extra...)
				p := b.get(authURL)
				g.page(p, "/login/identify", gm("identify.title"), gm("label.email"), gm("button.continue"),
					gm("identify.continue_to", "Client", "App "+app.id))

				// The password page.
				p = b.submit(p, "/login/identify", url.Values{"email": {u.Email}})
				g.page(p, "/login/password", gm("password.title"), gm("label.password"), gm("button.sign_in"),
					gm("password.forgot"), gm("password.other_account"))
				q := b.submit(p, "/login/password", url.Values{"password": {"wrong password"}})
				if q.status != http.StatusUnauthorized {
					t.Fatalf("wrong password: %d", q.status)
				}
				g.page(q, "/login/password", gm("password.wrong"))

				// The code page, and the code mail.
				now := e.clock.Now()
				p = b.submit(p, "/login/password", url.Values{"password": {testPassword}})
				g.page(p, "/login/code", gm("code.title"), gm("reason.code.new_browser"), gm("button.verify"),
					gm("code.send_new"), gm("code.use_backup"))
				e.deliver()
				cm, code, ok := e.sink.LastCode(u.Email)
				if !ok {
					t.Fatal("no code mail")
				}
				g.mail(cm, gm("mail.code.signin.subject", "Site", site),
					gm("mail.hello_name", "Name", u.Name),
					gm("mail.code.signin.intro"),
					gm("mail.code.valid", "ValidFor", time.Duration(e.app.cfg.Policy.EmailCodeTTL)),
					gm("mail.code.requested_ip", "When", g.de.DateTime(now.UTC()), "Browser", firefox, "IP", "127.0.0.1"),
					gm("mail.code.signin.not_you"),
					gm("mail.code.do_not_share", "Site", site),
					gm("mail.change_password_link", "URL", e.issuer+"/account/security/password"))
				if !strings.Contains(cm.Text, " Uhr UTC") {
					t.Errorf("code mail: the time is not German with its zone:\n%s", cm.Text)
				}
				q = b.submit(p, "/login/code", url.Values{"code": {"000000"}})
				g.page(q, "/login/code", gm("code.wrong"))

				// Trust, then back to the product, which verifies the ID token.
				p = b.submit(p, "/login/code", url.Values{"code": {code}})
				g.page(p, "/login/remember", gm("remember.trust.title"), gm("remember.trust.yes"), gm("remember.trust.no"),
					gm("remember.trust.ask", "For", time.Duration(e.app.cfg.Policy.TrustedDevice)))
				p = b.submit(p, "/login/remember", url.Values{"choice": {"trust"}})
				_, _, claims := app.exchange(p.code(t, state), verifier, nonce)
				if claims["email"] != u.Email {
					t.Fatalf("claims: %v", claims)
				}

				if c.extra == nil {
					// A German browser changes the password on the account
					// pages: the reconfirmation, the page and the notice
					// are German.
					b.account("/account/security", u.Email, signInOpts{})
					p = b.reconfirmed("/account/security/password", u.Email, signInOpts{})
					g.page(p, "/account/security/password", gm("account.password.title"), gm("label.password"),
						gm("label.new_password"), gm("account.password.change"))
					rm, _ := e.sink.Last(u.Email)
					g.mail(rm, gm("mail.code.reconfirm.subject", "Site", site), gm("mail.code.reconfirm.intro"))
					p = b.submit(p, "/account/security/password", url.Values{"password": {testPassword}, "new_password": {"ein ganz neues Passwort"}})
					g.page(p, "/account/security", gm("account.done.password"), gm("account.security.backup"), gm("button.generate"))
					e.deliver()
					nm, _ := e.sink.Last(u.Email)
					g.mail(nm, gm("mail.notice.subject", "Site", site, "Change", g.de.T("notice.password_changed")),
						gm("mail.notice.intro", "Site", site),
						gm("mail.notice.browser_ip", "Browser", firefox, "IP", "127.0.0.1"),
						gm("mail.notice.if_you"),
						gm("mail.notice.not_you"),
						gm("mail.notice.always"))
					// The time of the change, in German, its zone said.
					when := g.de.DateTime(e.clock.Now().UTC())
					if !strings.Contains(nm.Text, g.de.T("mail.notice.when_line", "When", when)) || !strings.Contains(g.words(g.text(nm.HTML)), when) ||
						!strings.HasSuffix(when, " Uhr UTC") {
						t.Errorf("notice mail: no time %q:\n%s", when, nm.Text)
					}
					return
				}

				// The product asks for German in an English browser: the
				// person forgets the password; the reset pages, the reset
				// code and the notice are German.
				b2 := e.langBrowser(c.accept)
				p = b2.start(app, c.extra...)
				p = b2.submit(p, "/login/identify", url.Values{"email": {u.Email}})
				p = b2.get(e.issuer + "/forgot?id=" + authRequestID(t, p))
				g.page(p, "/forgot", gm("forgot.title"), gm("forgot.enter_email"), gm("forgot.back"))
				p = b2.submit(p, "/forgot", url.Values{"email": {u.Email}})
				g.page(p, "/forgot", gm("forgot.code.sent", "ValidFor", time.Duration(e.app.cfg.Policy.EmailCodeTTL)))
				e.deliver()
				rm, code, ok := e.sink.LastCode(u.Email)
				if !ok {
					t.Fatal("no reset code mail")
				}
				g.mail(rm, gm("mail.code.reset.subject", "Site", site), gm("mail.code.reset.intro"), gm("mail.code.reset.not_you"))
				p = b2.submit(p, "/forgot/code", url.Values{"code": {code}})
				g.page(p, "/forgot", gm("forgot.password.title"), gm("label.new_password"), gm("forgot.password.rules"))
				p = b2.submit(p, "/forgot/password", url.Values{"new_password": {"ein ganz neues Passwort"}})
				g.page(p, "/forgot/password", gm("forgot.done.title"), gm("forgot.done.text"), gm("forgot.done.continue"))
				e.deliver()
				nm, _ := e.sink.Last(u.Email)
				g.mail(nm, gm("mail.notice.subject", "Site", site, "Change", g.de.T("notice.password_reset")),
					gm("mail.notice.intro", "Site", site),
					gm("mail.notice.if_you"),
					gm("mail.notice.always"))
			})
		}
	})
}
