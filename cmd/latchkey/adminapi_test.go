package main

// The admin API through HTTP, authorised by client_credentials tokens as
// an operator's tooling would get them.

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/latchkey/latchkey/op"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// adminClient registers a client_credentials client with the given admin
// access and returns a token for scopes (empty: none asked).
func (e *testEnv) adminToken(id, access, format string, scopes ...string) string {
	e.t.Helper()
	secret := "s3cret-" + id + "-0123456789abcdefghijklmnop"
	now := e.clock.Now()
	if err := e.store.CreateClient(context.Background(), storage.Client{ID: id, Name: id, AppType: storage.AppTypeWeb,
		SecretHash: op.HashClientSecret(e.kr, secret), GrantTypes: []string{op.GrantClientCredentials},
		AccessTokenFormat: format, AdminAccess: access, Source: "cli", CreatedAt: now, UpdatedAt: now}); err != nil {
		e.t.Fatal(err)
	}
	cc := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: e.issuer + "/oauth/token", Scopes: scopes}
	tok, err := cc.Token(context.Background())
	if err != nil {
		e.t.Fatalf("client_credentials for %s: %v", id, err)
	}
	return tok.AccessToken
}

type apiResp struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// api calls the admin API with a bearer token ("" for none) and a JSON body.
func (e *testEnv) api(token, method, path string, body string) apiResp {
	e.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.issuer+path, r)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	e.deliver() // what the call queued, as the server's kicked worker would
	out := apiResp{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out.body); err != nil {
			e.t.Fatalf("%s %s: not JSON (%d): %s", method, path, resp.StatusCode, raw)
		}
	}
	return out
}

func (r apiResp) want(t *testing.T, status int) apiResp {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
	return r
}

func (r apiResp) str(key string) string { s, _ := r.body[key].(string); return s }

