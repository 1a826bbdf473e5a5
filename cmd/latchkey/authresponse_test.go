package main

import (
	"html"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// fetch is b's request with its cookies and same-site redirects, keeping
// the final response's headers.
func (b *browser) fetch(method, u string, form url.Values, header map[string]string) answer {
	b.e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("User-Agent", b.ua)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: raw}
}

// formPostFields reads a form_post page: the form's action and fields.
func formPostFields(t *testing.T, body string) (string, url.Values) {
	t.Helper()
	m := formRe.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no form in:\n%s", body)
	}
	fields := url.Values{}
	for _, h := range hiddenRe.FindAllStringSubmatch(m[2], -1) {
		fields.Add(h[1], html.UnescapeString(h[2]))
	}
	return html.UnescapeString(m[1]), fields
}

// TestFormPostResponses (issue 12 items 3 and 7, issue 10 (c)): with
// response_mode=form_post every answer is posted, errors too, with iss;
// the page may post only to that client's redirect origin.
func TestFormPostResponses(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		u := e.createUser("formpost@example.com")
		app := e.newRP("app")
		formPost := oauth2.SetAuthURLParam("response_mode", "form_post")

		// prompt=none without a session: login_required, posted.
		authURL, _, state, _ := app.authorizeURL(formPost, oauth2.SetAuthURLParam("prompt", "none"))
		a := e.newBrowser().fetch("GET", authURL, nil, nil)
		if a.status != 200 || !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") {
			t.Fatalf("prompt=none with form_post: %d %v\n%s", a.status, a.header, a.body)
		}
		action, f := formPostFields(t, string(a.body))
		if action != rpRedirect || f.Get("error") != "login_required" || f.Get("state") != state || f.Get("iss") != e.issuer || f.Get("code") != "" {
			t.Fatalf("posted to %s: %v", action, f)
		}
		csp := a.header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "form-action http://rp.test;") || strings.Contains(csp, "'self' *") || !strings.Contains(csp, "script-src 'sha256-") {
			t.Fatalf("form_post CSP: %q", csp)
		}

		// A sign-in (the browser has a session): the code is posted, with
		// state and iss.
		b := e.newBrowser()
		b.signInRP(app, u.Email, signInOpts{})
		authURL, verifier, state, nonce := app.authorizeURL(formPost)
		p := b.get(authURL)
		action, f = formPostFields(t, p.body)
		if action != rpRedirect || f.Get("code") == "" || f.Get("state") != state || f.Get("iss") != e.issuer {
			t.Fatalf("success posted to %s: %v", action, f)
		}
		app.exchange(f.Get("code"), verifier, nonce)
	})
}

// TestIssInAuthorizationResponses (item 7, RFC 9207): iss in every
// authorization response, success and error, and advertised.
func TestIssInAuthorizationResponses(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		u := e.createUser("iss@example.com")
		app := e.newRP("app")
		b := e.newBrowser()
		authURL, _, state, _ := app.authorizeURL()
		q := redirectParams(t, b.signIn(authURL, u.Email, signInOpts{}).location)
		if q.Get("code") == "" || q.Get("state") != state || q.Get("iss") != e.issuer {
			t.Fatalf("success: %v", q)
		}
		// An error from the sign-in (prompt=none, no session) and one from
		// the request itself.
		authURL, _, _, _ = app.authorizeURL(oauth2.SetAuthURLParam("prompt", "none"))
		if q := redirectParams(t, e.newBrowser().get(authURL).location); q.Get("error") != "login_required" || q.Get("iss") != e.issuer {
			t.Fatalf("login_required: %v", q)
		}
		authURL, _, _, _ = app.authorizeURL(oauth2.SetAuthURLParam("response_type", "id_token"))
		if q := redirectParams(t, e.newBrowser().get(authURL).location); q.Get("error") != "unsupported_response_type" || q.Get("iss") != e.issuer {
			t.Fatalf("unsupported_response_type: %v", q)
		}
		disc := call(t, "GET", e.issuer+"/.well-known/openid-configuration", nil, nil)
		if disc.json["authorization_response_iss_parameter_supported"] != true {
			t.Fatalf("not advertised: %s", disc.body)
		}
	})
}

