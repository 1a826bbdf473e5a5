package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// TestPrivateKeyJWT (issue 12 item 1): a service registers its public
// keys (inline or by jwks_uri) and authenticates with client assertions
// signed with RS256, PS256, ES256 or EdDSA (RFC 7523 §2.2, OIDC Core §9)
// at the token, introspection, revocation and PAR endpoints; aud is the
// issuer or the endpoint; exp is required and short; a jti works once.
func TestPrivateKeyJWT(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		es := newClientKey(t, jose.ES256, "es-1")
		ed := newClientKey(t, jose.EdDSA, "ed-1")
		rs := newClientKey(t, jose.RS256, "rs-1")
		ps := newClientKey(t, jose.PS256, "ps-1")
		e.newRP("svc", func(c *storage.Client) {
			c.SecretHash, c.JWKS, c.Scopes = nil, jwksOf(t, es, ed), []string{"reports"}
		})
		// A jwks_uri served by the client, rotated during the test.
		var served atomic.Value
		served.Store(jwksOf(t, rs))
		var fetches atomic.Int32
		keys := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fetches.Add(1)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(served.Load().(string)))
		}))
		t.Cleanup(keys.Close)
		e.newRP("batch", func(c *storage.Client) {
			c.SecretHash, c.JWKSURI, c.Scopes = nil, keys.URL+"/jwks", []string{"reports"}
		})
		secretRP := e.newRP("web", func(c *storage.Client) { c.Scopes = []string{"reports"} })

		tokenURL := e.issuer + "/oauth/token"
		cc := func(assertion string) answer {
			return call(t, "POST", tokenURL, assertionForm(url.Values{"grant_type": {"client_credentials"}}, assertion), nil)
		}
		for name, a := range map[string]string{
			"ES256, aud issuer":         es.assertion(t, e, "svc", e.issuer),
			"EdDSA, aud token endpoint": ed.assertion(t, e, "svc", tokenURL),
			"RS256 by jwks_uri":         rs.assertion(t, e, "batch", []string{"https://other.example", e.issuer}),
		} {
			if r := cc(a); r.status != 200 || r.str("access_token") == "" || r.str("scope") != "reports" {
				t.Fatalf("%s: %d %s", name, r.status, r.body)
			}
		}

		// Refusals, each invalid_client (401).
		now := e.clock.Now()
		good := assertionClaims{iss: "svc", sub: "svc", aud: e.issuer, iat: now, exp: now.Add(time.Minute), jti: "j-fixed"}
		with := func(f func(*assertionClaims)) assertionClaims { c := good; f(&c); return c }
		stranger := newClientKey(t, jose.ES256, "es-1") // same kid, another key
		hs := jose.SigningKey{Algorithm: jose.HS256, Key: []byte("0123456789abcdef0123456789abcdef")}
		hsSigner, _ := jose.NewSigner(hs, nil)
		hsJWT, _ := hsSigner.Sign([]byte(`{"iss":"svc","sub":"svc","aud":"` + e.issuer + `","exp":` + strconv.FormatInt(now.Add(time.Minute).Unix(), 10) + `,"jti":"hs"}`))
		hsRaw, _ := hsJWT.CompactSerialize()
		for name, a := range map[string]string{
			"no exp":              es.sign(t, with(func(c *assertionClaims) { c.exp = time.Time{} })),
			"expired":             es.sign(t, with(func(c *assertionClaims) { c.exp = now.Add(-time.Second) })),
			"exp an hour ahead":   es.sign(t, with(func(c *assertionClaims) { c.exp = now.Add(time.Hour) })),
			"no jti":              es.sign(t, with(func(c *assertionClaims) { c.jti = "" })),
			"other audience":      es.sign(t, with(func(c *assertionClaims) { c.aud = "https://evil.example" })),
			"sub is not iss":      es.sign(t, with(func(c *assertionClaims) { c.sub = "batch" })),
			"another client's id": es.sign(t, with(func(c *assertionClaims) { c.iss, c.sub = "batch", "batch" })),
			"unregistered key":    stranger.sign(t, good),
			"HS256":               hsRaw,
			"not a JWT":           "a.b.c",
		} {
			if r := cc(a); r.status != 401 || r.str("error") != "invalid_client" {
				t.Errorf("%s: %d %s", name, r.status, r.body)
			}
		}
		// A jti is used once.
		once := es.sign(t, with(func(c *assertionClaims) { c.jti = "j-once" }))
		if r := cc(once); r.status != 200 {
			t.Fatalf("first use: %d %s", r.status, r.body)
		}
		if r := cc(once); r.status != 401 || r.str("error") != "invalid_client" {
			t.Fatalf("replay: %d %s", r.status, r.body)
		}
		// Many at once with one assertion: exactly one token.
		race := es.sign(t, with(func(c *assertionClaims) { c.jti = "j-race" }))
		var wg sync.WaitGroup
		var ok, refused atomic.Int32
		for range 16 {
			wg.Go(func() {
				switch cc(race).status {
				case 200:
					ok.Add(1)
				case 401:
					refused.Add(1)
				}
			})
		}
		wg.Wait()
		if ok.Load() != 1 || refused.Load() != 15 {
			t.Fatalf("concurrent replays: %d served, %d refused", ok.Load(), refused.Load())
		}

		// A key the client added since: an unknown kid refetches jwks_uri.
		// (At most every 30 s: a burst of unknown kids cannot make us hammer
		// the client's server.)
		served.Store(jwksOf(t, rs, ps))
		before := fetches.Load()
		if r := cc(ps.assertion(t, e, "batch", tokenURL)); r.status != 401 || fetches.Load() != before {
			t.Fatalf("new key within 30 s of the last fetch: %d %s, %d fetches", r.status, r.body, fetches.Load()-before)
		}
		e.clock.Advance(31 * time.Second)
		if r := cc(ps.assertion(t, e, "batch", tokenURL)); r.status != 200 {
			t.Fatalf("rotated key: %d %s", r.status, r.body)
		}
		if fetches.Load() != before+1 {
			t.Fatalf("jwks_uri fetched %d more times, want 1", fetches.Load()-before)
		}

		// The same method at introspection, revocation and PAR.
		tok := cc(es.assertion(t, e, "svc", e.issuer)).str("access_token")
		in := call(t, "POST", e.issuer+"/oauth/introspect", assertionForm(url.Values{"token": {tok}}, es.assertion(t, e, "svc", e.issuer+"/oauth/introspect")), nil)
		if in.status != 200 || in.json["active"] != true || in.str("client_id") != "svc" {
			t.Fatalf("introspection: %d %s", in.status, in.body)
		}
		rv := call(t, "POST", e.issuer+"/revoke", assertionForm(url.Values{"token": {tok}}, es.assertion(t, e, "svc", e.issuer)), nil)
		if rv.status != 200 {
			t.Fatalf("revocation: %d %s", rv.status, rv.body)
		}
		if got := introspect(t, secretRP, tok); got["active"] != false {
			t.Fatalf("revoked token: %v", got)
		}

		// Discovery lists it, with the algorithms.
		disc := call(t, "GET", e.issuer+"/.well-known/openid-configuration", nil, nil)
		for _, k := range []string{"token_endpoint_auth_methods_supported", "introspection_endpoint_auth_methods_supported", "revocation_endpoint_auth_methods_supported"} {
			if m, _ := disc.json[k].([]any); !slices.Contains(m, any("private_key_jwt")) {
				t.Errorf("%s = %v", k, disc.json[k])
			}
		}
		algs, _ := disc.json["token_endpoint_auth_signing_alg_values_supported"].([]any)
		for _, a := range []string{"RS256", "PS256", "ES256", "EdDSA"} {
			if !slices.Contains(algs, any(a)) {
				t.Errorf("token_endpoint_auth_signing_alg_values_supported lacks %s: %v", a, algs)
			}
		}
	})
}

