package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/latchkey/latchkey/op"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
)

// TestClusterKeyRotation (#11.1, #16.4): three instances on one
// PostgreSQL; before, during and after a rotation — planned or emergency,
// and with an instance (re)started right after it — every token any
// instance signs verifies against the JWKS fetched from every instance,
// and the RS256 and ES256 keys rotate in step: published together, signing
// from the same moment on every instance, withdrawn together.
func TestClusterKeyRotation(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3)
	secret := "s3cret-svc-0123456789abcdefghijklmnop"
	now := c.clock.Now()
	ctx := t.Context()
	store := c.nodes[0].store
	// svc gets ES256 access tokens (client_credentials); rs and es get ID
	// tokens of their registered algorithm from the refresh grant.
	for _, cl := range []storage.Client{
		{ID: "svc", GrantTypes: []string{op.GrantClientCredentials}},
		{ID: "rs", GrantTypes: []string{op.GrantAuthorizationCode, op.GrantRefreshToken}, IDTokenSigningAlg: "RS256"},
		{ID: "es", GrantTypes: []string{op.GrantAuthorizationCode, op.GrantRefreshToken}, IDTokenSigningAlg: "ES256"},
	} {
		cl.Name, cl.AppType, cl.SecretHash, cl.AccessTokenFormat = cl.ID, storage.AppTypeWeb, op.HashClientSecret(c.kr, secret), storage.TokenFormatJWT
		cl.RedirectURIs, cl.Source, cl.CreatedAt, cl.UpdatedAt = []string{"https://rp.example/cb"}, "cli", now, now
		if err := store.CreateClient(ctx, cl); err != nil {
			t.Fatal(err)
		}
	}
	user, err := store.CreateUser(ctx, storage.User{Email: "keys@example.com", EmailVerified: true, CreatedAt: now, UpdatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	token := func(nd *node, form url.Values, client, field string) string {
		t.Helper()
		body, status := postForm(t, nd.http.URL+"/oauth/token", form, client, secret)
		var out map[string]any
		if status != 200 || json.Unmarshal(body, &out) != nil || out[field] == nil {
			t.Fatalf("%s from %s: %d %s", field, nd.http.URL, status, body)
		}
		return out[field].(string)
	}
	// mint: from one instance, an ES256 access token and an RS256 and an
	// ES256 ID token.
	mint := func(nd *node) []string {
		t.Helper()
		out := []string{token(nd, url.Values{"grant_type": {"client_credentials"}}, "svc", "access_token")}
		for _, client := range []string{"rs", "es"} {
			family := storage.NewID()
			raw := op.NewRefreshToken(c.kr, family)
			at := c.clock.Now()
			if _, err := store.CreateRefreshToken(ctx, storage.RefreshToken{
				ID: storage.NewSortableID(at), TokenHash: c.kr.MACString(keyring.PurposeRefresh, raw),
				FamilyID: family, ClientID: client, UserID: user.ID,
				Scopes: []string{"openid", "offline_access"}, GrantedScopes: []string{"openid", "offline_access"},
				Audience: []string{client}, AMR: []string{"pwd", "otp"}, AuthTime: at, SecondFactorAt: at,
				CreatedAt: at, FamilyCreatedAt: at, LastUsedAt: at,
			}); err != nil {
				t.Fatal(err)
			}
			out = append(out, token(nd, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {raw}}, client, "id_token"))
		}
		return out
	}
	jwks := func(nd *node) *jose.JSONWebKeySet {
		t.Helper()
		var ks jose.JSONWebKeySet
		if err := json.Unmarshal(nd.get(t, "/keys"), &ks); err != nil {
			t.Fatal(err)
		}
		return &ks
	}
	parse := func(raw string) *jose.JSONWebSignature {
		t.Helper()
		jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.EdDSA})
		if err != nil {
			t.Fatal(err)
		}
		return jws
	}
	// everyTokenVerifiesEverywhere is the relying party's view: a token
	// from any instance, checked with JWKS from any instance. It returns
	// the kids that signed, by algorithm.
	everyTokenVerifiesEverywhere := func(phase string) map[string]map[string]bool {
		t.Helper()
		signing := map[string]map[string]bool{"RS256": {}, "ES256": {}}
		for i, from := range c.nodes {
			for _, raw := range mint(from) {
				jws := parse(raw)
				h := jws.Signatures[0].Header
				signing[h.Algorithm][h.KeyID] = true
				for j, at := range c.nodes {
					keys := jwks(at).Key(h.KeyID)
					if len(keys) == 0 {
						t.Fatalf("%s: %s token of instance %d (kid %s) has no key in instance %d's JWKS", phase, h.Algorithm, i, h.KeyID, j)
					}
					if keys[0].Algorithm != h.Algorithm {
						t.Fatalf("%s: token alg %s, key alg %s", phase, h.Algorithm, keys[0].Algorithm)
					}
					if _, err := jws.Verify(keys[0]); err != nil {
						t.Fatalf("%s: token of instance %d does not verify with instance %d's JWKS: %v", phase, i, j, err)
					}
				}
			}
		}
		return signing
	}
	// signsWith: every instance signs each algorithm with exactly the
	// generation's key.
	signsWith := func(phase string, got map[string]map[string]bool, gen map[string]string) {
		t.Helper()
		for alg, kids := range got {
			if len(kids) != 1 || !kids[gen[alg]] {
				t.Fatalf("%s: instances sign %s with %v, want only %s", phase, alg, kids, gen[alg])
			}
		}
	}
	published := func(nd *node, kid string) bool { return len(jwks(nd).Key(kid)) > 0 }

	before := c.generation(t)
	signsWith("before", everyTokenVerifiesEverywhere("before"), before)

	// A planned rotation from the command line (another process): the new
	// keys are published everywhere at once, and nobody signs with them yet.
	cli := c.cliOP(t)
	if err := cli.RotateKeys(t.Context()); err != nil {
		t.Fatal(err)
	}
	newest := c.generation(t)
	if newest["RS256"] == before["RS256"] || newest["ES256"] == before["ES256"] {
		t.Fatalf("the rotation made no new generation: %v → %v", before, newest)
	}
	for i, nd := range c.nodes {
		eventually(t, fmt.Sprintf("instance %d publishes the new keys", i), func() bool {
			return published(nd, newest["RS256"]) && published(nd, newest["ES256"])
		})
	}
	restarted := c.addNode() // an instance started right after the rotation
	if !published(restarted, newest["RS256"]) || !published(restarted, newest["ES256"]) {
		t.Fatal("a restarted instance does not publish the new keys")
	}
	signsWith("during the publish lead", everyTokenVerifiesEverywhere("during the publish lead"), before)

	// After the lead every instance signs with them; the old keys stay published.
	c.clock.Advance(cli.PublishLead())
	signsWith("after the publish lead", everyTokenVerifiesEverywhere("after the publish lead"), newest)
	for _, old := range before {
		for i, nd := range c.nodes {
			if !published(nd, old) {
				t.Fatalf("instance %d dropped the old key while its tokens may still be live", i)
			}
		}
	}

	// An emergency rotation (compromised key): the new keys sign at once
	// and the old keys leave every instance's JWKS.
	if err := cli.RotateKeysNow(t.Context()); err != nil {
		t.Fatal(err)
	}
	emergency := c.generation(t)
	for i, nd := range c.nodes {
		eventually(t, fmt.Sprintf("instance %d takes the emergency keys", i), func() bool {
			ks := jwks(nd)
			return len(ks.Keys) == 2 && published(nd, emergency["RS256"]) && published(nd, emergency["ES256"])
		})
	}
	signsWith("after the emergency rotation", everyTokenVerifiesEverywhere("after the emergency rotation"), emergency)
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

// generation is the newest key of each algorithm (by creation, then by
// when it signs): algorithm → kid.
func (c *cluster) generation(t *testing.T) map[string]string {
	t.Helper()
	keys, err := c.nodes[0].store.ListSigningKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	newest := map[string]storage.SigningKey{}
	for _, k := range keys {
		n, ok := newest[k.Algorithm]
		if !ok || k.CreatedAt.After(n.CreatedAt) || (k.CreatedAt.Equal(n.CreatedAt) && k.NotBefore.After(n.NotBefore)) {
			newest[k.Algorithm] = k
		}
	}
	out := map[string]string{}
	for alg, k := range newest {
		out[alg] = k.ID
	}
	if len(out) != 2 {
		t.Fatalf("keys of %d algorithms, want RS256 and ES256: %v", len(out), out)
	}
	return out
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
