package op

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"slices"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/crypto"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
	"github.com/latchkey/latchkey/storage/storagetest"
)

func testKeyring(t testing.TB) *keyring.Keyring {
	kr, err := keyring.New([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

type fixedClock struct{ t time.Time }

func (c *fixedClock) now() time.Time { return c.t }

func newManager(store *storage.Store, kr *keyring.Keyring, clk *fixedClock, alg string) *keyManager {
	return newKeyManager(store, kr, alg, AlgES256, 30*24*time.Hour, 25*time.Hour, clk.now,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func kids(ks *keySet) []string {
	var out []string
	for _, k := range ks.public {
		out = append(out, k.ID())
	}
	return out
}

// generation is what signs now: algorithm → kid.
func generation(ks *keySet) map[string]string {
	out := map[string]string{}
	for _, k := range ks.signers {
		out[string(k.alg)] = k.id
	}
	return out
}

// inStep: the stored keys come in generations — one key of each
// algorithm retiring at each instant (and those not signing yet starting
// together) — and every algorithm has a key signing at now.
func inStep(t *testing.T, store *storage.Store, m *keyManager, now time.Time) {
	t.Helper()
	keys, err := store.ListSigningKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	retiring, starting := map[time.Time][]string{}, map[time.Time][]string{}
	for _, k := range keys {
		retiring[k.RetireAt] = append(retiring[k.RetireAt], k.Algorithm)
		if k.NotBefore.After(now) {
			starting[k.NotBefore] = append(starting[k.NotBefore], k.Algorithm)
		}
	}
	want := slices.Sorted(slices.Values(m.algs))
	for _, group := range []map[time.Time][]string{retiring, starting} {
		for at, algs := range group {
			if slices.Sort(algs); !slices.Equal(algs, want) {
				t.Fatalf("keys %v retire or start at %s, want one of each of %v (all: %d keys)", algs, at, want, len(keys))
			}
		}
	}
	for _, alg := range m.algs {
		if _, ok := active(keys, alg, now); !ok {
			t.Fatalf("no %s key signs at %s", alg, now)
		}
	}
}

// countingKeyStore counts the key reads of a key manager.
type countingKeyStore struct {
	keyStore
	lists int
}

func (c *countingKeyStore) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	c.lists++
	return c.keyStore.ListSigningKeys(ctx)
}

// TestKeyRotationSchedule walks a key generation's life: RS256 and
// ES256 keys created together on first use, their successors published
// together before they retire, the successors signing from the
// retirement, the old keys kept in JWKS until their tokens expired, then
// removed; planned and emergency rotations of both at once. Two
// instances share the keys and never rotate twice.
func TestKeyRotationSchedule(t *testing.T) {
	for _, d := range storagetest.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			store := d.Open(t)
			kr := testKeyring(t)
			clk := &fixedClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			a, b := newManager(store, kr, clk, AlgRS256), newManager(store, kr, clk, AlgRS256)

			ksA, err := a.get(ctx)
			if err != nil {
				t.Fatal(err)
			}
			ksB, err := b.get(ctx)
			if err != nil {
				t.Fatal(err)
			}
			first := generation(ksA)
			if !maps.Equal(first, generation(ksB)) || len(ksA.public) != 2 || len(first) != 2 {
				t.Fatalf("instances disagree or extra keys: %v %v", kids(ksA), kids(ksB))
			}
			if ksA.idDefault.alg != jose.RS256 || ksA.access.alg != jose.ES256 {
				t.Fatalf("ID tokens by default with %s, access tokens with %s", ksA.idDefault.alg, ksA.access.alg)
			}
			inStep(t, store, a, clk.t)

			// 30 d − 1 h + 1 s: the successors are published, the first
			// generation still signs.
			clk.t = clk.t.Add(30*24*time.Hour - time.Hour + time.Second)
			ksA, _ = a.get(ctx)
			ksB, _ = b.get(ctx)
			if !maps.Equal(generation(ksA), first) || len(ksA.public) != 4 || !slices.Equal(kids(ksA), kids(ksB)) {
				t.Fatalf("before retirement: signing %v, jwks %v / %v", generation(ksA), kids(ksA), kids(ksB))
			}
			inStep(t, store, a, clk.t)
			// With the successors published, the token path reads the
			// snapshot, not the database, until they start to sign.
			counted := &countingKeyStore{keyStore: store}
			a.store = counted
			clk.t = clk.t.Add(time.Minute) // the periodic re-read is every 5 minutes
			for range 3 {
				a.get(ctx)
			}
			if counted.lists != 0 {
				t.Fatalf("%d key reads in the publish lead: the token path goes to the database", counted.lists)
			}
			a.store = store
			clk.t = clk.t.Add(-time.Minute)
			// At retirement the successors sign; the first stay published.
			clk.t = clk.t.Add(time.Hour)
			ksA, _ = a.get(ctx)
			second := generation(ksA)
			for alg, kid := range second {
				if kid == first[alg] || !slices.Contains(kids(ksA), first[alg]) {
					t.Fatalf("after retirement: signing %v, jwks %v", second, kids(ksA))
				}
			}
			if kids(ksA)[0] != second[AlgRS256] && kids(ksA)[0] != second[AlgES256] {
				t.Fatal("newest keys not first in JWKS")
			}
			// After keep, the first keys are gone from JWKS and the database.
			clk.t = clk.t.Add(25*time.Hour + time.Second)
			if err := a.reload(ctx, rotateOnSchedule); err != nil {
				t.Fatal(err)
			}
			ksA, _ = a.get(ctx)
			for _, kid := range first {
				if slices.Contains(kids(ksA), kid) {
					t.Fatalf("expired key still published: %v", kids(ksA))
				}
			}
			all, _ := store.ListSigningKeys(ctx)
			if len(all) != 2 {
				t.Fatalf("%d keys stored, want 2", len(all))
			}

			// A planned rotation (latchkey keys rotate) publishes a new
			// generation at once; the current one signs until the publish
			// lead has passed, then the new one; the old stays published.
			if err := a.reload(ctx, rotatePlanned); err != nil {
				t.Fatal(err)
			}
			ksA, _ = a.get(ctx)
			if !maps.Equal(generation(ksA), second) || len(kids(ksA)) != 4 {
				t.Fatalf("planned rotation: signing %v, jwks %v", generation(ksA), kids(ksA))
			}
			inStep(t, store, a, clk.t)
			clk.t = clk.t.Add(a.publishLead() - time.Second)
			if ksA, _ = a.get(ctx); !maps.Equal(generation(ksA), second) {
				t.Fatalf("1 s before the lead: signing %v", generation(ksA))
			}
			clk.t = clk.t.Add(time.Second)
			ksA, _ = a.get(ctx)
			third := generation(ksA)
			for alg, kid := range third {
				if kid == second[alg] || !slices.Contains(kids(ksA), second[alg]) {
					t.Fatalf("after the lead: signing %v, jwks %v", third, kids(ksA))
				}
			}
			inStep(t, store, a, clk.t)
			// An emergency rotation (latchkey keys rotate --now) signs with
			// a new generation at once and withdraws every other key.
			if err := a.reload(ctx, rotateNow); err != nil {
				t.Fatal(err)
			}
			ksA, _ = a.get(ctx)
			now := generation(ksA)
			if now[AlgRS256] == third[AlgRS256] || now[AlgES256] == third[AlgES256] || len(kids(ksA)) != 2 ||
				!slices.Contains(kids(ksA), now[AlgRS256]) || !slices.Contains(kids(ksA), now[AlgES256]) {
				t.Fatalf("emergency rotation: signing %v, jwks %v", now, kids(ksA))
			}
			inStep(t, store, a, clk.t)
			// Both survive a restart (new manager).
			c := newManager(store, kr, clk, AlgRS256)
			ksC, _ := c.get(ctx)
			if !maps.Equal(generation(ksC), now) {
				t.Fatal("a restarted instance signs with other keys")
			}

			// A default ID-token algorithm beyond RS256 and ES256 adds its
			// key to the generation: signing at once, retiring with it.
			r := newManager(store, kr, clk, AlgEdDSA)
			ksR, err := r.get(ctx)
			if err != nil || ksR.idDefault.SignatureAlgorithm() != jose.EdDSA || len(ksR.signers) != 3 {
				t.Fatalf("algorithm change: %v %v", ksR, err)
			}
			inStep(t, store, r, clk.t)

			// A wrong secret key cannot open the signing key: fail loudly.
			other, _ := keyring.New([]byte("ffffffffffffffffffffffffffffffff"))
			if _, err := newManager(store, other, clk, AlgRS256).get(ctx); err == nil {
				t.Fatal("a wrong secret key was accepted")
			}
		})
	}
}

// TestKeysUpgradeJoinsGeneration: a database from before both algorithms
// were published holds one RS256 key. The ES256 key added next to it
// signs at once and retires with it, so from the next rotation on the two
// algorithms rotate in step; two instances upgrading at once add one key.
func TestKeysUpgradeJoinsGeneration(t *testing.T) {
	for _, d := range storagetest.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			store := d.Open(t)
			kr := testKeyring(t)
			clk := &fixedClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			old := newManager(store, kr, clk, AlgRS256)
			rsKey, err := old.generate(AlgRS256, clk.t, clk.t, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if err := store.UpdateSigningKeys(ctx, func([]storage.SigningKey) ([]storage.SigningKey, []string, error) {
				return []storage.SigningKey{rsKey}, nil, nil
			}); err != nil {
				t.Fatal(err)
			}
			clk.t = clk.t.Add(10 * 24 * time.Hour)
			a, b := newManager(store, kr, clk, AlgRS256), newManager(store, kr, clk, AlgRS256)
			ksA, err := a.get(ctx)
			if err != nil {
				t.Fatal(err)
			}
			ksB, err := b.get(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(generation(ksA), generation(ksB)) || generation(ksA)[AlgRS256] != rsKey.ID || len(kids(ksA)) != 2 {
				t.Fatalf("after the upgrade: signing %v / %v, jwks %v", generation(ksA), generation(ksB), kids(ksA))
			}
			keys, _ := store.ListSigningKeys(ctx)
			for _, k := range keys {
				if k.RetireAt != rsKey.RetireAt {
					t.Fatalf("%s key retires at %s, the RS256 key at %s", k.Algorithm, k.RetireAt, rsKey.RetireAt)
				}
			}
			inStep(t, store, a, clk.t)
			// The next rotation on schedule makes one generation of both.
			clk.t = rsKey.RetireAt
			ksA, _ = a.get(ctx)
			inStep(t, store, a, clk.t)
			if len(kids(ksA)) != 4 {
				t.Fatalf("after the first rotation: jwks %v", kids(ksA))
			}
		})
	}
}

// BenchmarkSignIDToken measures signing one ID token per algorithm, as
// zitadel does it on the token path (a signer built from our cached key).
//
//	go test -run x -bench SignIDToken ./op/
func BenchmarkSignIDToken(b *testing.B) {
	now := time.Now()
	claims := oidc.NewIDTokenClaims("https://id.example.com", "njg7fmoawqba36uvl5lp7ygjgd", []string{"app"},
		now.Add(time.Hour), now, "nonce-nonce-nonce", "urn:latchkey:acr:mfa", []string{"pwd", "otp", "mfa"}, "app", 0)
	claims.Email = "ada@example.com"
	for _, alg := range []string{AlgRS256, AlgES256, AlgEdDSA} {
		b.Run(alg, func(b *testing.B) {
			priv, err := generateKey(alg)
			if err != nil {
				b.Fatal(err)
			}
			key := &signingKey{id: "kid", alg: jose.SignatureAlgorithm(alg), key: priv}
			b.ReportAllocs()
			start := processCPU()
			for i := 0; i < b.N; i++ {
				signer, err := zop.SignerFromKey(key)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := crypto.Sign(claims, signer); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, start)
		})
	}
}