// TestPrivateKeyJWTWebApp (item 1): a web app signs its users in and
// redeems the code with a client assertion (x/oauth2 with the assertion
// as extra parameters, as authlib's PrivateKeyJWT does).
func TestPrivateKeyJWTWebApp(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		u := e.createUser("pkjwt@example.com")
		key := newClientKey(t, jose.ES256, "web-1")
		app := e.newRP("portal", func(c *storage.Client) { c.SecretHash, c.JWKS = nil, jwksOf(t, key) })
		app.oauth.ClientSecret = ""
		app.oauth.Endpoint.AuthStyle = oauth2.AuthStyleInParams
		authURL, verifier, state, nonce := app.authorizeURL()
		code := e.newBrowser().signIn(authURL, u.Email, signInOpts{}).code(t, state)
		tok, err := app.oauth.Exchange(context.Background(), code, oauth2.VerifierOption(verifier),
			oauth2.SetAuthURLParam("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
			oauth2.SetAuthURLParam("client_assertion", key.assertion(t, e, "portal", e.issuer+"/oauth/token")))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := tok.Extra("id_token").(string)
		idt, err := app.provider.Verifier(&oidc.Config{ClientID: "portal"}).Verify(context.Background(), raw)
		if err != nil || idt.Nonce != nonce || idt.Subject != u.ID {
			t.Fatalf("id token: %v %+v", err, idt)
		}
		// Without the assertion the code is refused (and not burnt).
		authURL, verifier, state, _ = app.authorizeURL()
		code = e.newBrowser().signIn(authURL, u.Email, signInOpts{}).code(t, state)
		r := call(t, "POST", e.issuer+"/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"redirect_uri": {app.redirect}, "code_verifier": {verifier}, "client_id": {"portal"}}, nil)
		if r.status != 401 || r.str("error") != "invalid_client" {
			t.Fatalf("no assertion: %d %s", r.status, r.body)
		}
	})
}
