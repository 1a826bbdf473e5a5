package main

import (
	"net/url"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// TestProtocolGarbage: nonsense in every new parameter and header (client
// assertions, DPoP proofs, request_uris, PAR bodies, authorization
// headers) gets an OAuth error or our error page, never a 5xx.
func TestProtocolGarbage(t *testing.T) {
	e := newTestEnv(t, storagetest.Dialects(t)[0])
	app := e.newRP("app", func(c *storage.Client) { c.Scopes = []string{"api"} })
	e.newRP("pub", func(c *storage.Client) {
		c.Public, c.AppType, c.RedirectURIs = true, storage.AppTypeNative, []string{"http://127.0.0.1/cb"}
	})
	garbage := []string{"", "x", "a.b.c", "e30.e30.", "eyJhbGciOiJub25lIn0.e30.", strings.Repeat("A", 9000), "\x00\xff", `{"alg":"none"}`,
		"eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6Im9jdCIsImsiOiJBQUFBIn19.e30.AAAA"}
	check := func(what string, a answer) {
		t.Helper()
		if a.status >= 500 || a.status == 0 {
			t.Errorf("%s: %d %s", what, a.status, a.body)
		}
	}
	for _, g := range garbage {
		check("assertion "+g[:min(len(g), 20)], call(t, "POST", e.issuer+"/oauth/token",
			assertionForm(url.Values{"grant_type": {"client_credentials"}}, g), nil))
		if strings.ContainsAny(g, "\x00\xff") {
			g = "%00"
		}
		h := basic("app", app.secret)
		h["DPoP"] = g
		check("dpop at token", call(t, "POST", e.issuer+"/oauth/token", url.Values{"grant_type": {"client_credentials"}}, h))
		check("dpop at userinfo", call(t, "GET", e.issuer+"/userinfo", nil, map[string]string{"Authorization": "DPoP " + g, "DPoP": g}))
		check("bearer at userinfo", call(t, "GET", e.issuer+"/userinfo", nil, map[string]string{"Authorization": "Bearer " + g}))
		check("privacy API", call(t, "GET", e.issuer+"/api/v1/me/privacy", nil, map[string]string{"Authorization": "DPoP " + g, "DPoP": g}))
		check("request_uri", call(t, "GET", e.issuer+"/authorize?"+url.Values{"client_id": {"app"}, "request_uri": {g}}.Encode(), nil, nil))
		check("par request_uri", call(t, "GET", e.issuer+"/authorize?"+url.Values{"client_id": {"app"}, "request_uri": {"urn:ietf:params:oauth:request_uri:" + g}}.Encode(), nil, nil))
		check("par", call(t, "POST", e.issuer+"/par", url.Values{"client_id": {"pub"}, "redirect_uri": {g}, "response_type": {g}, "scope": {g}, "max_age": {g}}, nil))
		check("introspect", call(t, "POST", e.issuer+"/oauth/introspect", url.Values{"token": {g}, "token_type_hint": {g}}, basic("app", app.secret)))
		check("revoke", call(t, "POST", e.issuer+"/revoke", url.Values{"token": {g}}, basic("app", app.secret)))
		check("authorize", call(t, "GET", e.issuer+"/authorize?"+url.Values{"client_id": {"app"}, "redirect_uri": {rpRedirect}, "response_type": {"code"},
			"scope": {g}, "max_age": {g}, "prompt": {g}, "response_mode": {g}, "id_token_hint": {g}, "code_challenge": {g}}.Encode(), nil, nil))
	}
}
