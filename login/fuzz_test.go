package login

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// The sign-in's forms under fuzzing: whatever a client posts to any form
// (with the page's real CSRF token, so the handler itself runs; with the
// real sign-in id or a fuzzed one) and whatever it puts in the page's
// query, the answer is never a 5xx and never a panic. The seed corpus
// below runs in plain `go test` on SQLite and, when configured,
// PostgreSQL; `go test -fuzz FuzzLoginForms ./login` explores further.

// fuzzForm is one form: the page that holds it (reached as a user would)
// and the fields a user fills in.
type fuzzForm struct {
	action string
	fields []string
	reach  func(e *testEnv, b *browser, email string, app *rp) response
}

func reachStart(e *testEnv, b *browser, _ string, app *rp) response { return b.start(app) }

func reachPassword(e *testEnv, b *browser, email string, app *rp) response {
	return b.submit(b.start(app), "/login/identify", url.Values{"email": {email}})
}

func reachCode(e *testEnv, b *browser, email string, app *rp) response {
	return b.submit(reachPassword(e, b, email, app), "/login/password", url.Values{"password": {testPassword}})
}

func reachRemember(e *testEnv, b *browser, email string, app *rp) response {
	p := reachCode(e, b, email, app)
	if !p.at("/login/code") {
		return p
	}
	return b.submit(p, "/login/code", url.Values{"code": {e.mailCode(email)}})
}

// reachConsent signs in (not trusting the browser) to a third-party
// product of its own, which asks for consent.
func reachConsent(e *testEnv, b *browser, email string, _ *rp) response {
	tp := e.newRP("third-"+email, func(c *storage.Client) { c.ThirdParty = true })
	p := reachRemember(e, b, email, tp)
	if !p.at("/login/remember") {
		return p
	}
	return b.submit(p, "/login/remember", url.Values{"choice": {"no"}})
}

// reachSignupCode asks for a sign-up code and stands on its page.
func reachSignupCode(e *testEnv, b *browser, email string, app *rp) response {
	p := reachQuery("/signup")(e, b, email, app)
	if !p.at("/signup") {
		return p
	}
	return b.submit(p, "/signup", url.Values{"email": {"new-" + email}, "name": {"New"}, "password": {testPassword}})
}

// reachForgotCode asks for a reset code and stands on its page.
func reachForgotCode(e *testEnv, b *browser, email string, app *rp) response {
	p := reachQuery("/forgot")(e, b, email, app)
	if !p.at("/forgot") {
		return p
	}
	return b.submit(p, "/forgot", url.Values{"email": {email}})
}

// reachQuery opens path?id=<the sign-in's id>.
func reachQuery(path string) func(e *testEnv, b *browser, email string, app *rp) response {
	return func(e *testEnv, b *browser, email string, app *rp) response {
		p := b.start(app)
		return b.get(e.issuer + path + "?id=" + url.QueryEscape(p.url.Query().Get("id")))
	}
}

var loginFuzzForms = []fuzzForm{
	{"/login/identify", []string{"email"}, reachStart},
	{"/login/restart", nil, reachPassword},
	{"/login/password", []string{"password"}, reachPassword},
	{"/login/code", []string{"code", "method"}, reachCode},
	{"/login/code/send", nil, reachCode},
	{"/login/remember", []string{"choice"}, reachRemember},
	{"/login/backup-code", []string{"saved"}, reachRemember},
	{"/signup", []string{"email", "name", "password"}, reachQuery("/signup")},
	{"/signup/code", []string{"code"}, reachQuery("/signup")},
	{"/forgot", []string{"email"}, reachQuery("/forgot")},
	{"/forgot/code", []string{"code"}, reachQuery("/forgot")},
	{"/forgot/second", []string{"code", "method"}, reachQuery("/forgot")},
	{"/forgot/password", []string{"password"}, reachQuery("/forgot")},
	{"/device", []string{"user_code"}, func(e *testEnv, b *browser, _ string, _ *rp) response { return b.get(e.issuer + "/device") }},
	{"/device/confirm", []string{"choice"}, reachStart},
	{"/logout", nil, func(e *testEnv, b *browser, _ string, _ *rp) response { return b.get(e.issuer + "/logout") }},
	{"/account/set-password", []string{"token", "password"}, reachStart},
	{"/login/passkey", []string{"credential", "kind"}, reachStart},
	{"/login/passkey", []string{"credential", "kind"}, reachCode},
	{"/login/consent", []string{"choice"}, reachConsent},
	{"/signup/code/send", nil, reachSignupCode},
	{"/forgot/code/send", nil, reachForgotCode},
}

