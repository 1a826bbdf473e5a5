package main

// Issue 16 item 4: RS256 and ES256 keys published together; each client's
// ID tokens (and logout tokens) signed with the algorithm it registered,
// JWT access tokens with ES256 unless configured otherwise.

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/latchkey/latchkey/config"
	"github.com/latchkey/latchkey/op"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// algOf is the alg of a JWS's protected header.
func algOf(t testing.TB, raw string) string {
	t.Helper()
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA})
	if err != nil {
		t.Fatalf("not a JWS: %v", err)
	}
	return jws.Signatures[0].Header.Algorithm
}

// verifyIDTokenAlg is a relying party that accepts ID tokens of one
// algorithm only, with the keys it found through discovery and JWKS.
func verifyIDTokenAlg(t *testing.T, r *rp, alg, raw, path string) {
	t.Helper()
	if raw == "" {
		t.Fatalf("%s: no id_token", path)
	}
	if got := algOf(t, raw); got != alg {
		t.Fatalf("%s: %s's ID token is signed with %s, want %s", path, r.id, got, alg)
	}
	v := r.provider.Verifier(&oidc.Config{ClientID: r.id, SupportedSigningAlgs: []string{alg}})
	if _, err := v.Verify(context.Background(), raw); err != nil {
		t.Fatalf("%s: %s's ID token does not verify with JWKS: %v", path, r.id, err)
	}
}

// verifyAccessToken is a resource server of ours: a JWT access token
// verifies with JWKS (ES256 only), and is active at introspection and
// good at userinfo.
func verifyAccessToken(t *testing.T, e *testEnv, r *rp, alg, token, path string, user bool) {
	t.Helper()
	if got := algOf(t, token); got != alg {
		t.Fatalf("%s: the access token is signed with %s, want %s", path, got, alg)
	}
	ctx := context.Background()
	keys := oidc.NewRemoteKeySet(ctx, e.issuer+"/keys")
	v := oidc.NewVerifier(e.issuer, keys, &oidc.Config{SkipClientIDCheck: true, SupportedSigningAlgs: []string{alg}})
	if _, err := v.Verify(ctx, token); err != nil {
		t.Fatalf("%s: the access token does not verify with JWKS: %v", path, err)
	}
	if in := introspect(t, r, token); in["active"] != true {
		t.Fatalf("%s: introspection of the access token: %v", path, in)
	}
	if user {
		ui := call(t, "GET", e.issuer+"/userinfo", nil, map[string]string{"Authorization": "Bearer " + token})
		if ui.status != 200 || ui.str("sub") == "" {
			t.Fatalf("%s: userinfo with the access token: %d %s", path, ui.status, ui.body)
		}
	}
}

