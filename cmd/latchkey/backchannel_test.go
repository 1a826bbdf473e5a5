package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/latchkey/latchkey/cmd/latchkey/internal/admin"
	"github.com/latchkey/latchkey/op"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// logoutRP is a relying party's back-channel logout endpoint: it keeps
// every logout token posted to it and answers with status.
type logoutRP struct {
	srv    *httptest.Server
	status atomic.Int32
	mu     sync.Mutex
	tokens []string
}

func newLogoutRP(t *testing.T) *logoutRP {
	l := &logoutRP{}
	l.status.Store(http.StatusOK)
	l.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.ParseForm() != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		l.mu.Lock()
		l.tokens = append(l.tokens, r.PostForm.Get("logout_token"))
		l.mu.Unlock()
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(int(l.status.Load()))
	}))
	t.Cleanup(l.srv.Close)
	return l
}

func (l *logoutRP) received() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.tokens)
}

// verifyLogout checks a logout token as OIDC Back-Channel Logout 1.0 §2.6
// says a relying party must: signature and claims with go-oidc's
// VerifyLogout (iss, aud, exp, events, jti, no nonce, sub or sid), and
// the explicit type logout+jwt with go-jose.
func verifyLogout(t *testing.T, app *rp, raw string) *oidc.LogoutToken {
	t.Helper()
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.EdDSA})
	if err != nil {
		t.Fatalf("logout token: %v", err)
	}
	if typ := jws.Signatures[0].Protected.ExtraHeaders[jose.HeaderType]; typ != "logout+jwt" {
		t.Fatalf("logout token typ = %v", typ)
	}
	lt, err := app.provider.Verifier(&oidc.Config{ClientID: app.id}).VerifyLogout(context.Background(), raw)
	if err != nil {
		t.Fatalf("logout token does not verify: %v", err)
	}
	if claims := claimsOf(t, raw); claims["nonce"] != nil {
		t.Fatalf("logout token with a nonce: %v", claims)
	}
	return lt
}

// deliverAll runs the back-channel worker until nothing is due.
func (e *testEnv) deliverAll(t *testing.T) int {
	t.Helper()
	total := 0
	for {
		n, err := e.srv.op.BackchannelWorker().RunOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return total
		}
		total += n
	}
}

// TestBackchannelLogout (issue 12 item 10): signing out tells every
// product that got tokens in the session and registered a
// backchannel_logout_uri — from the background, not inside the user's
// request — with a logout token a relying party accepts; the delivery is
// in the audit log; products without the URI are not called.
func TestBackchannelLogout(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		u := e.createUser("bcl@example.com")
		l := newLogoutRP(t)
		web := e.newRP("web", func(c *storage.Client) {
			c.BackchannelLogoutURI, c.BackchannelLogoutSessionRequired = l.srv.URL+"/bcl", true
		})
		quiet := e.newRP("quiet")
		b := e.newBrowser()
		_, claims := b.signInRP(web, u.Email, signInOpts{})
		b.signInRP(quiet, u.Email, signInOpts{})
		sid, _ := claims["sid"].(string)

		// RP-initiated logout with the ID token.
		authURL, verifier, state, nonce := web.authorizeURL()
		tok, _, _ := web.exchange(b.get(authURL).code(t, state), verifier, nonce)
		hint, _ := tok.Extra("id_token").(string)
		p := b.get(e.issuer + "/end_session?" + url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {"http://rp.test/signed-out"}}.Encode())
		if p.location != "http://rp.test/signed-out" {
			t.Fatalf("sign-out: %s %d %q", p.url, p.status, p.location)
		}
		if len(l.received()) != 0 {
			t.Fatal("the logout token was sent inside the user's request")
		}
		if n := e.deliverAll(t); n != 1 {
			t.Fatalf("%d deliveries, want 1 (web only)", n)
		}
		got := l.received()
		if len(got) != 1 {
			t.Fatalf("web received %d logout tokens", len(got))
		}
		lt := verifyLogout(t, web, got[0])
		if lt.Subject != u.ID || lt.SessionID != sid || lt.Issuer != e.issuer || lt.TokenID == "" {
			t.Fatalf("logout token %+v, want sub %s sid %s", lt, u.ID, sid)
		}
		if !slices.Contains(e.auditEvents(u.ID), "backchannel.delivered") {
			t.Fatalf("audit: %v", e.auditEvents(u.ID))
		}
		// Exactly once.
		if n := e.deliverAll(t); n != 0 || len(l.received()) != 1 {
			t.Fatalf("delivered again: %d", n)
		}
		disc := call(t, "GET", e.issuer+"/.well-known/openid-configuration", nil, nil)
		if disc.json["backchannel_logout_supported"] != true || disc.json["backchannel_logout_session_supported"] != true {
			t.Fatalf("discovery: %s", disc.body)
		}
	})
}

