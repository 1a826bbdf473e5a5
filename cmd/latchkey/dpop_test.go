package main

import (
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/op"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// TestDPoPDesktopApp (issue 12 item 9): a desktop app — public client,
// PKCE, loopback redirect — binds its tokens to its own key with DPoP
// (RFC 9449): the provider wants its nonce, answers token_type DPoP,
// binds the refresh token, and userinfo and the privacy API take the
// token only with a proof of that key, each proof once.
func TestDPoPDesktopApp(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		u := e.createUser("dpop@example.com")
		app := e.newRP("cad", func(c *storage.Client) {
			c.Public, c.AppType, c.RedirectURIs = true, storage.AppTypeNative, []string{"http://127.0.0.1/callback"}
		})
		app.oauth.RedirectURL, app.redirect = "http://127.0.0.1:50123/callback", "http://127.0.0.1:50123/callback"
		app.oauth.Scopes = append(app.oauth.Scopes, op.ScopePrivacy)
		key := newDPoPKey()
		tokenURL := e.issuer + "/oauth/token"

		b := e.newBrowser()
		authURL, verifier, state, _ := app.authorizeURL()
		code := b.signIn(authURL, u.Email, signInOpts{}).code(t, state)
		exchange := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {app.redirect},
			"code_verifier": {verifier}, "client_id": {"cad"}}

		// Without the provider's nonce: use_dpop_nonce, and the nonce.
		a := call(t, "POST", tokenURL, exchange, map[string]string{"DPoP": key.proof(t, e.clock.Now(), "POST", tokenURL, "", "")})
		nonce := a.header.Get("DPoP-Nonce")
		if a.status != 400 || a.str("error") != "use_dpop_nonce" || nonce == "" {
			t.Fatalf("no nonce: %d %s %q", a.status, a.body, nonce)
		}
		// A proof for another URL or method is refused (and the code lives).
		a = call(t, "POST", tokenURL, exchange, map[string]string{"DPoP": key.proof(t, e.clock.Now(), "POST", e.issuer+"/userinfo", nonce, "")})
		if a.status != 400 || a.str("error") != "invalid_dpop_proof" {
			t.Fatalf("wrong htu: %d %s", a.status, a.body)
		}
		a = call(t, "POST", tokenURL, exchange, map[string]string{"DPoP": key.proof(t, e.clock.Now(), "POST", tokenURL, nonce, "")})
		at, rt := a.str("access_token"), a.str("refresh_token")
		if a.status != 200 || a.str("token_type") != "DPoP" || at == "" || rt == "" || a.str("id_token") == "" {
			t.Fatalf("exchange: %d %s", a.status, a.body)
		}
		nonce = a.header.Get("DPoP-Nonce")

		// Userinfo: the DPoP scheme and a proof with ath.
		userinfo := e.issuer + "/userinfo"
		proof := key.proof(t, e.clock.Now(), "GET", userinfo, nonce, at)
		a = call(t, "GET", userinfo, nil, map[string]string{"Authorization": "DPoP " + at, "DPoP": proof})
		if a.status != 200 || a.str("sub") != u.ID {
			t.Fatalf("userinfo: %d %s %v", a.status, a.body, a.header)
		}
		// The same proof again: a replay.
		a = call(t, "GET", userinfo, nil, map[string]string{"Authorization": "DPoP " + at, "DPoP": proof})
		if a.status != 401 || !strings.Contains(a.header.Get("WWW-Authenticate"), `DPoP `) ||
			!strings.Contains(a.header.Get("WWW-Authenticate"), `error="invalid_dpop_proof"`) {
			t.Fatalf("replayed proof: %d %s %v", a.status, a.body, a.header)
		}
		// A bound token presented as a bearer token is worthless.
		a = call(t, "GET", userinfo, nil, map[string]string{"Authorization": "Bearer " + at})
		if a.status != 401 || !strings.Contains(a.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Fatalf("bound token as bearer: %d %s %v", a.status, a.body, a.header)
		}
		// Another key's proof is refused.
		thief := newDPoPKey()
		a = call(t, "GET", userinfo, nil, map[string]string{"Authorization": "DPoP " + at, "DPoP": thief.proof(t, e.clock.Now(), "GET", userinfo, nonce, at)})
		if a.status != 401 || !strings.Contains(a.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Fatalf("another key: %d %s", a.status, a.body)
		}
		// A stale nonce (two windows old) asks for a fresh one.
		e.clock.Advance(11 * time.Minute)
		a = call(t, "GET", userinfo, nil, map[string]string{"Authorization": "DPoP " + at, "DPoP": key.proof(t, e.clock.Now(), "GET", userinfo, nonce, at)})
		if a.status != 401 || !strings.Contains(a.header.Get("WWW-Authenticate"), `error="use_dpop_nonce"`) || a.header.Get("DPoP-Nonce") == "" {
			t.Fatalf("stale nonce: %d %s %v", a.status, a.body, a.header)
		}
		nonce = a.header.Get("DPoP-Nonce")
		// (The access token expired meanwhile; the refresh token renews it.)

		// The refresh token is bound too: no proof, or another key's, fail.
		refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"cad"}}
		for name, h := range map[string]map[string]string{
			"no proof":    nil,
			"another key": {"DPoP": thief.proof(t, e.clock.Now(), "POST", tokenURL, nonce, "")},
		} {
			if a := call(t, "POST", tokenURL, refresh, h); a.status != 400 || a.str("error") != "invalid_grant" {
				t.Fatalf("refresh with %s: %d %s", name, a.status, a.body)
			}
		}
		a = call(t, "POST", tokenURL, refresh, map[string]string{"DPoP": key.proof(t, e.clock.Now(), "POST", tokenURL, nonce, "")})
		at = a.str("access_token")
		if a.status != 200 || a.str("token_type") != "DPoP" || a.str("refresh_token") == "" {
			t.Fatalf("refresh: %d %s", a.status, a.body)
		}

		// The privacy API takes the DPoP token the same way.
		api := e.issuer + "/api/v1/me/privacy"
		a = call(t, "GET", api, nil, map[string]string{"Authorization": "DPoP " + at, "DPoP": key.proof(t, e.clock.Now(), "GET", api, nonce, at)})
		if a.status != 200 || a.json["required"] != true {
			t.Fatalf("privacy API: %d %s %v", a.status, a.body, a.header)
		}
		a = call(t, "GET", api, nil, map[string]string{"Authorization": "Bearer " + at})
		if a.status != 401 || !strings.Contains(a.header.Get("WWW-Authenticate"), `DPoP`) {
			t.Fatalf("privacy API, bound token as bearer: %d %s %v", a.status, a.body, a.header)
		}

		// One proof, many requests at once: exactly one is served.
		proof = key.proof(t, e.clock.Now(), "GET", userinfo, nonce, at)
		var wg sync.WaitGroup
		var mu sync.Mutex
		codes := map[int]int{}
		for range 12 {
			wg.Go(func() {
				a := call(t, "GET", userinfo, nil, map[string]string{"Authorization": "DPoP " + at, "DPoP": proof})
				mu.Lock()
				codes[a.status]++
				mu.Unlock()
			})
		}
		wg.Wait()
		if codes[200] != 1 || codes[401] != 11 {
			t.Fatalf("concurrent replays of one proof: %v", codes)
		}

		// Discovery says what works.
		disc := call(t, "GET", e.issuer+"/.well-known/openid-configuration", nil, nil)
		algs, _ := disc.json["dpop_signing_alg_values_supported"].([]any)
		if !slices.Contains(algs, any("ES256")) || !slices.Contains(algs, any("EdDSA")) {
			t.Fatalf("dpop_signing_alg_values_supported = %v", disc.json["dpop_signing_alg_values_supported"])
		}
	})
}

