package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/latchkey/latchkey/op"
	"github.com/latchkey/latchkey/storage"
)

// TestClusterKeyRotation (#11.1): three instances on one PostgreSQL; before,
// during and after a rotation — planned or emergency, and with an instance
// (re)started right after it — every token any instance signs verifies
// against the JWKS fetched from every instance.
func TestClusterKeyRotation(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3)
	secret := "s3cret-svc-0123456789abcdefghijklmnop"
	now := c.clock.Now()
	if err := c.nodes[0].store.CreateClient(t.Context(), storage.Client{ID: "svc", Name: "svc", AppType: storage.AppTypeWeb,
		SecretHash: op.HashClientSecret(c.kr, secret), GrantTypes: []string{op.GrantClientCredentials},
		AccessTokenFormat: storage.TokenFormatJWT, Source: "cli", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	mint := func(nd *node) string {
		t.Helper()
		body, status := postForm(t, nd.http.URL+"/oauth/token", url.Values{"grant_type": {"client_credentials"}}, "svc", secret)
		var out struct {
			AccessToken string `json:"access_token"`
		}
		if status != 200 || json.Unmarshal(body, &out) != nil || out.AccessToken == "" {
			t.Fatalf("token from %s: %d %s", nd.http.URL, status, body)
		}
		return out.AccessToken
	}
	jwks := func(nd *node) *jose.JSONWebKeySet {
		t.Helper()
		var ks jose.JSONWebKeySet
		if err := json.Unmarshal(nd.get(t, "/keys"), &ks); err != nil {
			t.Fatal(err)
		}
		return &ks
	}
	kidOf := func(raw string) string {
		t.Helper()
		jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.EdDSA})
		if err != nil {
			t.Fatal(err)
		}
		return jws.Signatures[0].Header.KeyID
	}
	// everyTokenVerifiesEverywhere is the relying party's view: a token
	// from any instance, checked with JWKS from any instance.
	everyTokenVerifiesEverywhere := func(phase string) map[string]bool {
		t.Helper()
		signing := map[string]bool{}
		for i, from := range c.nodes {
			raw := mint(from)
			signing[kidOf(raw)] = true
			for j, at := range c.nodes {
				jws, _ := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
				keys := jwks(at).Key(kidOf(raw))
				if len(keys) == 0 {
					t.Fatalf("%s: token of instance %d (kid %s) has no key in instance %d's JWKS", phase, i, kidOf(raw), j)
				}
				if _, err := jws.Verify(keys[0]); err != nil {
					t.Fatalf("%s: token of instance %d does not verify with instance %d's JWKS: %v", phase, i, j, err)
				}
			}
		}
		return signing
	}
	published := func(nd *node, kid string) bool { return len(jwks(nd).Key(kid)) > 0 }

	before := everyTokenVerifiesEverywhere("before")
	if len(before) != 1 {
		t.Fatalf("instances sign with different keys: %v", before)
	}

	// A planned rotation from the command line (another process): the new
	// key is published everywhere at once, and nobody signs with it yet.
	cli := c.cliOP(t)
	if err := cli.RotateKeys(t.Context()); err != nil {
		t.Fatal(err)
	}
	newest := c.newestKey(t)
	for i, nd := range c.nodes {
		eventually(t, fmt.Sprintf("instance %d publishes the new key", i), func() bool { return published(nd, newest) })
	}
	restarted := c.addNode() // an instance started right after the rotation
	if !published(restarted, newest) {
		t.Fatal("a restarted instance does not publish the new key")
	}
	if during := everyTokenVerifiesEverywhere("during the publish lead"); during[newest] {
		t.Fatal("an instance signs with the new key before the publish lead has passed")
	}

	// After the lead every instance signs with it; the old key stays published.
	c.clock.Advance(cli.PublishLead())
	after := everyTokenVerifiesEverywhere("after the publish lead")
	if len(after) != 1 || !after[newest] {
		t.Fatalf("after the lead instances sign with %v, want only %s", after, newest)
	}
	for old := range before {
		for i, nd := range c.nodes {
			if !published(nd, old) {
				t.Fatalf("instance %d dropped the old key while its tokens may still be live", i)
			}
		}
	}

	// An emergency rotation (compromised key): the new key signs at once
	// and the old keys leave every instance's JWKS.
	if err := cli.RotateKeysNow(t.Context()); err != nil {
		t.Fatal(err)
	}
	emergency := c.newestKey(t)
	for i, nd := range c.nodes {
		eventually(t, fmt.Sprintf("instance %d takes the emergency key", i), func() bool {
			ks := jwks(nd)
			return len(ks.Keys) == 1 && ks.Keys[0].KeyID == emergency
		})
	}
	if now := everyTokenVerifiesEverywhere("after the emergency rotation"); len(now) != 1 || !now[emergency] {
		t.Fatalf("after the emergency rotation instances sign with %v", now)
	}
}

// cliOP is the OP the command line builds (latchkey keys rotate): its own
// store, no server.
func (c *cluster) cliOP(t *testing.T) *op.OP {
	t.Helper()
	store, err := storage.Open(t.Context(), c.url, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	a := &app{cfg: c.cfg, log: c.nodes[0].app.log, store: store, kr: c.kr}
	o, err := op.New(t.Context(), a.opOptions(c.clock.Now), store, c.kr)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func (c *cluster) newestKey(t *testing.T) string {
	t.Helper()
	keys, err := c.nodes[0].store.ListSigningKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var newest storage.SigningKey
	for _, k := range keys {
		if newest.ID == "" || k.CreatedAt.After(newest.CreatedAt) || (k.CreatedAt.Equal(newest.CreatedAt) && k.NotBefore.After(newest.NotBefore)) {
			newest = k
		}
	}
	return newest.ID
}

// TestClusterClientDeleted (#11.5): a client deleted on one instance (or
// with the command line) is refused by every instance at once, not after
// their caches expire: the clock does not move in this test, so only the
// change notification can make the others forget it.
func TestClusterClientDeleted(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3)
	secret := "s3cret-gone-0123456789abcdefghijklmnop"
	now := c.clock.Now()
	if err := c.nodes[0].store.CreateClient(t.Context(), storage.Client{ID: "gone", Name: "gone", AppType: storage.AppTypeWeb,
		SecretHash: op.HashClientSecret(c.kr, secret), GrantTypes: []string{op.GrantClientCredentials},
		Source: "cli", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	status := func(nd *node) int {
		_, st := postForm(t, nd.http.URL+"/oauth/token", url.Values{"grant_type": {"client_credentials"}}, "gone", secret)
		return st
	}
	for i, nd := range c.nodes {
		if st := status(nd); st != 200 {
			t.Fatalf("instance %d before the deletion: %d", i, st) // and its cache now holds the client
		}
	}
	if err := c.nodes[2].store.DeleteClient(t.Context(), "gone"); err != nil {
		t.Fatal(err)
	}
	for i, nd := range c.nodes {
		eventually(t, fmt.Sprintf("instance %d refuses the deleted client", i), func() bool { return status(nd) == 401 })
	}
}
