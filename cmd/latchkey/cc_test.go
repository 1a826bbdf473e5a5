package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/latchkey/latchkey/op"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// TestClientCredentialsGrant covers the grant's own handler: opaque and
// JWT access tokens (the JWT verifiable with the published keys), the
// x/oauth2 client a service would use, both client authentication
// methods, and every refusal.
func TestClientCredentialsGrant(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		svc := e.newRP("svc-jwt", func(c *storage.Client) {
			c.AccessTokenFormat, c.Scopes = storage.TokenFormatJWT, []string{"api", "reports"}
		})
		e.newRP("no-cc", func(c *storage.Client) { c.GrantTypes = []string{op.GrantAuthorizationCode} })
		e.newRP("no-scopes")
		e.newRP("pub", func(c *storage.Client) {
			c.Public, c.AppType, c.RedirectURIs = true, storage.AppTypeNative, []string{"http://127.0.0.1/cb"}
			c.GrantTypes = append(c.GrantTypes, op.GrantClientCredentials)
		})

		post := func(form url.Values, basicID, basicSecret string) (int, map[string]any, http.Header) {
			req, _ := http.NewRequest(http.MethodPost, e.issuer+"/oauth/token", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if basicID != "" {
				req.SetBasicAuth(url.QueryEscape(basicID), url.QueryEscape(basicSecret))
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&out)
			return resp.StatusCode, out, resp.Header
		}
		cc := url.Values{"grant_type": {"client_credentials"}, "scope": {"api"}}

		// Basic and post both work; the JWT verifies with the JWKS.
		st, out, hdr := post(cc, "svc-jwt", svc.secret)
		if st != 200 || out["token_type"] != "Bearer" || out["scope"] != "api" || hdr.Get("Cache-Control") != "no-store" {
			t.Fatalf("basic: %d %v %v", st, out, hdr)
		}
		raw, _ := out["access_token"].(string)
		ks := oidc.NewRemoteKeySet(context.Background(), e.issuer+"/keys")
		payload, err := ks.VerifySignature(context.Background(), raw)
		if err != nil {
			t.Fatalf("JWT does not verify with the JWKS: %v", err)
		}
		var claims map[string]any
		if err := json.Unmarshal(payload, &claims); err != nil {
			t.Fatal(err)
		}
		if claims["iss"] != e.issuer || claims["sub"] != "svc-jwt" || claims["client_id"] != "svc-jwt" || claims["scope"] != "api" {
			t.Fatalf("claims %v", claims)
		}
		if got := introspect(t, svc, raw); got["active"] != true || got["client_id"] != "svc-jwt" {
			t.Fatalf("introspect JWT: %v", got)
		}
		revoke(t, svc, raw)
		if got := introspect(t, svc, raw); got["active"] != false {
			t.Fatalf("revoked JWT still active: %v", got)
		}
		// Without a scope: the client's allowed scopes (RFC 6749 §3.3).
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc-jwt"}, "client_secret": {svc.secret}}
		if st, out, _ := post(form, "", ""); st != 200 || out["access_token"] == nil || out["scope"] != "api reports" {
			t.Fatalf("post: %d %v", st, out)
		}

		// An opaque token, fetched as a service would with x/oauth2.
		opaque := e.newRP("svc", func(c *storage.Client) { c.Scopes = []string{"api"} })
		ccc := clientcredentials.Config{ClientID: "svc", ClientSecret: opaque.secret, TokenURL: opaque.provider.Endpoint().TokenURL, Scopes: []string{"api"}}
		tok, err := ccc.Token(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got := introspect(t, opaque, tok.AccessToken); got["active"] != true || got["client_id"] != "svc" || got["scope"] != "api" {
			t.Fatalf("introspect opaque = %v", got)
		}
		ccc.ClientSecret = "wrong-secret-wrong-secret-wrong-secret"
		if _, err := ccc.Token(context.Background()); err == nil || !strings.Contains(err.Error(), "invalid_client") {
			t.Fatalf("wrong secret: %v", err)
		}

		for name, tc := range map[string]struct {
			form       url.Values
			id, secret string
			status     int
			code       string
			wwwAuth    bool
		}{
			"wrong secret":                       {cc, "svc-jwt", "wrong-wrong-wrong-wrong-wrong-wrong", 401, "invalid_client", true},
			"unknown client":                     {cc, "nobody", "whatever-whatever-whatever-whatever", 401, "invalid_client", true},
			"no credentials":                     {cc, "", "", 401, "invalid_client", false},
			"public client":                      {url.Values{"grant_type": {"client_credentials"}, "client_id": {"pub"}}, "", "", 401, "invalid_client", false},
			"grant not allowed":                  {cc, "no-cc", "s3cret-no-cc-0123456789abcdefghijklmnop", 400, "unauthorized_client", false},
			"two methods":                        {url.Values{"grant_type": {"client_credentials"}, "client_secret": {"x"}}, "svc-jwt", svc.secret, 400, "invalid_request", false},
			"client assertion":                   {url.Values{"grant_type": {"client_credentials"}, "client_assertion": {"a.b.c"}}, "", "", 400, "invalid_request", false},
			"client assertion of the wrong type": {url.Values{"grant_type": {"client_credentials"}, "client_assertion": {"a.b.c"}, "client_assertion_type": {"x"}}, "", "", 400, "invalid_request", false},
			"garbage scope":                      {url.Values{"grant_type": {"client_credentials"}, "scope": {"\x00\"<>"}}, "svc-jwt", svc.secret, 400, "invalid_request", false}, // NUL: op/text.go
			// Issue 10 (b): only the client's allowed scopes, nothing else.
			"scope not allowed": {url.Values{"grant_type": {"client_credentials"}, "scope": {"api admin"}}, "svc-jwt", svc.secret, 400, "invalid_scope", false},
			"user scope":        {url.Values{"grant_type": {"client_credentials"}, "scope": {"openid"}}, "svc-jwt", svc.secret, 400, "invalid_scope", false},
			"no allowed scopes": {cc, "no-scopes", "s3cret-no-scopes-0123456789abcdefghijklmnop", 400, "invalid_scope", false},
		} {
			st, out, hdr := post(tc.form, tc.id, tc.secret)
			if st != tc.status || (tc.code != "" && out["error"] != tc.code) || (hdr.Get("WWW-Authenticate") != "") != tc.wwwAuth {
				t.Errorf("%s: %d %v %v", name, st, out, hdr.Get("WWW-Authenticate"))
			}
		}
	})
}