// TestDPoPBoundClient (item 9): a client with dpop_bound_access_tokens
// gets no token without a proof; a confidential client's DPoP-bound JWT
// access token carries cnf.jkt, and introspection says so.
func TestDPoPBoundClient(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		svc := e.newRP("svc", func(c *storage.Client) {
			c.DPoPBound, c.Scopes, c.AccessTokenFormat = true, []string{"api"}, storage.TokenFormatJWT
		})
		tokenURL := e.issuer + "/oauth/token"
		cc := url.Values{"grant_type": {"client_credentials"}, "scope": {"api"}}
		a := call(t, "POST", tokenURL, cc, basic("svc", svc.secret))
		if a.status != 400 || a.str("error") != "invalid_dpop_proof" || a.header.Get("DPoP-Nonce") == "" {
			t.Fatalf("no proof: %d %s", a.status, a.body)
		}
		key := newDPoPKey()
		h := basic("svc", svc.secret)
		h["DPoP"] = key.proof(t, e.clock.Now(), "POST", tokenURL, a.header.Get("DPoP-Nonce"), "")
		a = call(t, "POST", tokenURL, cc, h)
		at := a.str("access_token")
		if a.status != 200 || a.str("token_type") != "DPoP" {
			t.Fatalf("with a proof: %d %s", a.status, a.body)
		}
		cnf, _ := claimsOf(t, at)["cnf"].(map[string]any)
		if cnf["jkt"] != key.thumbprint(t) {
			t.Fatalf("cnf = %v, want jkt %s", cnf, key.thumbprint(t))
		}
		intro := introspect(t, svc, at)
		icnf, _ := intro["cnf"].(map[string]any)
		if intro["active"] != true || intro["token_type"] != "DPoP" || icnf["jkt"] != key.thumbprint(t) {
			t.Fatalf("introspection: %v", intro)
		}
	})
}
