package main

// Helpers of the protocol tests (issue 12): client keys and assertions,
// DPoP keys and proofs, all built with go-jose as a client library would,
// and raw HTTP calls that show what a relying party sees.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/latchkey/latchkey/storage/keyring"
)

// clientKey is a client's signing key for private_key_jwt.
type clientKey struct {
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
	kid  string
}

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey // one 2048-bit key for all tests: generating is slow
)

func newClientKey(t testing.TB, alg jose.SignatureAlgorithm, kid string) clientKey {
	t.Helper()
	var priv crypto.Signer
	switch alg {
	case jose.ES256:
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		priv = k
	case jose.RS256, jose.PS256:
		rsaOnce.Do(func() { rsaKey, _ = rsa.GenerateKey(rand.Reader, 2048) })
		priv = rsaKey
	case jose.EdDSA:
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		priv = k
	default:
		t.Fatalf("no key for %s", alg)
	}
	return clientKey{alg: alg, priv: priv, kid: kid}
}

func (k clientKey) publicJWK() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}
}

// jwksOf is the JWK set (JSON) of the keys' public halves.
func jwksOf(t testing.TB, keys ...clientKey) string {
	t.Helper()
	set := jose.JSONWebKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.publicJWK())
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// assertionClaims are a client assertion's claims; zero fields are left
// out (exp included, to test that it is required).
type assertionClaims struct {
	iss, sub string
	aud      any
	exp, iat time.Time
	jti      string
}

// sign makes a client assertion (RFC 7523 §2.2) with this key.
func (k clientKey) sign(t testing.TB, c assertionClaims) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.priv},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", k.kid))
	if err != nil {
		t.Fatal(err)
	}
	cl := map[string]any{"iss": c.iss, "sub": c.sub}
	if c.aud != nil {
		cl["aud"] = c.aud
	}
	if !c.exp.IsZero() {
		cl["exp"] = c.exp.Unix()
	}
	if !c.iat.IsZero() {
		cl["iat"] = c.iat.Unix()
	}
	if c.jti != "" {
		cl["jti"] = c.jti
	}
	raw, err := jwt.Signed(signer).Claims(cl).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// assertion is a good client assertion of clientID for aud, valid one
// minute from now on the server's clock.
func (k clientKey) assertion(t testing.TB, e *testEnv, clientID string, aud any) string {
	now := e.clock.Now()
	return k.sign(t, assertionClaims{iss: clientID, sub: clientID, aud: aud, iat: now, exp: now.Add(time.Minute), jti: keyring.RandomString(12)})
}

// assertionForm is the client authentication of private_key_jwt.
func assertionForm(form url.Values, assertion string) url.Values {
	form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
	form.Set("client_assertion", assertion)
	return form
}

// dpopKey is a DPoP key of a desktop or command-line product.
type dpopKey struct {
	priv *ecdsa.PrivateKey
}

func newDPoPKey() dpopKey {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return dpopKey{priv: k}
}

// thumbprint is the key's RFC 7638 thumbprint (the jkt).
func (k dpopKey) thumbprint(t testing.TB) string {
	t.Helper()
	jwk := jose.JSONWebKey{Key: &k.priv.PublicKey}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// proof is a DPoP proof (RFC 9449 §4.2) for method and URL, with the
// server's nonce and, for a resource, the access token's hash.
func (k dpopKey) proof(t testing.TB, iat time.Time, method, htu, nonce, accessToken string) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.priv},
		(&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	cl := map[string]any{"jti": keyring.RandomString(12), "htm": method, "htu": htu, "iat": iat.Unix()}
	if nonce != "" {
		cl["nonce"] = nonce
	}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		cl["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	raw, err := jwt.Signed(signer).Claims(cl).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// answer is an HTTP answer as a relying party sees it.
type answer struct {
	status int
	header http.Header
	body   []byte
	json   map[string]any
}

func (a answer) str(k string) string { s, _ := a.json[k].(string); return s }

// call sends a request without following redirects; form (when not nil)
// is the urlencoded body.
func call(t testing.TB, method, u string, form url.Values, header map[string]string) answer {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, body: b}
	_ = json.Unmarshal(b, &a.json)
	return a
}

// basic is an Authorization header of client_secret_basic.
func basic(id, secret string) map[string]string {
	return map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))}
}

// claimsOf decodes a JWT's payload without verifying it.
func claimsOf(t testing.TB, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", raw)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// codeFrom reads code, state and iss of an authorization response
// redirect.
func redirectParams(t testing.TB, location string) url.Values {
	t.Helper()
	u, err := url.Parse(location)
	if err != nil || location == "" {
		t.Fatalf("not a redirect: %q", location)
	}
	return u.Query()
}
