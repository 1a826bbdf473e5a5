package main

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/config"
	"github.com/latchkey/latchkey/login/flow"
	"github.com/latchkey/latchkey/op"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// TestRefreshGrant: the grant's own handler — scope narrowing within what
// was granted, public clients by client_id alone, tokens bound to their
// client, refreshed ID tokens verifiable with acr/amr/sid/at_hash, JWT
// access tokens usable at userinfo.
func TestRefreshGrant(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		u := e.createUser("rotate@example.com")
		app := e.newRP("app", func(c *storage.Client) { c.AccessTokenFormat = storage.TokenFormatJWT })
		other := e.newRP("other")
		b := e.newBrowser()
		authURL, verifier, state, nonce := app.authorizeURL()
		tok, _, first := app.exchange(b.signIn(authURL, u.Email, signInOpts{}).code(t, state), verifier, nonce)

		post := func(r *rp, form url.Values) (int, map[string]any) {
			body, st := r.tokenPost(t, form)
			var out map[string]any
			_ = json.Unmarshal(body, &out)
			return st, out
		}
		// Narrow to openid only: no email claim, scope says so.
		st, out := post(app, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "scope": {"openid offline_access"}})
		if st != 200 || out["scope"] != "openid offline_access" {
			t.Fatalf("narrowing: %d %v", st, out)
		}
		raw, _ := out["id_token"].(string)
		idt, c := app.idClaims(raw)
		if c["email"] != nil || c["acr"] != flow.ACRMFAFresh || c["sid"] != first["sid"] || c["auth_time"] != first["auth_time"] || c["nonce"] != nil {
			t.Fatalf("refreshed claims %v (first %v)", c, first)
		}
		if err := idt.VerifyAccessToken(out["access_token"].(string)); err != nil {
			t.Fatalf("at_hash: %v", err)
		}
		// The JWT access token works at userinfo.
		ui, err := app.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(&oauth2.Token{AccessToken: out["access_token"].(string), TokenType: "Bearer"}))
		if err != nil || ui.Subject != u.ID {
			t.Fatalf("userinfo with a refreshed JWT: %v", err)
		}
		// Widen back to what was granted: allowed; beyond it: invalid_scope.
		rt := out["refresh_token"].(string)
		st, out = post(app, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "scope": {"openid email profile offline_access"}})
		if st != 200 {
			t.Fatalf("widening back: %d %v", st, out)
		}
		rt, at := out["refresh_token"].(string), out["access_token"].(string)
		if st, out = post(app, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "scope": {"openid admin"}}); st != 400 || out["error"] != "invalid_scope" {
			t.Fatalf("beyond the grant: %d %v", st, out)
		}
		// Bound to its client: another client gets invalid_grant (and the
		// token survives for its owner, as after the attempts below).
		if st, out = post(other, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}); st != 400 || out["error"] != "invalid_grant" {
			t.Fatalf("another client's token: %d %v", st, out)
		}
		// Nor does it work for its own client without the client's secret:
		// a wrong one or none is invalid_client.
		wrong := *app
		wrong.secret = "not-the-secret-not-the-secret-not-the-secret"
		if st, out = post(&wrong, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}); st != 401 || out["error"] != "invalid_client" {
			t.Fatalf("wrong secret: %d %v", st, out)
		}
		if body, st := app.tokenPostRaw(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"app"}}); st != 401 || !strings.Contains(string(body), "invalid_client") {
			t.Fatalf("no secret: %d %s", st, body)
		}
		// Another client can neither read the tokens at introspection nor
		// revoke them.
		if got := introspect(t, other, at); got["active"] != false || got["sub"] != nil {
			t.Fatalf("another client introspected the access token: %v", got)
		}
		if got := introspect(t, app, at); got["active"] != true {
			t.Fatalf("the owner's introspection: %v", got)
		}
		if body, st := postForm(t, e.issuer+"/revoke", url.Values{"token": {rt}}, other.id, other.secret); st >= 500 {
			t.Fatalf("another client's revocation: %d %s", st, body)
		}
		// Values of this live family the OP never issued (its id is the
		// sign-in's, seen in the sign-in URLs): revoking one ends nothing,
		// and introspection finds none, even from the owning client.
		fam := op.RefreshFamilyOf(rt)
		for _, forged := range []string{fam + ".x", fam + "." + keyring.NewToken()} {
			if body, st := postForm(t, e.issuer+"/revoke", url.Values{"token": {forged}}, app.id, app.secret); st != 200 {
				t.Fatalf("revoking a forged value: %d %s", st, body)
			}
			if got := introspect(t, app, forged); got["active"] != false {
				t.Fatalf("introspection of a forged value: %v", got)
			}
		}
		if st, _ = post(app, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}); st != 200 {
			t.Fatalf("the owner after the refused attempts: %d", st)
		}
		if st, out = post(app, url.Values{"grant_type": {"refresh_token"}}); st != 400 || out["error"] != "invalid_request" {
			t.Fatalf("missing token: %d %v", st, out)
		}

		// A public client refreshes with its client_id alone, not with a secret.
		pub := e.newRP("desk", func(c *storage.Client) {
			c.Public, c.AppType, c.RedirectURIs = true, storage.AppTypeNative, []string{"http://127.0.0.1/callback"}
		})
		pub.oauth.RedirectURL, pub.redirect = "http://127.0.0.1:50000/callback", "http://127.0.0.1:50000/callback"
		authURL, verifier, state, nonce = pub.authorizeURL()
		ptok, _, _ := pub.exchange(b.get(authURL).code(t, state), verifier, nonce)
		if st, out = post(pub, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {ptok.RefreshToken}}); st != 200 {
			t.Fatalf("public refresh: %d %v", st, out)
		}
		withSecret := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {out["refresh_token"].(string)}, "client_id": {"desk"}, "client_secret": {"nope"}}
		if body, st := app.tokenPostRaw(t, withSecret); st != 401 {
			t.Fatalf("public client with a secret: %d %s", st, body)
		}

		// A client without the refresh grant.
		e.newRP("nogrant", func(c *storage.Client) { c.GrantTypes = []string{"authorization_code"} })
		ng := *app
		ng.id, ng.secret = "nogrant", "s3cret-nogrant-0123456789abcdefghijklmnop"
		if st, out = post(&ng, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}); st != 400 || out["error"] != "unauthorized_client" {
			t.Fatalf("no refresh grant: %d %v", st, out)
		}
	})
}