// TestBackchannelLogoutRetries (item 10): a product that fails gets the
// logout again later, with back-off; each attempt is audited; the token
// keeps its jti so the product can tell a redelivery.
func TestBackchannelLogoutRetries(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		u := e.createUser("retry@example.com")
		l := newLogoutRP(t)
		web := e.newRP("web", func(c *storage.Client) { c.BackchannelLogoutURI = l.srv.URL + "/bcl" })
		b := e.newBrowser()
		b.signInRP(web, u.Email, signInOpts{})
		l.status.Store(http.StatusServiceUnavailable)
		p := b.get(e.issuer + "/logout")
		b.submit(p, "/logout", nil)
		if n := e.deliverAll(t); n != 1 {
			t.Fatalf("first attempt: %d", n)
		}
		if !slices.Contains(e.auditEvents(u.ID), "backchannel.retry") {
			t.Fatalf("audit: %v", e.auditEvents(u.ID))
		}
		// Not due yet; due after the back-off.
		e.clock.Advance(9 * time.Second)
		if n := e.deliverAll(t); n != 0 {
			t.Fatalf("retried before the back-off: %d", n)
		}
		l.status.Store(http.StatusOK)
		e.clock.Advance(time.Second)
		if n := e.deliverAll(t); n != 1 {
			t.Fatalf("second attempt: %d", n)
		}
		got := l.received()
		if len(got) != 2 {
			t.Fatalf("%d attempts reached the product", len(got))
		}
		first, second := verifyLogout(t, web, got[0]), verifyLogout(t, web, got[1])
		if first.TokenID != second.TokenID {
			t.Fatalf("jti %s then %s", first.TokenID, second.TokenID)
		}
		if !slices.Contains(e.auditEvents(u.ID), "backchannel.delivered") {
			t.Fatalf("audit: %v", e.auditEvents(u.ID))
		}
	})
}

// TestBackchannelLogoutWhereSessionsEnd (item 10): the Devices page's
// "remove", a password change ("sign out everywhere else" with it) and a
// user disabled each tell the products of the sessions they end — and
// only those.
func TestBackchannelLogoutWhereSessionsEnd(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		u := e.createUser("ends@example.com")
		l := newLogoutRP(t)
		web := e.newRP("web", func(c *storage.Client) { c.BackchannelLogoutURI = l.srv.URL + "/bcl" })
		sidOf := func(b *browser) string {
			_, claims := b.signInRP(web, u.Email, signInOpts{})
			s, _ := claims["sid"].(string)
			return s
		}
		removed, changed := e.newBrowser(), e.newBrowser()
		removedSID, changedSID := sidOf(removed), sidOf(changed)
		me := e.newBrowser()
		mySID := sidOf(me)

		// The Devices page removes one session.
		p := me.account("/account/devices", u.Email, signInOpts{})
		me.post(e.issuer+"/account/devices/remove", url.Values{"csrf": {p.csrf(t)}, "kind": {"session"}, "id": {removedSID}})
		e.deliverAll(t)
		sids := func() []string {
			var out []string
			for _, raw := range l.received() {
				out = append(out, verifyLogout(t, web, raw).SessionID)
			}
			return out
		}
		if got := sids(); !slices.Equal(got, []string{removedSID}) {
			t.Fatalf("after remove: %v, want [%s]", got, removedSID)
		}

		// A password change ends the other sessions, not this one.
		p = me.reconfirmed("/account/security/password", u.Email, signInOpts{})
		me.submit(p, "/account/security/password", url.Values{"password": {testPassword}, "new_password": {"a brand new password"}})
		e.deliverAll(t)
		if got := sids(); len(got) != 2 || got[1] != changedSID {
			t.Fatalf("after the password change: %v, want %s second", got, changedSID)
		}

		// Disabling the user ends the rest (latchkey user disable, the
		// admin API: the administrative service).
		svc, err := e.app.service(e.clock.Now, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.SetDisabled(context.Background(), admin.CommandLine, u.ID, true); err != nil {
			t.Fatal(err)
		}
		e.deliverAll(t)
		got := sids()
		if len(got) < 3 || !slices.Contains(got[2:], mySID) || slices.Contains(got[2:], removedSID) {
			t.Fatalf("after disabling: %v, want %s among the last", got, mySID)
		}
	})
}

// TestBackchannelExactlyOnceAcrossInstances (item 10): two instances'
// workers on one database deliver each queued logout exactly once.
func TestBackchannelExactlyOnceAcrossInstances(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		ctx := context.Background()
		l := newLogoutRP(t)
		e.newRP("web", func(c *storage.Client) { c.BackchannelLogoutURI = l.srv.URL + "/bcl" })
		now := e.clock.Now()
		var sessions []string
		for i := range 30 {
			s := fmt.Sprint("s", i)
			sessions = append(sessions, s)
			if err := e.store.RecordSessionClient(ctx, s, "web", "u1", now); err != nil {
				t.Fatal(err)
			}
		}
		if q, err := e.store.EnqueueBackchannelLogouts(ctx, "u1", sessions, "user_disabled", now); err != nil || len(q) != 30 {
			t.Fatalf("queued %d: %v", len(q), err)
		}
		second, err := op.New(ctx, e.app.opOptions(e.clock.Now), e.store, e.kr)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for _, w := range []*op.BackchannelWorker{e.srv.op.BackchannelWorker(), second.BackchannelWorker(), e.srv.op.BackchannelWorker()} {
			w.Batch = 4
			wg.Go(func() {
				for {
					n, err := w.RunOnce(ctx)
					if err != nil {
						t.Error(err)
						return
					}
					if n == 0 {
						return
					}
				}
			})
		}
		wg.Wait()
		seen := map[string]int{}
		for _, raw := range l.received() {
			seen[claimsOf(t, raw)["sid"].(string)]++
		}
		if len(seen) != 30 {
			t.Fatalf("%d sessions' logouts delivered, want 30", len(seen))
		}
		for s, n := range seen {
			if n != 1 {
				t.Fatalf("session %s: %d deliveries", s, n)
			}
		}
	})
}