func FuzzLoginForms(f *testing.F) {
	// form, whether to replace the sign-in id, the id, two field values.
	for i := range loginFuzzForms {
		f.Add(uint8(i), false, "", "", "")
		f.Add(uint8(i), false, "", testPassword, "trust")
	}
	for _, s := range []struct {
		form   uint8
		fuzzID bool
		id     string
		a, b   string
	}{
		{0, true, "\x00", "a@b.c", ""},
		{0, false, "", "x\x00@example.com", ""},
		{0, false, "", "\xff@example.com", ""},
		{2, false, "", "\xff\xfe", ""},
		{2, true, "%FF", testPassword, ""},
		{3, false, "", "000000", "email"},
		{3, false, "", "123456", "totp"},
		{3, false, "", "K7QF-9M2C-XW4P-T8NA", "backup"},
		{3, false, "", "\x00", "\xff"},
		{5, false, "", "stay", ""},
		{5, false, "", "no", ""},
		{5, true, strings.Repeat("9", 65), "trust", ""},
		{7, false, "", "new@example.com", "Zoë"},
		{7, false, "", "a\x00@example.com", "\x01"},
		{9, false, "", "fuzz@example.com", ""},
		{13, false, "", "BCDF-GHJK", ""},
		{13, false, "", "\xed\xa0\x80", ""},
		{14, true, "../../x", "approve", ""},
		{16, false, "", "\x00", "short"},
		{1, true, "' OR 1=1 --", "", ""},
		{6, false, "", "yes", ""},
		{10, false, "", strings.Repeat("é", 2000), ""},
		{17, false, "", `{"id":"AA","rawId":"AA","type":"public-key"}`, "passwordless"},
		{17, false, "", "\x00", "\xff"},
		{17, false, "", strings.Repeat("{", 100000), "second"},
		{18, false, "", "{", "second"},
		{18, true, "\xff", "", "passwordless"},
		{19, false, "", "allow", ""},
		{19, false, "", "deny", ""},
		{19, false, "", "\x00allow", ""},
		{19, true, "\x00", "allow", ""},
		{20, false, "", "", ""},
		{20, true, "%00", "", ""},
		{21, false, "", "", ""},
		{21, true, strings.Repeat("z", 100000), "", ""},
	} {
		f.Add(s.form, s.fuzzID, s.id, s.a, s.b)
	}

	type env struct {
		e   *testEnv
		app *rp
	}
	var envs []env
	for _, d := range storagetest.Dialects(f) {
		e := newTestEnv(f, d, localhostIssuer) // passkeys need a domain
		envs = append(envs, env{e, e.newRP("app")})
	}
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, form uint8, fuzzID bool, id, a, b string) {
		ff := loginFuzzForms[int(form)%len(loginFuzzForms)]
		for _, v := range envs {
			e := v.e
			e.t = t
			// Past every back-off an earlier input earned.
			e.clock.Advance(time.Hour)
			email := fmt.Sprintf("fuzz%d@example.com", n.Add(1))
			e.createUser(email)
			br := e.newBrowser()
			p := ff.reach(e, br, email, v.app)
			if p.status >= 500 {
				t.Fatalf("reaching %s: status %d", ff.action, p.status)
			}
			form := url.Values{"id": {p.url.Query().Get("id")}}
			if m := csrfRe.FindStringSubmatch(p.body); m != nil {
				form.Set("csrf", m[1])
			}
			for _, h := range hiddenRe.FindAllStringSubmatch(p.body, -1) {
				if form.Get(h[1]) == "" {
					form.Set(h[1], h[2])
				}
			}
			if fuzzID {
				form.Set("id", id)
			}
			vals := []string{a, b, a + b}
			for i, name := range ff.fields {
				form.Set(name, vals[i%len(vals)])
			}
			if r := br.post(e.issuer+ff.action, form); r.status >= 500 {
				t.Fatalf("%s on %s: POST %s %q: status %d\n%s", e.store.Dialect(), p.url.Path, ff.action, form, r.status, r.body)
			}
			q := url.Values{"id": {id}, "authRequestID": {id}, "token": {a}, "user_code": {a}, "method": {b}}
			for _, path := range []string{"/login", ff.action} {
				if r := br.get(e.issuer + path + "?" + q.Encode()); r.status >= 500 {
					t.Fatalf("%s: GET %s?%s: status %d\n%s", e.store.Dialect(), path, q.Encode(), r.status, r.body)
				}
			}
			if r := br.get(e.issuer + "/login/code?id=" + url.QueryEscape(form.Get("id")) + "&method=" + url.QueryEscape(b)); r.status >= http.StatusInternalServerError {
				t.Fatalf("%s: GET /login/code: status %d", e.store.Dialect(), r.status)
			}
		}
	})
}