// TestRefreshPolicy: a refresh fails once the second factor behind it is
// older than reverify, and once the token was unused longer than
// refresh_idle.
func TestRefreshPolicy(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d, func(c *config.Config) { c.Policy.RefreshIdle = config.Duration(7 * day) })
		u := e.createUser("refresh@example.com")
		app := e.newRP("app")
		b := e.newBrowser()
		authURL, verifier, state, nonce := app.authorizeURL()
		tok, _, _ := app.exchange(b.signIn(authURL, u.Email, signInOpts{}).code(t, state), verifier, nonce)

		// Used every 6 days it lives on, until the factor is 30 d old.
		rt := tok.RefreshToken
		for i := 0; i < 5; i++ {
			e.clock.Advance(6 * day)
			rt = refresh(t, app, rt).RefreshToken
		}
		e.clock.Advance(6*day + time.Second) // 36 d after the code
		if got := refreshErr(t, app, rt); got != "invalid_grant" {
			t.Fatalf("after reverify: %q", got)
		}

		// Idle: unused 7 d + 1 s.
		authURL, verifier, state, nonce = app.authorizeURL(oauth2.SetAuthURLParam("prompt", "login"))
		tok, _, _ = app.exchange(b.signIn(authURL, u.Email, signInOpts{}).code(t, state), verifier, nonce)
		e.clock.Advance(7 * day)
		rt = refresh(t, app, tok.RefreshToken).RefreshToken
		e.clock.Advance(7*day + time.Second)
		if got := refreshErr(t, app, rt); got != "invalid_grant" {
			t.Fatalf("after refresh_idle: %q", got)
		}
	})
}

