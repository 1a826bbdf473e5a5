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
	"time"

	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/login/flow"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// TestSignInEndToEnd is the foundation's whole promise, on both databases:
// a product signs a user in with code + PKCE through the identifier,
// password and email-code pages, verifies the ID token with the published
// keys, calls userinfo, rotates its refresh token (reuse revokes the
// family), revokes and introspects, and signs out at end_session.
func TestSignInEndToEnd(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		u := e.createUser("ada@example.com")
		app := e.newRP("app")
		b := e.newBrowser()

		authURL, verifier, state, nonce := app.authorizeURL()
		p := b.signIn(authURL, u.Email, signInOpts{})
		tok, idt, claims := app.exchange(p.code(t, state), verifier, nonce)

		if idt.Subject != u.ID || idt.Issuer != e.issuer || !slices.Contains(idt.Audience, "app") {
			t.Fatalf("id token sub/iss/aud = %s %s %v", idt.Subject, idt.Issuer, idt.Audience)
		}
		if claims["acr"] != flow.ACRMFAFresh {
			t.Errorf("acr = %v, want %s", claims["acr"], flow.ACRMFAFresh)
		}
		if amr := toStrings(claims["amr"]); !slices.Equal(amr, []string{"pwd", "otp", "mfa"}) {
			t.Errorf("amr = %v, want [pwd otp mfa]", amr)
		}
		if at, ok := claims["auth_time"].(float64); !ok || int64(at) != e.clock.Now().Unix() {
			t.Errorf("auth_time = %v, want %d", claims["auth_time"], e.clock.Now().Unix())
		}
		if claims["email"] != u.Email || claims["sid"] == nil {
			t.Errorf("email/sid = %v %v", claims["email"], claims["sid"])
		}

		// userinfo with the access token.
		ui, err := app.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(tok))
		if err != nil || ui.Subject != u.ID || ui.Email != u.Email {
			t.Fatalf("userinfo = %+v, %v", ui, err)
		}

		// Refresh: rotation, then the old token is refused and replaying it
		// revokes the new one too.
		rt1 := tok.RefreshToken
		if rt1 == "" {
			t.Fatal("no refresh token for offline_access")
		}
		tok2 := refresh(t, app, rt1)
		if tok2.RefreshToken == "" || tok2.RefreshToken == rt1 {
			t.Fatal("refresh token was not rotated")
		}
		// The refreshed ID token keeps the sign-in's acr and sid.
		raw2, _ := tok2.Extra("id_token").(string)
		if _, c2 := app.idClaims(raw2); c2["acr"] != flow.ACRMFAFresh || c2["sid"] != claims["sid"] {
			t.Errorf("refreshed id token acr/sid = %v %v", c2["acr"], c2["sid"])
		}
		// Past the reuse grace (tokens.refresh_reuse_grace) the old token
		// is reuse.
		e.clock.Advance(e.app.cfg.Tokens.RefreshReuseGrace.Std() + time.Second)
		if errCode := refreshErr(t, app, rt1); errCode != "invalid_grant" {
			t.Fatalf("old refresh token: %q, want invalid_grant", errCode)
		}
		if errCode := refreshErr(t, app, tok2.RefreshToken); errCode != "invalid_grant" {
			t.Fatalf("after reuse the family must be revoked; new token: %q", errCode)
		}

		// A new sign-in (same browser: the session stands) for introspection
		// and revocation.
		authURL, verifier, state, nonce = app.authorizeURL()
		p = b.get(authURL)
		tok3, _, claims3 := app.exchange(p.code(t, state), verifier, nonce)
		if claims3["acr"] != flow.ACRMFA {
			t.Errorf("session reuse acr = %v, want %s", claims3["acr"], flow.ACRMFA)
		}
		if got := introspect(t, app, tok3.AccessToken); got["active"] != true || got["sub"] != u.ID {
			t.Fatalf("introspect = %v", got)
		}
		revoke(t, app, tok3.AccessToken)
		if got := introspect(t, app, tok3.AccessToken); got["active"] != false {
			t.Fatalf("introspect after revoke = %v", got)
		}
		if _, err := app.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(tok3)); err == nil {
			t.Fatal("userinfo accepted a revoked token")
		}
		revoke(t, app, tok3.RefreshToken)
		if errCode := refreshErr(t, app, tok3.RefreshToken); errCode != "invalid_grant" {
			t.Fatalf("revoked refresh token: %q", errCode)
		}

		// Sign out through end_session with the ID token as hint.
		rawID, _ := tok3.Extra("id_token").(string)
		p = b.get(e.issuer + "/end_session?" + url.Values{"id_token_hint": {rawID},
			"post_logout_redirect_uri": {"http://rp.test/signed-out"}, "state": {"bye"}}.Encode())
		if p.location != "http://rp.test/signed-out?state=bye" {
			t.Fatalf("end_session ended at %q (%s)", p.location, p.url)
		}
		// The session is gone: prompt=none now fails with login_required.
		authURL, _, _, _ = app.authorizeURL(oauth2.SetAuthURLParam("prompt", "none"))
		if got := b.get(authURL).rpError(); got != "login_required" {
			t.Fatalf("prompt=none after sign-out: %q", got)
		}
	})
}

// --- helpers ---

func toStrings(v any) []string {
	var out []string
	if xs, ok := v.([]any); ok {
		for _, x := range xs {
			s, _ := x.(string)
			out = append(out, s)
		}
	}
	return out
}

func refresh(t *testing.T, r *rp, rt string) *oauth2.Token {
	t.Helper()
	tok, err := r.oauth.TokenSource(context.Background(), &oauth2.Token{RefreshToken: rt, Expiry: time.Now().Add(-time.Hour)}).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	return tok
}

// refreshErr posts a refresh grant and returns the OAuth error code ("" on
// success).
func refreshErr(t *testing.T, r *rp, rt string) string {
	t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	body, status := r.tokenPost(t, form)
	if status == http.StatusOK {
		return ""
	}
	var e struct{ Error string }
	_ = json.Unmarshal(body, &e)
	return e.Error
}

// postForm posts form to u, with HTTP Basic client credentials when id is
// set, and returns the body and the status.
func postForm(t *testing.T, u string, form url.Values, id, secret string) ([]byte, int) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		req.SetBasicAuth(id, secret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return body, resp.StatusCode
}

// tokenPost posts to the token endpoint with the client's credentials (a
// public client names itself in the form).
func (r *rp) tokenPost(t *testing.T, form url.Values) ([]byte, int) {
	t.Helper()
	if r.secret == "" {
		form.Set("client_id", r.id)
		return r.tokenPostRaw(t, form)
	}
	return postForm(t, r.provider.Endpoint().TokenURL, form, r.id, r.secret)
}

// tokenPostRaw posts a form to the token endpoint without credentials.
func (r *rp) tokenPostRaw(t *testing.T, form url.Values) ([]byte, int) {
	t.Helper()
	return postForm(t, r.provider.Endpoint().TokenURL, form, "", "")
}

func introspect(t *testing.T, r *rp, token string) map[string]any {
	t.Helper()
	body, status := postForm(t, r.e.issuer+"/oauth/introspect", url.Values{"token": {token}}, r.id, r.secret)
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("introspect: status %d: %v", status, err)
	}
	return out
}

func revoke(t *testing.T, r *rp, token string) {
	t.Helper()
	if _, status := postForm(t, r.e.issuer+"/revoke", url.Values{"token": {token}}, r.id, r.secret); status != http.StatusOK {
		t.Fatalf("revoke: status %d", status)
	}
}
