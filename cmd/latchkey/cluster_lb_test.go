package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// TestClusterBehindLoadBalancer (#11.6): three instances of the wired
// server on one PostgreSQL behind a round-robin reverse proxy, their clocks
// a millisecond apart, used as a browser (cookie jar) and a relying party
// (go-oidc, JWKS fetched through the proxy) use one issuer:
//
//   - a sign-in with password and emailed code whose steps land on
//     different instances;
//   - tokens refreshed through the proxy, each on another instance, every
//     ID token verified by go-oidc — before, during and after a key
//     rotation made from the command line in the middle;
//   - wrong passwords spread over the instances share the account's limit:
//     the free attempts all answer "wrong password" (none is refused
//     because another instance's clock is a moment ahead), the next waits
//     on every instance, and after the wait the right password goes on;
//   - a client deleted on one instance is refused by every instance.
func TestClusterBehindLoadBalancer(t *testing.T) {
	t.Parallel()
	c := newClusterSkewed(t, 3, time.Millisecond)
	e := c.env()
	ctx := t.Context()
	app := e.newRP("lb")
	user := e.createUser("lb@example.com")

	// A sign-in through the proxy.
	b := e.newBrowser()
	authURL, verifier, state, nonce := app.authorizeURL()
	from := c.mark()
	p := b.signIn(authURL, user.Email, signInOpts{})
	steps := c.since(from, "/login/")
	if len(nodesOf(steps)) < 2 {
		t.Fatalf("the sign-in's steps all landed on one instance: %v", steps)
	}
	for _, step := range []string{"/login/identify", "/login/password", "/login/code"} {
		if !slices.ContainsFunc(steps, func(h hit) bool { return h.path == step }) {
			t.Fatalf("no %s step went through the proxy: %v", step, steps)
		}
	}
	tok, _, _ := app.exchange(p.code(t, state), verifier, nonce)

	// The relying party's view: go-oidc with the JWKS of the issuer (the
	// proxy), fetched again when a token names an unknown key.
	rpVerifier := app.provider.Verifier(&oidc.Config{ClientID: app.id})
	var idTokens []string
	verify := func(phase string, tok *oauth2.Token) string {
		t.Helper()
		raw, _ := tok.Extra("id_token").(string)
		if _, err := rpVerifier.Verify(ctx, raw); err != nil {
			t.Fatalf("%s: the ID token does not verify against the JWKS through the proxy: %v", phase, err)
		}
		jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
		if err != nil {
			t.Fatal(err)
		}
		idTokens = append(idTokens, raw)
		return jws.Signatures[0].Header.KeyID
	}
	rt := tok.RefreshToken
	refreshes := func(phase string, n int) map[string]bool {
		t.Helper()
		kids := map[string]bool{}
		from := c.mark()
		for range n {
			tok := refresh(t, app, rt)
			if tok.RefreshToken == "" || tok.RefreshToken == rt {
				t.Fatalf("%s: the refresh did not rotate the token", phase)
			}
			rt = tok.RefreshToken
			kids[verify(phase, tok)] = true
		}
		if on := nodesOf(c.since(from, "/oauth/token")); len(on) < 2 {
			t.Fatalf("%s: %d refreshes all landed on instance %v", phase, n, on)
		}
		return kids
	}
	gen := c.generation(t)
	if kids := refreshes("before the rotation", 3); !kids[gen["ES256"]] || len(kids) != 1 {
		t.Fatalf("before the rotation: signed with %v, want %s", kids, gen["ES256"])
	}

	// A key rotation from the command line in the middle.
	cli := c.cliOP(t)
	if err := cli.RotateKeys(ctx); err != nil {
		t.Fatal(err)
	}
	next := c.generation(t)
	for i, nd := range c.nodes {
		eventually(t, fmt.Sprintf("instance %d publishes the new key", i), func() bool { return nd.publishes(t, next["ES256"]) })
	}
	if kids := refreshes("during the publish lead", 3); !kids[gen["ES256"]] || len(kids) != 1 {
		t.Fatalf("during the publish lead: signed with %v, want the old key %s", kids, gen["ES256"])
	}
	c.clock.Advance(cli.PublishLead())
	if kids := refreshes("after the publish lead", 3); !kids[next["ES256"]] || len(kids) != 1 {
		t.Fatalf("after the publish lead: signed with %v, want the new key %s", kids, next["ES256"])
	}
	for i, raw := range idTokens {
		if _, err := rpVerifier.Verify(ctx, raw); err != nil {
			t.Fatalf("ID token %d of %d no longer verifies after the rotation: %v", i+1, len(idTokens), err)
		}
	}

	// Wrong passwords spread over the instances, each on an instance whose
	// clock is a millisecond behind the previous one's.
	victim := e.createUser("victim@example.com")
	b2 := e.newBrowser()
	authURL2, _, _, _ := app.authorizeURL()
	p = b2.get(authURL2)
	if p.at("/login/identify") {
		p = b2.submit(p, "/login/identify", url.Values{"email": {victim.Email}})
	}
	if !p.at("/login/password") {
		t.Fatalf("expected the password page, got %s (%d)", p.url, p.status)
	}
	wrong := url.Values{"password": {"not the password"}}
	for i := range 5 { // the account's free attempts (README: 5, then 1 s, 2 s … up to a minute)
		c.pin(2 - i%3)
		p = b2.submit(p, "/login/password", wrong)
		if p.status != http.StatusUnauthorized || strings.Contains(p.body, "Too many attempts") {
			t.Fatalf("wrong password %d (instance %d): %d, want 401 and no wait:\n%s", i+1, 2-i%3, p.status, p.body)
		}
	}
	for i := range 3 {
		c.pin(i)
		p = b2.submit(p, "/login/password", wrong)
		if p.status != http.StatusTooManyRequests || !strings.Contains(p.body, "Too many attempts") {
			t.Fatalf("attempt after the free ones on instance %d: %d, want 429 Too many attempts:\n%s", i, p.status, p.body)
		}
	}
	c.pin(1)
	if p = b2.submit(p, "/login/password", url.Values{"password": {testPassword}}); p.status != http.StatusTooManyRequests {
		t.Fatalf("the right password inside the wait: %d, want 429", p.status)
	}
	c.clock.Advance(time.Second + 10*time.Millisecond)
	if p = b2.submit(p, "/login/password", url.Values{"password": {testPassword}}); !p.at("/login/code") {
		t.Fatalf("the right password after the wait: %s (%d), want the code page:\n%s", p.url, p.status, p.body)
	}

	// A client deleted on one instance is refused by every instance.
	for i, nd := range c.nodes { // each instance has it cached
		body, st := postForm(t, nd.http.URL+"/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, app.id, app.secret)
		var out struct {
			RefreshToken string `json:"refresh_token"`
		}
		if st != http.StatusOK || json.Unmarshal(body, &out) != nil || out.RefreshToken == "" {
			t.Fatalf("refresh on instance %d before the deletion: %d %s", i, st, body)
		}
		rt = out.RefreshToken
	}
	if err := c.nodes[1].store.DeleteClient(ctx, app.id); err != nil {
		t.Fatal(err)
	}
	for i, nd := range c.nodes {
		eventually(t, fmt.Sprintf("instance %d refuses the deleted client", i), func() bool {
			_, st := postForm(t, nd.http.URL+"/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, app.id, app.secret)
			return st == http.StatusUnauthorized
		})
	}
	if got := refreshErr(t, app, rt); got != "invalid_client" {
		t.Fatalf("refresh of the deleted client through the proxy: %q, want invalid_client", got)
	}
}

// env is the cluster as the harness's browsers and relying parties see
// one server: its issuer is the proxy. Mail is delivered by the outbox
// worker of the instance whose clock is furthest ahead (the outbox is
// shared, and a mail queued by any instance is due on that one's clock).
func (c *cluster) env() *testEnv {
	nd := c.nodes[len(c.nodes)-1]
	return &testEnv{t: c.t, app: nd.app, srv: nd.srv, http: c.lb, issuer: c.issuer, clock: c.clock, sink: c.sink, store: nd.store, kr: c.kr}
}

// mark is where the proxy's record of requests stands.
func (c *cluster) mark() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.served)
}

// since returns the requests after mark whose path starts with prefix.
func (c *cluster) since(mark int, prefix string) []hit {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []hit
	for _, h := range c.served[mark:] {
		if strings.HasPrefix(h.path, prefix) {
			out = append(out, h)
		}
	}
	return out
}

// pin sends the proxy's next request to instance i.
func (c *cluster) pin(i int) {
	c.mu.Lock()
	n := len(c.nodes)
	c.mu.Unlock()
	c.next.Store(uint64(i - 1 + n))
}

// nodesOf is the set of instances that served hs.
func nodesOf(hs []hit) map[int]bool {
	out := map[int]bool{}
	for _, h := range hs {
		out[h.node] = true
	}
	return out
}

// publishes reports whether the instance's JWKS has kid.
func (nd *node) publishes(t *testing.T, kid string) bool {
	t.Helper()
	var ks jose.JSONWebKeySet
	if err := json.Unmarshal(nd.get(t, "/keys"), &ks); err != nil {
		t.Fatal(err)
	}
	return len(ks.Key(kid)) > 0
}