// TestRefreshReuseGrace (#11.2): a refresh whose answer was lost (the
// server committed the rotation, the client never saw it: a crash, a
// timeout) is retried with the same token within tokens.refresh_reuse_grace
// and succeeds; two refreshes at once with one token both get usable
// tokens; after the grace a replay is reuse and revokes the whole grant —
// also for a token the sweep has already compacted away, and for a token
// whose successor has been used, even within the grace.
func TestRefreshReuseGrace(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		grace := e.app.cfg.Tokens.RefreshReuseGrace.Std()
		u := e.createUser("grace@example.com")
		app := e.newRP("app")
		b := e.newBrowser()
		authURL, verifier, state, nonce := app.authorizeURL()
		tok, _, _ := app.exchange(b.signIn(authURL, u.Email, signInOpts{}).code(t, state), verifier, nonce)
		form := func(rt string) url.Values {
			return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
		}
		rtOf := func(body []byte) string {
			var out struct {
				RefreshToken string `json:"refresh_token"`
			}
			if err := json.Unmarshal(body, &out); err != nil || out.RefreshToken == "" {
				t.Fatalf("no refresh token in %s", body)
			}
			return out.RefreshToken
		}

		// The rotation commits; the answer is lost on the way.
		rt0 := tok.RefreshToken
		if _, st := app.tokenPost(t, form(rt0)); st != 200 {
			t.Fatalf("first refresh: %d", st)
		}
		// The client retries with what it has, within the grace.
		e.clock.Advance(grace - time.Second)
		body, st := app.tokenPost(t, form(rt0))
		if st != 200 {
			t.Fatalf("retry within the grace: %d %s", st, body)
		}
		rt1 := rtOf(body)

		// Two threads refresh with one token at once: both succeed, and
		// each one's token works afterwards.
		const n = 6
		bodies := make([][]byte, n)
		codes := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { bodies[i], codes[i] = app.tokenPost(t, form(rt1)) })
		}
		wg.Wait()
		var next []string
		for i := range n {
			if codes[i] != 200 {
				t.Fatalf("concurrent refresh %d: %d %s", i, codes[i], bodies[i])
			}
			next = append(next, rtOf(bodies[i]))
		}
		e.clock.Advance(time.Second)
		var heads []string
		for i, rt := range next {
			body, st := app.tokenPost(t, form(rt))
			if st != 200 {
				t.Fatalf("the token of concurrent refresh %d: %d %s", i, st, body)
			}
			heads = append(heads, rtOf(body))
		}

		// After the grace a replay is reuse: the whole grant goes.
		e.clock.Advance(grace + time.Second)
		if got := refreshErr(t, app, rt1); got != "invalid_grant" {
			t.Fatalf("replay after the grace: %q, want invalid_grant", got)
		}
		for i, rt := range heads {
			if got := refreshErr(t, app, rt); got != "invalid_grant" {
				t.Fatalf("head %d after reuse: %q, want invalid_grant (family revoked)", i, got)
			}
		}

		// A token the sweep compacted away is still recognised as reuse of
		// its (live) grant.
		authURL, verifier, state, nonce = app.authorizeURL(oauth2.SetAuthURLParam("prompt", "login"))
		tok, _, _ = app.exchange(b.signIn(authURL, u.Email, signInOpts{}).code(t, state), verifier, nonce)
		old := tok.RefreshToken
		head := refresh(t, app, old).RefreshToken
		e.clock.Advance(time.Hour)
		if err := e.store.Sweep(context.Background(), e.clock.Now(), storage.SweepPolicy{RefreshUsedKeep: time.Minute}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.GetRefreshTokenByHash(context.Background(), op.RefreshFamilyOf(old), e.kr.MACString(keyring.PurposeRefresh, old)); err == nil {
			t.Fatal("the used token was not compacted")
		}
		if got := refreshErr(t, app, old); got != "invalid_grant" {
			t.Fatalf("compacted token: %q", got)
		}
		if got := refreshErr(t, app, head); got != "invalid_grant" {
			t.Fatalf("the head after the compacted token's reuse: %q, want invalid_grant", got)
		}

		// The grace is for a retry of the latest rotation: once the
		// successor has been used (the client had the answer), the token
		// before it is reuse even within the grace, and ends the grant.
		authURL, verifier, state, nonce = app.authorizeURL(oauth2.SetAuthURLParam("prompt", "login"))
		tok, _, _ = app.exchange(b.signIn(authURL, u.Email, signInOpts{}).code(t, state), verifier, nonce)
		first := tok.RefreshToken
		second := refresh(t, app, first).RefreshToken
		e.clock.Advance(time.Second)
		third := refresh(t, app, second).RefreshToken
		e.clock.Advance(time.Second)
		if got := refreshErr(t, app, first); got != "invalid_grant" {
			t.Fatalf("a token whose successor was used, within the grace: %q, want invalid_grant", got)
		}
		if got := refreshErr(t, app, third); got != "invalid_grant" {
			t.Fatalf("the head after that reuse: %q, want invalid_grant (family revoked)", got)
		}
	})
}
