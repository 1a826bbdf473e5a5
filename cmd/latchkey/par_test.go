package main

import (
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/latchkey/latchkey/config"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// TestPushedAuthorizationRequests (issue 12 item 8, RFC 9126): a client
// pushes its request (authenticated as at the token endpoint) and gets a
// request_uri that works once, for 60 s; a client that must use PAR
// cannot do without.
func TestPushedAuthorizationRequests(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		u := e.createUser("par@example.com")
		app := e.newRP("app", func(c *storage.Client) { c.RequirePAR = true })
		key := newClientKey(t, jose.ES256, "k1")
		e.newRP("svc", func(c *storage.Client) { c.SecretHash, c.JWKS = nil, jwksOf(t, key) })
		parURL := e.issuer + "/par"
		verifier := "par-verifier-par-verifier-par-verifier-par-01"
		request := func(client string) url.Values {
			return url.Values{"client_id": {client}, "redirect_uri": {rpRedirect}, "response_type": {"code"},
				"scope": {"openid email"}, "state": {"st-par"}, "nonce": {"n-par"},
				"code_challenge": {s256(verifier)}, "code_challenge_method": {"S256"}}
		}
		push := func(form url.Values, h map[string]string) answer { return call(t, "POST", parURL, form, h) }

		// A client that must push is refused at /authorize directly.
		authURL, _, _, _ := app.authorizeURL()
		if q := redirectParams(t, e.newBrowser().get(authURL).location); q.Get("error") != "invalid_request" {
			t.Fatalf("direct request of a PAR client: %v", q)
		}

		a := push(request("app"), basic("app", app.secret))
		ru := a.str("request_uri")
		if a.status != 201 || !strings.HasPrefix(ru, "urn:ietf:params:oauth:request_uri:") || a.json["expires_in"] != float64(60) {
			t.Fatalf("push: %d %s", a.status, a.body)
		}
		b := e.newBrowser()
		p := b.signIn(e.issuer+"/authorize?"+url.Values{"client_id": {"app"}, "request_uri": {ru}}.Encode(), u.Email, signInOpts{})
		q := redirectParams(t, p.location)
		if q.Get("state") != "st-par" || q.Get("code") == "" || q.Get("iss") != e.issuer {
			t.Fatalf("sign-in through PAR: %v", q)
		}
		_, idt, _ := app.exchange(q.Get("code"), verifier, "n-par")
		if idt.Subject != u.ID {
			t.Fatalf("sub %s", idt.Subject)
		}
		// Once only.
		again := b.get(e.issuer + "/authorize?" + url.Values{"client_id": {"app"}, "request_uri": {ru}}.Encode())
		if again.status != 400 || again.location != "" || !strings.Contains(again.body, "used already") {
			t.Fatalf("request_uri reused: %d %q", again.status, again.location)
		}
		// 60 s, not 61.
		ru = push(request("app"), basic("app", app.secret)).str("request_uri")
		e.clock.Advance(61 * time.Second)
		if p := b.get(e.issuer + "/authorize?" + url.Values{"client_id": {"app"}, "request_uri": {ru}}.Encode()); p.status != 400 {
			t.Fatalf("expired request_uri: %d", p.status)
		}
		// Another client's request_uri.
		ru = push(request("app"), basic("app", app.secret)).str("request_uri")
		if p := b.get(e.issuer + "/authorize?" + url.Values{"client_id": {"svc"}, "request_uri": {ru}}.Encode()); p.status != 400 || p.location != "" {
			t.Fatalf("request_uri of another client: %d %q", p.status, p.location)
		}

		// Refusals at /par: authentication as at the token endpoint, and
		// the request checked now.
		for name, tc := range map[string]struct {
			form   url.Values
			h      map[string]string
			status int
			code   string
		}{
			"no authentication": {request("app"), nil, 401, "invalid_client"},
			"wrong secret":      {request("app"), basic("app", "wrong-secret-wrong-secret-wrong"), 401, "invalid_client"},
			"unregistered redirect": {func() url.Values { f := request("app"); f.Set("redirect_uri", "https://evil.test/"); return f }(),
				basic("app", app.secret), 400, "invalid_request"},
			"request_uri inside": {func() url.Values { f := request("app"); f.Set("request_uri", "urn:x"); return f }(),
				basic("app", app.secret), 400, "invalid_request"},
			"implicit": {func() url.Values { f := request("app"); f.Set("response_type", "token"); return f }(),
				basic("app", app.secret), 400, "unsupported_response_type"},
			"another client_id": {request("svc"), basic("app", app.secret), 400, "invalid_request"},
		} {
			if a := push(tc.form, tc.h); a.status != tc.status || a.str("error") != tc.code {
				t.Errorf("%s: %d %s", name, a.status, a.body)
			}
		}
		// private_key_jwt works at /par too.
		a = push(assertionForm(request("svc"), key.assertion(t, e, "svc", parURL)), nil)
		if a.status != 201 {
			t.Fatalf("private_key_jwt at /par: %d %s", a.status, a.body)
		}

		// One request_uri, many browsers at once: one sign-in starts.
		ru = push(request("app"), basic("app", app.secret)).str("request_uri")
		var wg sync.WaitGroup
		var started atomic.Int32
		for range 10 {
			wg.Go(func() {
				a := call(t, "GET", e.issuer+"/authorize?"+url.Values{"client_id": {"app"}, "request_uri": {ru}}.Encode(), nil, nil)
				if a.status == 302 && strings.HasPrefix(a.header.Get("Location"), "/login?") {
					started.Add(1)
				}
			})
		}
		wg.Wait()
		if started.Load() != 1 {
			t.Fatalf("%d sign-ins from one request_uri", started.Load())
		}

		disc := call(t, "GET", e.issuer+"/.well-known/openid-configuration", nil, nil)
		if disc.str("pushed_authorization_request_endpoint") != parURL || disc.json["require_pushed_authorization_requests"] != false ||
			disc.json["request_uri_parameter_supported"] != false {
			t.Fatalf("discovery: %s", disc.body)
		}
	})
}

// TestPARRequiredEverywhere (item 8): protocol.require_pushed_authorization_requests
// makes every client push, and discovery says so.
func TestPARRequiredEverywhere(t *testing.T) {
	e := newTestEnv(t, storagetest.Dialects(t)[0], func(c *config.Config) { c.Protocol.RequirePushedAuthorizationRequests = true })
	app := e.newRP("app")
	authURL, _, _, _ := app.authorizeURL()
	if q := redirectParams(t, e.newBrowser().get(authURL).location); q.Get("error") != "invalid_request" ||
		!strings.Contains(q.Get("error_description"), "pushed authorization request") {
		t.Fatalf("direct request: %v", q)
	}
	disc := call(t, "GET", e.issuer+"/.well-known/openid-configuration", nil, nil)
	if disc.json["require_pushed_authorization_requests"] != true {
		t.Fatalf("discovery: %s", disc.body)
	}
	methods, _ := disc.json["token_endpoint_auth_methods_supported"].([]any)
	if !slices.Contains(methods, any("none")) {
		t.Fatalf("auth methods: %v", methods)
	}
}