// TestRequestURIRefused (item 2, OIDC Core §6.2): a request_uri we did
// not issue is answered request_uri_not_supported, never ignored; a
// request object request_not_supported.
func TestRequestURIRefused(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		app := e.newRP("app")
		base := e.issuer + "/authorize?"
		q := url.Values{"client_id": {"app"}, "redirect_uri": {rpRedirect}, "response_type": {"code"}, "scope": {"openid"},
			"request_uri": {"https://rp.test/request.jwt"}}
		a := call(t, "GET", base+q.Encode(), nil, nil)
		got := redirectParams(t, a.header.Get("Location"))
		if a.status != 302 || got.Get("error") != "request_uri_not_supported" || got.Get("code") != "" || got.Get("iss") != e.issuer {
			t.Fatalf("foreign request_uri: %d %v", a.status, got)
		}
		q.Set("state", "s1")
		got = redirectParams(t, call(t, "GET", base+q.Encode(), nil, nil).header.Get("Location"))
		if got.Get("error") != "request_uri_not_supported" || got.Get("state") != "s1" {
			t.Fatalf("with state: %v", got)
		}
		q.Del("request_uri")
		q.Set("request", "eyJhbGciOiJub25lIn0.eyJzdGF0ZSI6InMyIn0.")
		got = redirectParams(t, call(t, "GET", base+q.Encode(), nil, nil).header.Get("Location"))
		if got.Get("error") != "request_not_supported" || got.Get("state") != "s1" {
			t.Fatalf("request object: %v", got)
		}
		// Only client_id and a request_uri: nowhere safe to send the
		// browser but our page.
		a = call(t, "GET", base+url.Values{"client_id": {"app"}, "request_uri": {"https://rp.test/r"}}.Encode(), nil, nil)
		if a.status != 400 || a.header.Get("Location") != "" || !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") {
			t.Fatalf("without redirect_uri: %d %v", a.status, a.header)
		}
		_ = app
	})
}

// TestErrorPagesForPeople (item 5): what cannot go back to the client is
// our HTML error page — lang, title, error id, the problem in words — at
// /authorize and at /end_session.
func TestErrorPagesForPeople(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		e.newRP("app")
		check := func(name string, a answer, words string) {
			t.Helper()
			body := string(a.body)
			if a.status != 400 || !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") || a.header.Get("Location") != "" ||
				!strings.Contains(body, `<html lang="en">`) || !strings.Contains(body, "<title>") ||
				!strings.Contains(body, "Error id: <code>") || !strings.Contains(body, words) {
				t.Errorf("%s: %d %v\n%s", name, a.status, a.header, body)
			}
		}
		az := e.issuer + "/authorize?"
		check("unknown client", call(t, "GET", az+url.Values{"client_id": {"nope"}, "redirect_uri": {rpRedirect}, "response_type": {"code"}}.Encode(), nil, nil),
			"client_id &#34;nope&#34; is not a registered application")
		check("unregistered redirect", call(t, "GET", az+url.Values{"client_id": {"app"}, "redirect_uri": {"https://evil.test/cb"}, "response_type": {"code"}}.Encode(), nil, nil),
			"is not registered for")
		check("no parameters", call(t, "GET", e.issuer+"/authorize", nil, nil), "client_id is missing")
		check("end_session, unregistered post_logout_redirect_uri",
			call(t, "GET", e.issuer+"/end_session?"+url.Values{"client_id": {"app"}, "post_logout_redirect_uri": {"https://evil.test/"}}.Encode(), nil, nil),
			"invalid sign-out request")
		check("end_session, bad id_token_hint",
			call(t, "GET", e.issuer+"/end_session?"+url.Values{"id_token_hint": {"garbage"}}.Encode(), nil, nil), "invalid sign-out request")
	})
}

