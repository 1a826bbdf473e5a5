// Package federationtest is a minimal OpenID provider whose ID tokens a
// test can tamper with (wrong nonce, wrong audience, expired, several
// audiences without azp, a bad at_hash, an old auth_time, a signature
// by a key it does not publish, a userinfo answer about someone else) or
// whose endpoints hang, to prove that the federation client refuses them.
//
// It is for those negative cases only: the sign-in tests that show single
// sign-on working run against a real OpenID provider (a second Latchkey).
// Its authorization endpoint has no login page (it answers at once for
// one fixed user), and its token endpoint checks the code, the client
// secret and the PKCE verifier like a real one.
package federationtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Provider is one tamperable OpenID provider on an httptest server.
type Provider struct {
	Issuer       string
	ClientID     string
	ClientSecret string

	srv *httptest.Server
	key *ecdsa.PrivateKey

	mu sync.Mutex
	// Claims are the user's claims put in every ID token (sub, email, …).
	claims map[string]any
	// mutate changes the ID token claims before signing.
	mutate func(map[string]any)
	// hang makes the named endpoints ("discovery", "token") wait this long.
	hang map[string]time.Duration
	// userinfo, when not nil, is advertised and served at /userinfo.
	userinfo map[string]any
	// forger, when not nil, signs ID tokens instead of key (it is not in
	// the JWKS).
	forger   *ecdsa.PrivateKey
	codes    map[string]grant
	access   map[string]bool // access tokens issued
	lastAuth url.Values
}

type grant struct {
	nonce, challenge, redirect string
}

// New starts a provider for one client; t's cleanup closes it.
func New(cleanup func(func()), clientID, clientSecret string) *Provider {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	p := &Provider{ClientID: clientID, ClientSecret: clientSecret, key: key,
		claims: map[string]any{}, hang: map[string]time.Duration{}, codes: map[string]grant{}, access: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("/keys", p.keys)
	mux.HandleFunc("/authorize", p.authorize)
	mux.HandleFunc("/token", p.token)
	mux.HandleFunc("/userinfo", p.userinfoEndpoint)
	p.srv = httptest.NewServer(mux)
	p.Issuer = p.srv.URL
	cleanup(p.srv.Close)
	return p
}

// SetClaims sets the user's claims (merged into every ID token).
func (p *Provider) SetClaims(c map[string]any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.claims = c
}

// Tamper sets a function that changes the ID token claims before signing
// (nil: none).
func (p *Provider) Tamper(fn func(claims map[string]any)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mutate = fn
}

// SetUserInfo makes the provider advertise a userinfo endpoint that
// answers claims to any access token it issued (nil: no endpoint). Set it
// before the client fetches the discovery document.
func (p *Provider) SetUserInfo(claims map[string]any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.userinfo = claims
}

// ForgeSignatures makes the provider sign ID tokens with a key that its
// JWKS does not publish (under the published key's id), as an attacker
// would; false goes back to the real key.
func (p *Provider) ForgeSignatures(on bool) {
	var forger *ecdsa.PrivateKey
	if on {
		var err error
		if forger, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.forger = forger
}

// Hang makes an endpoint ("discovery" or "token") wait d before answering.
func (p *Provider) Hang(endpoint string, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hang[endpoint] = d
}

// LastAuthorize is the query of the last authorization request.
func (p *Provider) LastAuthorize() url.Values {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastAuth
}

func (p *Provider) wait(endpoint string, r *http.Request) {
	p.mu.Lock()
	d := p.hang[endpoint]
	p.mu.Unlock()
	if d > 0 {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
		}
	}
}

func (p *Provider) discovery(w http.ResponseWriter, r *http.Request) {
	p.wait("discovery", r)
	p.mu.Lock()
	hasUserInfo := p.userinfo != nil
	p.mu.Unlock()
	doc := map[string]any{
		"issuer":                                p.Issuer,
		"authorization_endpoint":                p.Issuer + "/authorize",
		"token_endpoint":                        p.Issuer + "/token",
		"jwks_uri":                              p.Issuer + "/keys",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"ES256"},
		"code_challenge_methods_supported":      []string{"S256"},
		"end_session_endpoint":                  p.Issuer + "/end_session",
	}
	if hasUserInfo {
		doc["userinfo_endpoint"] = p.Issuer + "/userinfo"
	}
	writeJSON(w, http.StatusOK, doc)
}

func (p *Provider) userinfoEndpoint(w http.ResponseWriter, r *http.Request) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	p.mu.Lock()
	claims, issued := p.userinfo, p.access[tok]
	p.mu.Unlock()
	if !ok || !issued || claims == nil {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token"})
		return
	}
	writeJSON(w, http.StatusOK, claims)
}

func (p *Provider) keys(w http.ResponseWriter, _ *http.Request) {
	jwk := jose.JSONWebKey{Key: &p.key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk}})
}

// authorize answers at once for the one user: a code bound to the nonce,
// the PKCE challenge and the redirect URI.
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p.mu.Lock()
	p.lastAuth = q
	code := rand.Text()
	p.codes[code] = grant{nonce: q.Get("nonce"), challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri")}
	p.mu.Unlock()
	if q.Get("client_id") != p.ClientID || q.Get("code_challenge_method") != "S256" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	u, err := url.Parse(q.Get("redirect_uri"))
	if err != nil {
		http.Error(w, "bad redirect", http.StatusBadRequest)
		return
	}
	rq := u.Query()
	rq.Set("code", code)
	rq.Set("state", q.Get("state"))
	u.RawQuery = rq.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	// After the body is read, so that the server notices a client that
	// gave up (r.Context is then cancelled).
	p.wait("token", r)
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != p.ClientID || secret != p.ClientSecret {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	p.mu.Lock()
	g, found := p.codes[r.PostForm.Get("code")]
	delete(p.codes, r.PostForm.Get("code"))
	claims := map[string]any{}
	for k, v := range p.claims {
		claims[k] = v
	}
	mutate, forger := p.mutate, p.forger
	p.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if !found || g.redirect != r.PostForm.Get("redirect_uri") || base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
		return
	}
	access := rand.Text()
	p.mu.Lock()
	p.access[access] = true
	p.mu.Unlock()
	now := time.Now()
	claims["iss"] = p.Issuer
	claims["aud"] = p.ClientID
	claims["iat"] = now.Unix()
	claims["exp"] = now.Add(5 * time.Minute).Unix()
	claims["nonce"] = g.nonce
	if _, ok := claims["auth_time"]; !ok {
		claims["auth_time"] = now.Unix()
	}
	ah := sha256.Sum256([]byte(access))
	claims["at_hash"] = base64.RawURLEncoding.EncodeToString(ah[:16])
	if mutate != nil {
		mutate(claims)
	}
	key := p.key
	if forger != nil {
		key = forger
	}
	idt, err := sign(key, claims)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"access_token": access, "token_type": "Bearer", "expires_in": 300, "id_token": idt})
}

func sign(key *ecdsa.PrivateKey, claims map[string]any) (string, error) {
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := s.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
