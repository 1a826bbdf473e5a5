package main

import (
	"bytes"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/storage/storagetest"
)

// TestUserinfoErrors (issue 12 item 4, RFC 6750 §3): a missing, bad,
// revoked or expired token is 401 with a Bearer challenge (invalid_token
// when a token was sent), JSON, never text/plain or 403.
func TestUserinfoErrors(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		u := e.createUser("ui@example.com")
		app := e.newRP("app")
		b := e.newBrowser()
		authURL, verifier, state, nonce := app.authorizeURL()
		tok, _, _ := app.exchange(b.signIn(authURL, u.Email, signInOpts{}).code(t, state), verifier, nonce)
		ui := e.issuer + "/userinfo"
		bearer := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }
		if a := call(t, "GET", ui, nil, bearer(tok.AccessToken)); a.status != 200 || a.str("sub") != u.ID || a.str("email") != u.Email {
			t.Fatalf("good token: %d %s", a.status, a.body)
		}
		check := func(name string, a answer, wantCode bool) {
			t.Helper()
			ch := a.header.Values("WWW-Authenticate")
			joined := strings.Join(ch, " | ")
			if a.status != 401 || !strings.HasPrefix(a.header.Get("Content-Type"), "application/json") ||
				!strings.HasPrefix(ch[0], `Bearer realm="`+e.issuer+`"`) ||
				strings.Contains(joined, `error="invalid_token"`) != wantCode {
				t.Errorf("%s: %d %v %s", name, a.status, a.header, a.body)
			}
		}
		// RFC 6750 §3.1: no credentials, no error code in the challenge.
		check("no token", call(t, "GET", ui, nil, nil), false)
		check("garbage", call(t, "GET", ui, nil, bearer("garbage")), true)
		check("garbage, POST form", call(t, "POST", ui, url.Values{"access_token": {"garbage"}}, nil), true)
		revoke(t, app, tok.AccessToken)
		check("revoked", call(t, "GET", ui, nil, bearer(tok.AccessToken)), true)
		tok2 := refresh(t, app, tok.RefreshToken)
		e.clock.Advance(16 * time.Minute)
		check("expired", call(t, "GET", ui, nil, bearer(tok2.AccessToken)), true)
	})
}

// TestTokenEndpointsSmallerFixes (item 6): revoking another client's
// token is refused and leaves it alive (RFC 7009 §2.1); a live refresh
// token introspects active with its scope and client (RFC 7662); RFC
// 8414 metadata is the discovery document.
func TestTokenEndpointsSmallerFixes(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		u := e.createUser("revoke@example.com")
		app := e.newRP("app")
		other := e.newRP("other")
		b := e.newBrowser()
		authURL, verifier, state, nonce := app.authorizeURL()
		tok, _, _ := app.exchange(b.signIn(authURL, u.Email, signInOpts{}).code(t, state), verifier, nonce)

		for name, token := range map[string]string{"access token": tok.AccessToken, "refresh token": tok.RefreshToken} {
			a := call(t, "POST", e.issuer+"/revoke", url.Values{"token": {token}}, basic("other", other.secret))
			if a.status != 400 || a.str("error") != "invalid_grant" {
				t.Errorf("another client revoking the %s: %d %s", name, a.status, a.body)
			}
		}
		if got := introspect(t, app, tok.AccessToken); got["active"] != true {
			t.Fatalf("the access token died: %v", got)
		}
		// Introspecting the live refresh token.
		got := introspect(t, app, tok.RefreshToken)
		if got["active"] != true || got["client_id"] != "app" || got["sub"] != u.ID ||
			got["scope"] != "openid email profile offline_access" || got["exp"] == nil {
			t.Fatalf("refresh token introspection: %v", got)
		}
		if got := introspect(t, other, tok.RefreshToken); got["active"] != false {
			t.Fatalf("another client learns about the refresh token: %v", got)
		}
		// Unknown tokens are fine to revoke (RFC 7009 §2.2).
		if a := call(t, "POST", e.issuer+"/revoke", url.Values{"token": {"nonsense"}}, basic("other", other.secret)); a.status != 200 {
			t.Fatalf("unknown token: %d %s", a.status, a.body)
		}
		revoke(t, app, tok.RefreshToken)
		if got := introspect(t, app, tok.RefreshToken); got["active"] != false {
			t.Fatalf("revoked refresh token: %v", got)
		}

		oidcDoc := call(t, "GET", e.issuer+"/.well-known/openid-configuration", nil, nil)
		oauthDoc := call(t, "GET", e.issuer+"/.well-known/oauth-authorization-server", nil, nil)
		if oauthDoc.status != 200 || !bytes.Equal(oauthDoc.body, oidcDoc.body) || oauthDoc.str("issuer") != e.issuer {
			t.Fatalf("RFC 8414 metadata: %d %s", oauthDoc.status, oauthDoc.body)
		}
	})
}
