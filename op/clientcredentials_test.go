package op

import (
	"crypto"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// TestSignJWT: our fast signer produces JWS that go-jose (what relying
// parties and zitadel's own verifiers use) accepts, for every algorithm.
func TestSignJWT(t *testing.T) {
	for _, alg := range []string{AlgRS256, AlgES256, AlgEdDSA} {
		t.Run(alg, func(t *testing.T) {
			priv, err := generateKey(alg)
			if err != nil {
				t.Fatal(err)
			}
			hdr, _ := json.Marshal(map[string]string{"alg": alg, "kid": "k1", "typ": "JWT"})
			k := &signingKey{id: "k1", alg: jose.SignatureAlgorithm(alg), key: priv.(crypto.Signer), header: base64.RawURLEncoding.AppendEncode(nil, hdr)}
			now := time.Unix(1700000000, 0)
			payload := atClaims("https://id.example", "svc\"1", nil, "svc\"1", "ccjwt_x", []string{"api", "read"}, now, now.Add(time.Hour))
			tok, err := k.signJWT(payload)
			if err != nil {
				t.Fatal(err)
			}
			jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
			if err != nil {
				t.Fatal(err)
			}
			got, err := jws.Verify(priv.Public())
			if err != nil {
				t.Fatalf("signature does not verify: %v", err)
			}
			var claims map[string]any
			if err := json.Unmarshal(got, &claims); err != nil {
				t.Fatalf("payload is not JSON: %s", got)
			}
			if claims["sub"] != "svc\"1" || claims["scope"] != "api read" || claims["exp"] != float64(now.Add(time.Hour).Unix()) || jws.Signatures[0].Header.KeyID != "k1" {
				t.Fatalf("claims %v header %+v", claims, jws.Signatures[0].Header)
			}
		})
	}
}

func TestClientAuth(t *testing.T) {
	for _, tc := range []struct {
		name       string
		basic      [2]string
		form       url.Values
		id, secret string
		wantErr    bool
		wantBasic  bool
	}{
		{name: "basic", basic: [2]string{"svc", "s%3Acret"}, id: "svc", secret: "s:cret", wantBasic: true},
		{name: "post", form: url.Values{"client_id": {"svc"}, "client_secret": {"x"}}, id: "svc", secret: "x"},
		{name: "both", basic: [2]string{"svc", "x"}, form: url.Values{"client_secret": {"x"}}, wantErr: true},
		{name: "mismatched id", basic: [2]string{"svc", "x"}, form: url.Values{"client_id": {"other"}}, wantErr: true},
		{name: "bad escape", basic: [2]string{"svc", "%zz"}, wantErr: true},
		{name: "assertion", form: url.Values{"client_assertion": {"a.b.c"}}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(tc.form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.basic[0] != "" {
				r.SetBasicAuth(tc.basic[0], tc.basic[1])
			}
			if err := r.ParseForm(); err != nil {
				t.Fatal(err)
			}
			id, secret, basic, err := clientAuth(r)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err == nil && (id != tc.id || secret != tc.secret || basic != tc.wantBasic) {
				t.Fatalf("got %q %q %v", id, secret, basic)
			}
		})
	}
}

func TestCCScopesAndJSON(t *testing.T) {
	if got := strings.Join(ccScopes("openid api offline_access read privacy email"), " "); got != "api read" {
		t.Fatalf("ccScopes = %q", got)
	}
	for _, s := range []string{"plain", `quo"te`, "back\\slash", "ctl\x01", "ünï"} {
		var back string
		if err := json.Unmarshal(appendJSONString(nil, s), &back); err != nil || back != s {
			t.Fatalf("%q → %s", s, appendJSONString(nil, s))
		}
	}
}

// BenchmarkSignJWT is the signing ceiling of the token endpoint's own
// signer, per algorithm (the figure the client_credentials grant is
// compared against).
//
//	go test -run x -bench SignJWT ./op/
func BenchmarkSignJWT(b *testing.B) {
	payload := atClaims("https://id.example", "svc", nil, "svc", "ccjwt_x", []string{"api"}, time.Now(), time.Now().Add(time.Hour))
	for _, alg := range []string{AlgRS256, AlgES256, AlgEdDSA} {
		b.Run(alg, func(b *testing.B) {
			priv, _ := generateKey(alg)
			k := &signingKey{id: "k1", alg: jose.SignatureAlgorithm(alg), key: priv, header: []byte("eyJhbGciOiJFUzI1NiJ9")}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := k.signJWT(payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpaqueToken mints and opens an opaque access token (the
// AES-GCM sealed "id:subject").
func BenchmarkOpaqueToken(b *testing.B) {
	tc, _ := newTokenCrypto([32]byte{1})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		tok, err := tc.Encrypt("01j9zv7m3k6w2c5x8p4q1r0tb7:njg7fmoawqba36uvl5lp7ygjgd")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tc.Decrypt(tok); err != nil {
			b.Fatal(err)
		}
	}
}