// TestAdminAPI: tokens without the scope are refused, read-only tokens
// read, full tokens change; every change is audited with the acting
// client; the support desk's actions do what they say.
func TestAdminAPI(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		ctx := context.Background()
		full := e.adminToken("ops", storage.AdminFull, "", op.ScopeAdmin)
		fullJWT := e.adminToken("ops-jwt", storage.AdminFull, storage.TokenFormatJWT, op.ScopeAdmin)
		reader := e.adminToken("auditor", storage.AdminRead, "", op.ScopeAdminRead)
		// A client not granted the API: asking for the scope is
		// invalid_scope; its token (asking for nothing) carries none.
		plain := e.adminToken("reports", "", "")
		if _, err := (&clientcredentials.Config{ClientID: "reports", ClientSecret: "s3cret-reports-0123456789abcdefghijklmnop",
			TokenURL: e.issuer + "/oauth/token", Scopes: []string{op.ScopeAdmin}}).Token(ctx); err == nil || !strings.Contains(err.Error(), "invalid_scope") {
			t.Fatalf("a client not granted the admin API asked for its scope: %v", err)
		}
		// A full client whose token did not ask for the scope.
		unscoped := e.adminToken("ops2", storage.AdminFull, "")

		// Refusals.
		r := e.api("", "GET", "/admin/v1/users", "").want(t, http.StatusUnauthorized)
		if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") || r.str("error") != "invalid_token" {
			t.Fatalf("no bearer challenge: %v %s", r.header, r.raw)
		}
		e.api("garbage", "GET", "/admin/v1/users", "").want(t, http.StatusUnauthorized)
		for _, tok := range []string{plain, unscoped} {
			r = e.api(tok, "GET", "/admin/v1/users", "").want(t, http.StatusForbidden)
			if r.str("error") != "insufficient_scope" || !strings.Contains(r.header.Get("WWW-Authenticate"), `scope="latchkey:admin:read"`) {
				t.Fatalf("refusal: %v %s", r.header, r.raw)
			}
		}
		e.api(reader, "GET", "/admin/v1/users", "").want(t, http.StatusOK)
		e.api(reader, "POST", "/admin/v1/users", `{"email":"x@example.com"}`).want(t, http.StatusForbidden)
		e.api(fullJWT, "GET", "/admin/v1/clients", "").want(t, http.StatusOK)
		// A user's token is no admin token, whatever its scopes.
		rp := e.newRP("shop")
		u := e.createUser("ada@example.com")
		b := e.newBrowser()
		authURL, verifier, state, nonce := rp.authorizeURL()
		userTok, _, _ := rp.exchange(b.signIn(authURL, u.Email, signInOpts{}).code(t, state), verifier, nonce)
		e.api(userTok.AccessToken, "GET", "/admin/v1/users", "").want(t, http.StatusUnauthorized)
		// Taking the access away works at once, before the token expires.
		if _, err := e.store.UpdateClient(ctx, "auditor", func(c *storage.Client) error { c.AdminAccess = ""; return nil }); err != nil {
			t.Fatal(err)
		}
		e.api(reader, "GET", "/admin/v1/users", "").want(t, http.StatusForbidden)

		// Users.
		r = e.api(full, "POST", "/admin/v1/users", `{"email":"bob@example.com","name":"Bob","region":"EU","send_set_password_link":true}`).want(t, http.StatusCreated)
		bobID := r.str("id")
		if m, ok := e.sink.Last("bob@example.com"); !ok || !strings.Contains(m.Text, "/account/set-password?token=") {
			t.Fatalf("no set-password mail to bob: %+v", m)
		}
		e.api(full, "POST", "/admin/v1/users", `{"email":"BOB@example.com"}`).want(t, http.StatusConflict)
		e.api(full, "POST", "/admin/v1/users", `{"email":"c@example.com","extra":1}`).want(t, http.StatusBadRequest)
		e.api(full, "POST", "/admin/v1/users", `{"email":`).want(t, http.StatusBadRequest)
		e.api(full, "POST", "/admin/v1/users", `{"email":"weak@example.com","password":"password123"}`).want(t, http.StatusBadRequest)
		r = e.api(full, "GET", "/admin/v1/users?email_prefix=BO", "").want(t, http.StatusOK)
		if us, _ := r.body["users"].([]any); len(us) != 1 {
			t.Fatalf("search: %s", r.raw)
		}
		r = e.api(full, "GET", "/admin/v1/users?limit=1", "").want(t, http.StatusOK)
		next := r.str("next_cursor")
		r = e.api(full, "GET", "/admin/v1/users?limit=1&cursor="+url.QueryEscape(next), "").want(t, http.StatusOK)
		if us, _ := r.body["users"].([]any); len(us) != 1 || us[0].(map[string]any)["email"] != "bob@example.com" {
			t.Fatalf("second page: %s", r.raw)
		}
		r = e.api(full, "PATCH", "/admin/v1/users/"+bobID, `{"name":"Robert"}`).want(t, http.StatusOK)
		if r.str("name") != "Robert" || r.str("region") != "EU" {
			t.Fatalf("patch: %s", r.raw)
		}
		e.api(full, "GET", "/admin/v1/users/nobody", "").want(t, http.StatusNotFound)

		// Ada lost her phone: reset 2-step.
		e.enrolTOTP(u)
		r = e.api(full, "GET", "/admin/v1/users/"+u.ID, "").want(t, http.StatusOK)
		methods, _ := r.body["methods"].(map[string]any)
		if methods["authenticator"] != true || len(r.body["sessions"].([]any)) != 1 || len(r.body["grants"].([]any)) != 1 || r.body["last_sign_in"] == nil {
			t.Fatalf("detail: %s", r.raw)
		}
		r = e.api(full, "POST", "/admin/v1/users/"+u.ID+"/reset-2fa", "").want(t, http.StatusOK)
		if r.body["notified"] != true {
			t.Fatalf("reset: %s", r.raw)
		}
		if m, ok := e.sink.Last(u.Email); !ok || !strings.Contains(m.Text, "2-step verification reset by an administrator") {
			t.Fatalf("no notice mail: %+v", m)
		}
		r = e.api(full, "GET", "/admin/v1/users/"+u.ID, "").want(t, http.StatusOK)
		methods, _ = r.body["methods"].(map[string]any)
		if methods["authenticator"] != false || len(r.body["sessions"].([]any)) != 0 || len(r.body["grants"].([]any)) != 0 {
			t.Fatalf("after reset: %s", r.raw)
		}
		// The next sign-in asks for an email code (the authenticator is gone).
		authURL, verifier, state, nonce = rp.authorizeURL()
		p := b.identifyAndPassword(b.get(authURL), u.Email)
		if !p.at("/login/code") || strings.Contains(p.body, `value="totp"`) {
			t.Fatalf("after the reset the sign-in does not ask for an email code: %s\n%s", p.url, p.body)
		}

		// Sessions, trusted browsers, grants one by one and all at once.
		p = b.drive(p, u.Email, signInOpts{remember: "trust"})
		rp.exchange(p.code(t, state), verifier, nonce)
		r = e.api(full, "GET", "/admin/v1/users/"+u.ID+"/trusted-browsers", "").want(t, http.StatusOK)
		browsers := r.body["trusted_browsers"].([]any)
		if len(browsers) != 1 {
			t.Fatalf("browsers: %s", r.raw)
		}
		e.api(full, "DELETE", "/admin/v1/users/"+u.ID+"/trusted-browsers/"+browsers[0].(map[string]any)["id"].(string), "").want(t, http.StatusNoContent)
		e.api(full, "DELETE", "/admin/v1/users/"+u.ID+"/trusted-browsers/nope", "").want(t, http.StatusNotFound)
		r = e.api(full, "GET", "/admin/v1/users/"+u.ID+"/grants", "").want(t, http.StatusOK)
		grants := r.body["grants"].([]any)
		if len(grants) != 1 {
			t.Fatalf("grants: %s", r.raw)
		}
		e.api(full, "DELETE", "/admin/v1/users/"+u.ID+"/grants/"+grants[0].(map[string]any)["id"].(string), "").want(t, http.StatusNoContent)
		r = e.api(full, "GET", "/admin/v1/users/"+u.ID+"/sessions", "").want(t, http.StatusOK)
		if len(r.body["sessions"].([]any)) != 1 {
			t.Fatalf("sessions: %s", r.raw)
		}
		r = e.api(full, "DELETE", "/admin/v1/users/"+u.ID+"/sessions", "").want(t, http.StatusOK)
		if r.body["sessions_ended"] != float64(1) {
			t.Fatalf("sign out everywhere: %s", r.raw)
		}
		e.api(full, "POST", "/admin/v1/users/"+u.ID+"/send-reset", "").want(t, http.StatusAccepted)
		e.api(full, "POST", "/admin/v1/users/"+u.ID+"/disable", "").want(t, http.StatusOK)
		e.api(full, "POST", "/admin/v1/users/"+u.ID+"/enable", "").want(t, http.StatusOK)

		// Clients.
		r = e.api(full, "POST", "/admin/v1/clients", `{"id":"portal","redirect_uris":["https://portal.example/cb"]}`).want(t, http.StatusCreated)
		if len(r.str("secret")) < 32 || r.str("type") != "web" {
			t.Fatalf("client create: %s", r.raw)
		}
		e.api(full, "POST", "/admin/v1/clients", `{"id":"bad","redirect_uris":["javascript:alert(1)"]}`).want(t, http.StatusBadRequest)
		e.api(full, "POST", "/admin/v1/clients", `{"id":"portal","redirect_uris":["https://portal.example/cb"]}`).want(t, http.StatusConflict)
		r = e.api(full, "PATCH", "/admin/v1/clients/portal", `{"name":"Portal","default_acr":"urn:latchkey:acr:mfa"}`).want(t, http.StatusOK)
		if r.str("name") != "Portal" || r.str("default_acr") != "urn:latchkey:acr:mfa" {
			t.Fatalf("client patch: %s", r.raw)
		}
		e.api(full, "PATCH", "/admin/v1/clients/portal", `{"default_acr":"gold"}`).want(t, http.StatusBadRequest)
		// The logo shown with the name on the sign-in pages.
		r = e.api(full, "PATCH", "/admin/v1/clients/portal", `{"logo_uri":"https://portal.example/logo.svg"}`).want(t, http.StatusOK)
		if r.str("logo_uri") != "https://portal.example/logo.svg" || r.str("name") != "Portal" {
			t.Fatalf("client patch (logo): %s", r.raw)
		}
		e.api(full, "PATCH", "/admin/v1/clients/portal", `{"logo_uri":"javascript:alert(1)"}`).want(t, http.StatusBadRequest)
		// The ID-token algorithm a client registers: RS256 or ES256, "" for keys.algorithm.
		if r.str("id_token_signed_response_alg") != "" {
			t.Fatalf("a new client has an ID-token algorithm: %s", r.raw)
		}
		r = e.api(full, "PATCH", "/admin/v1/clients/portal", `{"id_token_signed_response_alg":"ES256"}`).want(t, http.StatusOK)
		if r.str("id_token_signed_response_alg") != "ES256" || r.str("name") != "Portal" {
			t.Fatalf("client patch (alg): %s", r.raw)
		}
		if c, _ := e.store.GetClient(t.Context(), "portal"); c.IDTokenSigningAlg != "ES256" {
			t.Fatalf("stored ID-token algorithm %q", c.IDTokenSigningAlg)
		}
		e.api(full, "PATCH", "/admin/v1/clients/portal", `{"id_token_signed_response_alg":"HS256"}`).want(t, http.StatusBadRequest)
		e.api(full, "POST", "/admin/v1/clients", `{"id":"rs","redirect_uris":["https://rs.example/cb"],"id_token_signed_response_alg":"none"}`).want(t, http.StatusBadRequest)
		r = e.api(full, "POST", "/admin/v1/clients", `{"id":"rs","redirect_uris":["https://rs.example/cb"],"id_token_signed_response_alg":"RS256"}`).want(t, http.StatusCreated)
		if r.str("id_token_signed_response_alg") != "RS256" {
			t.Fatalf("client create (alg): %s", r.raw)
		}
		e.api(full, "PATCH", "/admin/v1/clients/account", `{"name":"x"}`).want(t, http.StatusBadRequest)
		r = e.api(full, "POST", "/admin/v1/clients/portal/rotate-secret", "").want(t, http.StatusOK)
		if len(r.str("secret")) < 32 {
			t.Fatalf("rotate: %s", r.raw)
		}
		e.api(full, "GET", "/admin/v1/clients/portal", "").want(t, http.StatusOK)
		e.api(full, "DELETE", "/admin/v1/clients/portal", "").want(t, http.StatusNoContent)
		e.api(full, "GET", "/admin/v1/clients/portal", "").want(t, http.StatusNotFound)

		// Organisations.
		e.api(full, "POST", "/admin/v1/organizations", `{"name":"Acme","domains":["acme.example"],"issuer":"https://idp.acme.example","client_id":"lk","client_secret":"upstream-secret"}`).want(t, http.StatusCreated)
		e.api(full, "POST", "/admin/v1/organizations", `{"name":"Acme2","domains":["acme.example"],"issuer":"https://idp.acme.example","client_id":"lk","client_secret":"s"}`).want(t, http.StatusConflict)
		r = e.api(full, "PATCH", "/admin/v1/organizations/Acme", `{"domains":["acme.example","acme.test"],"jit":false}`).want(t, http.StatusOK)
		if r.body["jit"] != false || len(r.body["domains"].([]any)) != 2 || strings.Contains(r.raw, "upstream-secret") {
			t.Fatalf("org patch: %s", r.raw)
		}
		e.api(full, "GET", "/admin/v1/organizations", "").want(t, http.StatusOK)
		e.api(full, "DELETE", "/admin/v1/organizations/Acme", "").want(t, http.StatusNoContent)

		// Keys.
		r = e.api(full, "GET", "/admin/v1/keys", "").want(t, http.StatusOK)
		before := len(r.body["keys"].([]any))
		e.api(full, "POST", "/admin/v1/keys/rotate", "").want(t, http.StatusOK)
		r = e.api(full, "GET", "/admin/v1/keys", "").want(t, http.StatusOK)
		// A rotation makes a generation: one RS256 and one ES256 key.
		if len(r.body["keys"].([]any)) != before+2 || strings.Contains(r.raw, "private") {
			t.Fatalf("keys: %s", r.raw)
		}

		// Delete.
		e.api(full, "DELETE", "/admin/v1/users/"+bobID, "").want(t, http.StatusNoContent)
		e.api(full, "GET", "/admin/v1/users/"+bobID, "").want(t, http.StatusNotFound)

		// Every change is audited with the acting client.
		r = e.api(full, "GET", "/admin/v1/audit-events?type=user.second_step_reset,user.deleted,client.created,org.deleted,keys.rotated", "").want(t, http.StatusOK)
		seen := map[string]string{}
		for _, ev := range r.body["events"].([]any) {
			m := ev.(map[string]any)
			seen[m["type"].(string)], _ = m["client_id"].(string)
		}
		for _, ev := range []string{"user.second_step_reset", "user.deleted", "client.created", "org.deleted", "keys.rotated"} {
			if seen[ev] != "ops" {
				t.Errorf("%s audited with client %q, want ops (%s)", ev, seen[ev], r.raw)
			}
		}
		// Cursor pagination through the audit trail.
		r = e.api(full, "GET", "/admin/v1/audit-events?limit=2", "").want(t, http.StatusOK)
		r2 := e.api(full, "GET", "/admin/v1/audit-events?limit=2&cursor="+url.QueryEscape(r.str("next_cursor")), "").want(t, http.StatusOK)
		if r.str("next_cursor") == "" || r2.body["events"].([]any)[0].(map[string]any)["id"] == r.body["events"].([]any)[0].(map[string]any)["id"] {
			t.Fatalf("audit paging: %s / %s", r.raw, r2.raw)
		}
		e.api(full, "GET", "/admin/v1/audit-events?since=yesterday", "").want(t, http.StatusBadRequest)

		// Hostile input: a clear 400, never a 500 (PostgreSQL refuses NUL).
		e.api(full, "GET", "/admin/v1/users/%00", "").want(t, http.StatusBadRequest)
		e.api(full, "GET", "/admin/v1/users?email_prefix=a%00", "").want(t, http.StatusBadRequest)
		e.api(full, "GET", "/admin/v1/audit-events?type=%ff", "").want(t, http.StatusBadRequest)
		e.api(full, "POST", "/admin/v1/users", `{"email":"nul\u0000@example.com"}`).want(t, http.StatusBadRequest)
		e.api(full, "POST", "/admin/v1/clients", `{"id":"c\u0000","grant_types":["client_credentials"]}`).want(t, http.StatusBadRequest)
		e.api(full, "POST", "/admin/v1/users", "{\"email\":\"x\xff@example.com\"}").want(t, http.StatusBadRequest)
		e.api(full, "POST", "/admin/v1/users", `{"email":"big@example.com","name":"`+strings.Repeat("x", 70<<10)+`"}`).want(t, http.StatusRequestEntityTooLarge)

		// Errors are JSON, unknown routes too; the document is public.
		r = e.api(full, "GET", "/admin/v1/nothing-here", "").want(t, http.StatusNotFound)
		if r.str("error") == "" {
			t.Fatalf("404 not JSON: %s", r.raw)
		}
		r = e.api("", "GET", "/admin/v1/openapi.json", "").want(t, http.StatusOK)
		if r.str("openapi") == "" {
			t.Fatalf("openapi: %s", r.raw)
		}
	})
}
