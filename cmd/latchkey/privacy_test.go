package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// Product privacy settings (SPEC 7): the page, the privacy claim, the API.

// apiCall calls the account API and returns the status, the JSON body and
// the WWW-Authenticate header.
func (e *testEnv) apiCall(method, token, contentType, body string) (int, map[string]any, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.issuer+"/api/v1/me/privacy", strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		e.t.Fatalf("%s: status %d, not JSON: %q", method, resp.StatusCode, raw)
	}
	return resp.StatusCode, out, resp.Header.Get("WWW-Authenticate")
}

func TestPrivacySettings(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		u := e.createUser("privacy@example.com")
		ctx := context.Background()

		// The page: required collection always on, two switches off.
		b := e.newBrowser()
		p := b.account("/account/privacy", u.Email, signInOpts{})
		for _, want := range []string{`<input id="required" type="checkbox" checked disabled> Required data collection`,
			`name="product_improvement" type="checkbox" value="on"> Help develop new products and services`,
			`name="personalised_offers" type="checkbox" value="on"> Personalised offers based on usage`, "Save"} {
			if !strings.Contains(p.body, want) {
				t.Errorf("privacy page lacks %q:\n%s", want, p.body)
			}
		}
		// Save: no reconfirmation needed; audited.
		p = b.submit(p, "/account/privacy", url.Values{"product_improvement": {"on"}})
		if !strings.Contains(p.body, "Your privacy settings are saved.") || !strings.Contains(p.body, `name="product_improvement" type="checkbox" value="on" checked>`) {
			t.Fatalf("save: %d\n%s", p.status, p.body)
		}
		if got := e.user(u.ID); !got.PrivacyProductImprovement || got.PrivacyPersonalisedOffers || got.PrivacyUpdatedAt.IsZero() {
			t.Fatalf("stored: %+v", got)
		}
		if !slices.Contains(e.auditEvents(u.ID), "privacy.changed") {
			t.Error("no privacy.changed audit event")
		}
		// Garbage in the form: a 400, nothing changed.
		if q := b.post(e.issuer+"/account/privacy", url.Values{"csrf": {p.csrf(t)}, "personalised_offers": {"maybe"}}); q.status != http.StatusBadRequest {
			t.Errorf("garbage switch: %d", q.status)
		}
		if q := b.post(e.issuer+"/account/privacy", url.Values{"personalised_offers": {"on"}}); q.status != http.StatusForbidden {
			t.Errorf("no CSRF: %d", q.status)
		}
		if e.user(u.ID).PrivacyPersonalisedOffers {
			t.Fatal("changed by a refused form")
		}

		// The claim, in the ID token and userinfo, with the privacy scope.
		app := e.newRP("app")
		app.oauth.Scopes = append(app.oauth.Scopes, "privacy")
		pb := e.newBrowser()
		authURL, verifier, state, nonce := app.authorizeURL()
		p = pb.drive(pb.get(authURL), u.Email, signInOpts{})
		tok, _, claims := app.exchange(p.code(t, state), verifier, nonce)
		checkClaim := func(where string, v any) {
			t.Helper()
			m, ok := v.(map[string]any)
			if !ok || m["required"] != true || m["product_improvement"] != true || m["personalised_offers"] != false {
				t.Errorf("%s privacy claim = %v", where, v)
			}
			if ts, _ := m["updated_at"].(float64); int64(ts) != e.user(u.ID).PrivacyUpdatedAt.Unix() {
				t.Errorf("%s updated_at = %v", where, m["updated_at"])
			}
		}
		checkClaim("id token", claims["privacy"])
		ui, err := app.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			t.Fatal(err)
		}
		var uiClaims map[string]any
		if err := ui.Claims(&uiClaims); err != nil {
			t.Fatal(err)
		}
		checkClaim("userinfo", uiClaims["privacy"])

		// The API with the privacy scope.
		at := tok.AccessToken
		status, body, _ := e.apiCall(http.MethodGet, at, "", "")
		if status != http.StatusOK || body["product_improvement"] != true || body["required"] != true {
			t.Fatalf("GET: %d %v", status, body)
		}
		status, body, _ = e.apiCall(http.MethodPut, at, "application/json", `{"personalised_offers": true}`)
		if status != http.StatusOK || body["personalised_offers"] != true || body["product_improvement"] != true {
			t.Fatalf("PUT: %d %v", status, body)
		}
		if got := e.user(u.ID); !got.PrivacyPersonalisedOffers {
			t.Fatal("PUT not stored")
		}
		evs, _ := e.store.ListAuditEvents(ctx, storage.AuditFilter{UserID: u.ID})
		if evs[0].Event != "privacy.changed" || evs[0].ClientID != "app" {
			t.Errorf("newest audit event = %+v", evs[0])
		}
		// The page shows the change.
		if p = b.get(e.issuer + "/account/privacy"); !strings.Contains(p.body, `name="personalised_offers" type="checkbox" value="on" checked>`) {
			t.Error("page does not show the API's change")
		}

		// Bad input: JSON errors with the right status, never a 500, nothing changed.
		for _, c := range []struct {
			method, ctype, body string
			status              int
		}{
			{http.MethodPut, "application/json", `{"personalised_offers": "yes"}`, 400},
			{http.MethodPut, "application/json", `{"personalised_offers": null}`, 400},
			{http.MethodPut, "application/json", `{"required": false}`, 400},
			{http.MethodPut, "application/json", `{"Personalised_Offers": false}`, 400},
			{http.MethodPut, "application/json", `[true]`, 400},
			{http.MethodPut, "application/json", `null`, 400},
			{http.MethodPut, "application/json", `{"personalised_offers": false}{}`, 400},
			{http.MethodPut, "application/json", `{"personalised_offers": fal`, 400},
			{http.MethodPut, "application/json", ``, 400},
			{http.MethodPut, "application/json", `{"personalised_offers": false, "x": "` + strings.Repeat("a", 2000) + `"}`, 413},
			{http.MethodPut, "application/json", `{"personalised_offers": false, "x": "` + strings.Repeat("a", 100<<10) + `"}`, 413},
			{http.MethodPut, "text/plain", `{"personalised_offers": false}`, 415},
			{http.MethodPut, "", `{"personalised_offers": false}`, 415},
			{http.MethodDelete, "", ``, 405},
			{http.MethodPost, "application/json", `{"personalised_offers": false}`, 405},
		} {
			status, body, _ := e.apiCall(c.method, at, c.ctype, c.body)
			if status != c.status || body["error"] == nil {
				t.Errorf("%s %s %.40q: %d %v, want %d", c.method, c.ctype, c.body, status, body, c.status)
			}
		}
		if got := e.user(u.ID); !got.PrivacyPersonalisedOffers || !got.PrivacyProductImprovement {
			t.Fatalf("bad input changed the settings: %+v", got)
		}

		// Without the privacy scope: 403 insufficient_scope (RFC 6750).
		plain := e.newRP("plain")
		pb2 := e.newBrowser()
		authURL, verifier, state, nonce = plain.authorizeURL()
		p = pb2.drive(pb2.get(authURL), u.Email, signInOpts{})
		tok2, _, claims2 := plain.exchange(p.code(t, state), verifier, nonce)
		if claims2["privacy"] != nil {
			t.Errorf("privacy claim without the scope: %v", claims2["privacy"])
		}
		status, body, www := e.apiCall(http.MethodGet, tok2.AccessToken, "", "")
		if status != http.StatusForbidden || body["error"] != "insufficient_scope" ||
			!strings.Contains(www, `error="insufficient_scope"`) || !strings.Contains(www, `scope="privacy"`) {
			t.Errorf("without the scope: %d %v %q", status, body, www)
		}
		if status, _, _ = e.apiCall(http.MethodPut, tok2.AccessToken, "application/json", `{"personalised_offers": false}`); status != http.StatusForbidden {
			t.Errorf("PUT without the scope: %d", status)
		}

		// No token, a garbage token, a revoked token: 401.
		status, body, www = e.apiCall(http.MethodGet, "", "", "")
		if status != http.StatusUnauthorized || !strings.HasPrefix(www, "Bearer") || strings.Contains(www, "error=") {
			t.Errorf("no token: %d %v %q", status, body, www)
		}
		for _, bad := range []string{"garbage", strings.Repeat("x", 5000), at + "x"} {
			status, body, www = e.apiCall(http.MethodGet, bad, "", "")
			if status != http.StatusUnauthorized || body["error"] != "invalid_token" || !strings.Contains(www, `error="invalid_token"`) {
				t.Errorf("token %.20q: %d %v %q", bad, status, body, www)
			}
		}
		if status, body, _ = e.apiCall(http.MethodGet, at, "", ""); status != http.StatusOK {
			t.Fatalf("GET after bad input: %d %v", status, body)
		}
		req, _ := http.NewRequest(http.MethodGet, e.issuer+"/api/v1/me/nothing", nil)
		if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNotFound || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("unknown API path: %v %v", resp, err)
		} else {
			resp.Body.Close()
		}
		revoke(t, app, at)
		if status, _, _ = e.apiCall(http.MethodGet, at, "", ""); status != http.StatusUnauthorized {
			t.Errorf("revoked token: %d", status)
		}
	})
}
