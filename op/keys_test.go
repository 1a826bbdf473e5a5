package op

import (
	"context"
	"io"
	"log/slog"
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
	return &keyManager{store: store, kr: kr, alg: alg, rotation: 30 * 24 * time.Hour, keep: 25 * time.Hour,
		now: clk.now, logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

func kids(ks *keySet) []string {
	var out []string
	for _, k := range ks.public {
		out = append(out, k.ID())
	}
	return out
}

// TestKeyRotationSchedule walks a key's life: created on first use, a
// successor published an hour before it retires, the successor signing
// from the retirement, the old key kept in JWKS until its tokens expired,
// then removed. Two instances share the keys and never rotate twice.
func TestKeyRotationSchedule(t *testing.T) {
	for _, d := range storagetest.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			store := d.Open(t)
			kr := testKeyring(t)
			clk := &fixedClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			a, b := newManager(store, kr, clk, AlgES256), newManager(store, kr, clk, AlgES256)

			ksA, err := a.get(ctx)
			if err != nil {
				t.Fatal(err)
			}
			ksB, err := b.get(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if ksA.signing.ID() != ksB.signing.ID() || len(ksA.public) != 1 {
				t.Fatalf("instances disagree or extra keys: %v %v", kids(ksA), kids(ksB))
			}
			first := ksA.signing.ID()

			// 30 d − 1 h + 1 s: the successor is published, the first still signs.
			clk.t = clk.t.Add(30*24*time.Hour - time.Hour + time.Second)
			ksA, _ = a.get(ctx)
			ksB, _ = b.get(ctx)
			if ksA.signing.ID() != first || len(ksA.public) != 2 || !slices.Equal(kids(ksA), kids(ksB)) {
				t.Fatalf("before retirement: signing %s, jwks %v / %v", ksA.signing.ID(), kids(ksA), kids(ksB))
			}
			second := kids(ksA)[0]
			if second == first {
				t.Fatal("newest key not first in JWKS")
			}
			// At retirement the successor signs; the first stays published.
			clk.t = clk.t.Add(time.Hour)
			ksA, _ = a.get(ctx)
			if ksA.signing.ID() != second || !slices.Contains(kids(ksA), first) {
				t.Fatalf("after retirement: signing %s, jwks %v", ksA.signing.ID(), kids(ksA))
			}
			// After keep, the first key is gone from JWKS and the database.
			clk.t = clk.t.Add(25*time.Hour + time.Second)
			if err := a.reload(ctx, rotateOnSchedule); err != nil {
				t.Fatal(err)
			}
			ksA, _ = a.get(ctx)
			if slices.Contains(kids(ksA), first) {
				t.Fatalf("expired key still published: %v", kids(ksA))
			}
			all, _ := store.ListSigningKeys(ctx)
			if len(all) != 1 {
				t.Fatalf("%d keys stored, want 1", len(all))
			}

			// A planned rotation (latchkey keys rotate) publishes a new key
			// at once; the current one signs until the publish lead has
			// passed, then the new one; the old stays published.
			if err := a.reload(ctx, rotatePlanned); err != nil {
				t.Fatal(err)
			}
			ksA, _ = a.get(ctx)
			third := kids(ksA)[0]
			if ksA.signing.ID() != second || third == second || !slices.Contains(kids(ksA), second) {
				t.Fatalf("planned rotation: signing %s, jwks %v", ksA.signing.ID(), kids(ksA))
			}
			clk.t = clk.t.Add(a.publishLead() - time.Second)
			if ksA, _ = a.get(ctx); ksA.signing.ID() != second {
				t.Fatalf("1 s before the lead: signing %s", ksA.signing.ID())
			}
			clk.t = clk.t.Add(time.Second)
			if ksA, _ = a.get(ctx); ksA.signing.ID() != third || !slices.Contains(kids(ksA), second) {
				t.Fatalf("after the lead: signing %s, jwks %v", ksA.signing.ID(), kids(ksA))
			}
			// An emergency rotation (latchkey keys rotate --now) signs with
			// a new key at once and withdraws every other key from JWKS.
			if err := a.reload(ctx, rotateNow); err != nil {
				t.Fatal(err)
			}
			ksA, _ = a.get(ctx)
			if ksA.signing.ID() == third || len(kids(ksA)) != 1 || kids(ksA)[0] != ksA.signing.ID() {
				t.Fatalf("emergency rotation: signing %s, jwks %v", ksA.signing.ID(), kids(ksA))
			}
			// Both survive a restart (new manager).
			c := newManager(store, kr, clk, AlgES256)
			ksC, _ := c.get(ctx)
			if ksC.signing.ID() != ksA.signing.ID() {
				t.Fatal("a restarted instance signs with another key")
			}

			// Changing the algorithm starts a key of the new algorithm.
			r := newManager(store, kr, clk, AlgRS256)
			ksR, err := r.get(ctx)
			if err != nil || ksR.signing.SignatureAlgorithm() != jose.RS256 {
				t.Fatalf("algorithm change: %v %v", ksR, err)
			}

			// A wrong secret key cannot open the signing key: fail loudly.
			other, _ := keyring.New([]byte("ffffffffffffffffffffffffffffffff"))
			if _, err := newManager(store, other, clk, AlgRS256).get(ctx); err == nil {
				t.Fatal("a wrong secret key was accepted")
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
			for i := 0; i < b.N; i++ {
				signer, err := zop.SignerFromKey(key)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := crypto.Sign(claims, signer); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