// TestIDTokenAlgPerClient: with the default configuration, a relying
// party registered for RS256, one registered for ES256 and one that
// registered nothing (keys.algorithm, RS256) each accept only their
// algorithm and verify their ID tokens through discovery and JWKS — from
// the code, refresh and device grants, and their logout tokens; their JWT
// access tokens are ES256 and verify with JWKS, at introspection and at
// userinfo. Discovery lists both algorithms, JWKS carries both keys.
func TestIDTokenAlgPerClient(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d, func(c *config.Config) { c.Keys = config.Default().Keys })
		u := e.createUser("algs@example.com")
		l := newLogoutRP(t)

		disc := call(t, "GET", e.issuer+"/.well-known/openid-configuration", nil, nil)
		if got := toStrings(disc.json["id_token_signing_alg_values_supported"]); !slices.Equal(got, []string{"RS256", "ES256"}) {
			t.Fatalf("id_token_signing_alg_values_supported = %v", got)
		}
		jwks := call(t, "GET", e.issuer+"/keys", nil, nil)
		var kinds []string
		for _, k := range jwks.json["keys"].([]any) {
			kinds = append(kinds, k.(map[string]any)["alg"].(string))
		}
		if slices.Sort(kinds); !slices.Equal(kinds, []string{"ES256", "RS256"}) {
			t.Fatalf("JWKS algorithms %v", kinds)
		}

		for _, tc := range []struct{ id, registered, want string }{
			{"rs", "RS256", "RS256"},
			{"es", "ES256", "ES256"},
			{"plain", "", "RS256"},
		} {
			t.Run(tc.id, func(t *testing.T) {
				app := e.newRP(tc.id, func(c *storage.Client) {
					c.IDTokenSigningAlg, c.AccessTokenFormat = tc.registered, storage.TokenFormatJWT
					c.GrantTypes = append(c.GrantTypes, op.GrantDeviceCode)
					c.BackchannelLogoutURI = l.srv.URL + "/" + tc.id
				})
				b := e.newBrowser()

				// Code grant.
				authURL, verifier, state, nonce := app.authorizeURL()
				tok, _, _ := app.exchange(b.signIn(authURL, u.Email, signInOpts{}).code(t, state), verifier, nonce)
				idt, _ := tok.Extra("id_token").(string)
				verifyIDTokenAlg(t, app, tc.want, idt, "code")
				verifyAccessToken(t, e, app, "ES256", tok.AccessToken, "code", true)

				// Refresh grant.
				tok2 := refresh(t, app, tok.RefreshToken)
				idt, _ = tok2.Extra("id_token").(string)
				verifyIDTokenAlg(t, app, tc.want, idt, "refresh")
				verifyAccessToken(t, e, app, "ES256", tok2.AccessToken, "refresh", true)

				// Device grant.
				ctx := context.Background()
				da, err := app.oauth.DeviceAuth(ctx)
				if err != nil {
					t.Fatal(err)
				}
				p := b.submit(b.get(e.issuer+"/device?user_code="+url.QueryEscape(da.UserCode)), "/device", url.Values{"user_code": {da.UserCode}})
				if p = b.drive(p, u.Email, signInOpts{}); !p.at("/device/confirm") {
					t.Fatalf("device: %s (%d)", p.url, p.status)
				}
				b.submit(p, "/device/confirm", url.Values{"choice": {"approve"}})
				e.clock.Advance(5 * time.Second)
				da.Interval = 1
				tok3, err := app.oauth.DeviceAccessToken(ctx, da)
				if err != nil {
					t.Fatal(err)
				}
				idt, _ = tok3.Extra("id_token").(string)
				verifyIDTokenAlg(t, app, tc.want, idt, "device")
				verifyAccessToken(t, e, app, "ES256", tok3.AccessToken, "device", true)

				// client_credentials: the access token only.
				cc := call(t, "POST", e.issuer+"/oauth/token", url.Values{"grant_type": {"client_credentials"}}, basic(app.id, app.secret))
				if cc.status != 200 {
					t.Fatalf("client_credentials: %d %s", cc.status, cc.body)
				}
				verifyAccessToken(t, e, app, "ES256", cc.str("access_token"), "client_credentials", false)

				// Back-channel logout: the logout token like the ID tokens.
				before := len(l.received())
				b.signOut()
				e.deliverAll(t)
				got := l.received()
				if len(got) <= before {
					t.Fatal("no logout token")
				}
				lt := got[len(got)-1]
				if alg := algOf(t, lt); alg != tc.want {
					t.Fatalf("logout token signed with %s, want %s", alg, tc.want)
				}
				verifyLogout(t, app, lt)
			})
		}
	})
}

// TestAccessTokenAlgorithmConfigured: keys.access_token_algorithm moves
// the JWT access tokens to another algorithm (for resource servers that
// only know RS256), and they still verify at introspection; ID tokens
// keep their own algorithm.
func TestAccessTokenAlgorithmConfigured(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, storagetest.Dialects(t)[0], func(c *config.Config) {
		c.Keys.Algorithm, c.Keys.AccessTokenAlgorithm = "ES256", "RS256"
	})
	app := e.newRP("svc", func(c *storage.Client) { c.AccessTokenFormat = storage.TokenFormatJWT })
	cc := call(t, "POST", e.issuer+"/oauth/token", url.Values{"grant_type": {"client_credentials"}}, basic(app.id, app.secret))
	if cc.status != 200 {
		t.Fatalf("client_credentials: %d %s", cc.status, cc.body)
	}
	verifyAccessToken(t, e, app, "RS256", cc.str("access_token"), "client_credentials", false)
	u := e.createUser("rsat@example.com")
	authURL, verifier, state, nonce := app.authorizeURL()
	tok, _, _ := app.exchange(e.newBrowser().signIn(authURL, u.Email, signInOpts{}).code(t, state), verifier, nonce)
	idt, _ := tok.Extra("id_token").(string)
	verifyIDTokenAlg(t, app, "ES256", idt, "code")
	verifyAccessToken(t, e, app, "RS256", tok.AccessToken, "code", true)
	if disc := call(t, "GET", e.issuer+"/.well-known/openid-configuration", nil, nil); !strings.Contains(string(disc.body), `"id_token_signing_alg_values_supported":["ES256","RS256"]`) {
		t.Fatalf("discovery: %s", disc.body)
	}
}
