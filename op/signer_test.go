package op

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// testSigningKey is a fresh key of alg, as the key manager would load it.
func testSigningKey(t testing.TB, alg string) *signingKey {
	t.Helper()
	priv, err := generateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	hdr, err := jwsHeader(alg, "k1")
	if err != nil {
		t.Fatal(err)
	}
	return &signingKey{id: "k1", alg: jose.SignatureAlgorithm(alg), key: priv, header: hdr}
}

// TestSignJWT: our fast signer produces JWS that go-jose (what relying
// parties and zitadel's own verifiers use) accepts, for every algorithm,
// with the header zitadel writes; a changed payload or another key does
// not verify.
func TestSignJWT(t *testing.T) {
	for _, alg := range []string{AlgRS256, AlgES256, AlgEdDSA} {
		t.Run(alg, func(t *testing.T) {
			k := testSigningKey(t, alg)
			now := time.Unix(1700000000, 0)
			payload := atClaims("https://id.example", "svc\"1", nil, "svc\"1", "ccjwt_x", []string{"api", "read"}, "", now, now.Add(time.Hour))
			tok, err := k.signJWT(payload)
			if err != nil {
				t.Fatal(err)
			}
			algs := []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)}
			jws, err := jose.ParseSigned(tok, algs)
			if err != nil {
				t.Fatal(err)
			}
			got, err := jws.Verify(k.key.Public())
			if err != nil {
				t.Fatalf("signature does not verify: %v", err)
			}
			var claims map[string]any
			if err := json.Unmarshal(got, &claims); err != nil {
				t.Fatalf("payload is not JSON: %s", got)
			}
			if claims["sub"] != "svc\"1" || claims["scope"] != "api read" || claims["exp"] != float64(now.Add(time.Hour).Unix()) {
				t.Fatalf("claims %v", claims)
			}
			h := jws.Signatures[0].Header
			if h.KeyID != "k1" || h.Algorithm != alg || h.ExtraHeaders["typ"] != "JWT" {
				t.Fatalf("header %+v", h)
			}

			// Another key of the same algorithm: refused.
			if _, err := jws.Verify(testSigningKey(t, alg).key.Public()); err == nil {
				t.Fatal("verified with another key")
			}
			// A changed payload under the original signature: refused.
			parts := strings.Split(tok, ".")
			forged, err := testSigningKey(t, alg).signJWT([]byte(`{"sub":"admin"}`))
			if err != nil {
				t.Fatal(err)
			}
			parts[1] = strings.Split(forged, ".")[1]
			if jws, err := jose.ParseSigned(strings.Join(parts, "."), algs); err == nil {
				if _, err := jws.Verify(k.key.Public()); err == nil {
					t.Fatal("a changed payload verified")
				}
			}
		})
	}
}

// BenchmarkSignJWT is the signing ceiling of the token endpoint's own
// signer, per algorithm (the figure the client_credentials grant is
// compared against); cpu-ns/op is the process's CPU time per signature
// (ns/op is wall time, which a shared core inflates). The same with
// BoringSSL's RSA and ECDSA:
//
//	go test -run x -bench SignJWT ./op/
//	GOEXPERIMENT=boringcrypto go test -run x -bench SignJWT ./op/
func BenchmarkSignJWT(b *testing.B) {
	now := time.Unix(1700000000, 0)
	payload := atClaims("https://id.example", "svc", nil, "svc", "ccjwt_x", []string{"api"}, "", now, now.Add(time.Hour))
	for _, alg := range []string{AlgRS256, AlgES256, AlgEdDSA} {
		b.Run(alg, func(b *testing.B) {
			k := testSigningKey(b, alg)
			b.ReportAllocs()
			start := processCPU()
			for b.Loop() {
				if _, err := k.signJWT(payload); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, start)
		})
	}
}