// TestLoopbackRedirects (issue 10 (a), RFC 8252 §7.3, §8.3): a native
// client registered with http://127.0.0.1/callback may come back to
// 127.0.0.1 or [::1] on any port from 1 to 65535 with that path, and to
// nothing else that is not registered exactly.
func TestLoopbackRedirects(t *testing.T) {
	e := newTestEnv(t, storagetest.Dialects(t)[0])
	e.newRP("cad", func(c *storage.Client) {
		c.Public, c.AppType = true, storage.AppTypeNative
		c.RedirectURIs = []string{"http://127.0.0.1/callback", "com.example.cad:/oauth"}
	})
	for redirect, ok := range map[string]bool{
		"http://127.0.0.1/callback":                   true, // registered exactly
		"http://127.0.0.1:1/callback":                 true,
		"http://127.0.0.1:49152/callback":             true,
		"http://127.0.0.1:65535/callback":             true,
		"http://[::1]:49152/callback":                 true,
		"com.example.cad:/oauth":                      true, // registered exactly
		"http://localhost:49152/callback":             false,
		"https://127.0.0.1:49152/callback":            false,
		"http://127.0.0.2:49152/callback":             false,
		"http://[::ffff:127.0.0.1]:49152/callback":    false,
		"http://evil@127.0.0.1:49152/callback":        false,
		"http://127.0.0.1:0/callback":                 false,
		"http://127.0.0.1:99999/callback":             false,
		"http://127.0.0.1:049152/callback":            false,
		"http://127.0.0.1:49152/callback#frag":        false,
		"http://127.0.0.1:49152/other":                false,
		"http://127.0.0.1:49152/callback?x=1":         false,
		"http://127.0.0.1.evil.test:49152/callback":   false,
		"com.example.cad:/other":                      false,
		"http://127.0.0.1:49152/callback/../callback": false,
	} {
		q := url.Values{"client_id": {"cad"}, "redirect_uri": {redirect}, "response_type": {"code"}, "scope": {"openid"},
			"code_challenge": {s256("verifier-verifier-verifier-verifier-verifier-01")}, "code_challenge_method": {"S256"}}
		a := call(t, "GET", e.issuer+"/authorize?"+q.Encode(), nil, nil)
		accepted := a.status == 302 && strings.HasPrefix(a.header.Get("Location"), "/login?authRequestID=")
		if accepted != ok || (!ok && a.status != 400) {
			t.Errorf("%s: %d %q, want accepted=%v", redirect, a.status, a.header.Get("Location"), ok)
		}
	}
}

// TestFormActionOnlyToSelf (issue 10 (c)): ordinary pages post to this
// site only; the form_post page's own policy names the one origin it
// posts to (TestFormPostResponses); and a redirect out of the site that
// follows one of our forms becomes a page (Chrome and Safari apply the
// form's form-action to the redirects after a submission).
func TestFormActionOnlyToSelf(t *testing.T) {
	e := newTestEnv(t, storagetest.Dialects(t)[0])
	u := e.createUser("csp@example.com")
	app := e.newRP("app")
	b := e.newBrowser()
	authURL, _, state, _ := app.authorizeURL()
	a := b.fetch("GET", authURL, nil, nil)
	csp := a.header.Get("Content-Security-Policy")
	if a.status != 200 || !strings.Contains(csp, "form-action 'self';") || strings.Contains(csp, "*") {
		t.Fatalf("sign-in page CSP: %q", csp)
	}
	// Finish a sign-in; the browser has a session now.
	b.signIn(authURL, u.Email, signInOpts{})
	// The last hop to the product, after one of our forms (the browser
	// says same-origin): a page that moves on, not a redirect.
	authURL, _, state, _ = app.authorizeURL()
	a = b.fetch("GET", authURL, nil, map[string]string{"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "navigate"})
	if a.status != 200 || !strings.Contains(string(a.body), `http-equiv="refresh"`) || !strings.Contains(string(a.body), "state="+state) ||
		!strings.Contains(a.header.Get("Content-Security-Policy"), "form-action 'none'") {
		t.Fatalf("after a same-origin navigation: %d %v\n%s", a.status, a.header, a.body)
	}
	// From the product's own page (cross-site): the plain redirect.
	authURL, _, state, _ = app.authorizeURL()
	p := b.get(authURL)
	if q := redirectParams(t, p.location); q.Get("state") != state || q.Get("code") == "" {
		t.Fatalf("cross-site start: %s", p.location)
	}
}
