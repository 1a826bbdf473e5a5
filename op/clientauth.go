package op

// Client authentication at the token, introspection, revocation and PAR
// endpoints: one function for all four, so a method works everywhere or
// nowhere. Methods (RFC 6749 §2.3, RFC 7523 §2.2, OIDC Core §9):
// client_secret_basic, client_secret_post, private_key_jwt, and none (a
// public client names itself with client_id; PKCE or a DPoP key binds
// what it gets). A request uses exactly one method.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/latchkey/latchkey/config"
	"github.com/latchkey/latchkey/storage"
)

// Client authentication method names, as discovery lists them.
const (
	authSecretBasic   = "client_secret_basic"
	authSecretPost    = "client_secret_post"
	authPrivateKeyJWT = "private_key_jwt"
	authNone          = "none"
)

// assertionType is the only client_assertion_type (RFC 7523 §2.2).
const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// Client assertion rules: exp is required and at most maxAssertionLife
// ahead (a short-lived, single-use credential); iat and nbf may be this
// much in the future (clock skew).
const (
	maxAssertionLife = 10 * time.Minute
	assertionSkew    = time.Minute
)

// assertionAlgs are the JWS algorithms of client assertions (issue 12):
// the asymmetric ones every client library offers.
var assertionAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.EdDSA}

// clientCreds are the credentials a request carries.
type clientCreds struct {
	id        string // form client_id or Basic user; for assertions, iss
	secret    string
	assertion string
	method    string
}

// readClientCreds reads the one client authentication of r (its form must
// be parsed).
func readClientCreds(r *http.Request) (clientCreds, error) {
	f := r.PostForm
	formID, formSecret := f.Get("client_id"), f.Get("client_secret")
	assertion, atype := f.Get("client_assertion"), f.Get("client_assertion_type")
	u, p, basic := r.BasicAuth()
	n := 0
	for _, used := range []bool{basic, formSecret != "", assertion != "" || atype != ""} {
		if used {
			n++
		}
	}
	if n > 1 {
		return clientCreds{}, errors.New("use one client authentication method, not two")
	}
	switch {
	case basic:
		id, err1 := url.QueryUnescape(u)
		secret, err2 := url.QueryUnescape(p)
		if err1 != nil || err2 != nil {
			return clientCreds{}, errors.New("malformed basic credentials")
		}
		if formID != "" && formID != id {
			return clientCreds{}, errors.New("client_id does not match the credentials")
		}
		return clientCreds{id: id, secret: secret, method: authSecretBasic}, nil
	case assertion != "" || atype != "":
		if atype != assertionType {
			return clientCreds{}, fmt.Errorf("client_assertion_type must be %s", assertionType)
		}
		if assertion == "" {
			return clientCreds{}, errors.New("client_assertion missing")
		}
		return clientCreds{id: formID, assertion: assertion, method: authPrivateKeyJWT}, nil
	case formSecret != "":
		return clientCreds{id: formID, secret: formSecret, method: authSecretPost}, nil
	}
	return clientCreds{id: formID, method: authNone}, nil
}

// authFailure is a refused client authentication, answered as RFC 6749
// §5.2 says.
type authFailure struct {
	status      int
	code        string
	description string
	basic       bool // the client tried HTTP Basic: add the challenge
	logReason   string
}

func (f *authFailure) write(w http.ResponseWriter) {
	if f.status == http.StatusServiceUnavailable {
		setRetryAfter(w.Header())
	}
	tokenError(w, f.status, f.code, f.description, f.basic)
}

// internalAuthFailure is a failure of ours while authenticating a client:
// 503 temporarily_unavailable when the database is out of reach (never
// invalid_client), else 500.
func (o *OP) internalAuthFailure(ctx context.Context, what string, err error) *authFailure {
	if unavailable(err) {
		o.opts.Logger.ErrorContext(ctx, what+": database unavailable", "err", err)
		return &authFailure{status: http.StatusServiceUnavailable, code: codeUnavailable, description: descUnavailable}
	}
	o.opts.Logger.ErrorContext(ctx, what, "err", err)
	return &authFailure{status: http.StatusInternalServerError, code: "server_error"}
}

// authenticateClient authenticates the client of r at endpoint (its path).
// publicOK: a public client's client_id alone names it here.
func (o *OP) authenticateClient(ctx context.Context, r *http.Request, endpoint string, publicOK bool) (*client, *authFailure) {
	creds, err := readClientCreds(r)
	if err != nil {
		return nil, &authFailure{status: http.StatusBadRequest, code: "invalid_request", description: err.Error()}
	}
	basic := creds.method == authSecretBasic
	refused := &authFailure{status: http.StatusUnauthorized, code: "invalid_client", description: "client authentication failed", basic: basic}
	defer func() {
		// A client's mistake, logged for the operator without the secret:
		// which client, how, and why.
		if refused.logReason != "" {
			o.opts.Logger.WarnContext(ctx, "client authentication failed", "client_id", creds.id, "endpoint", endpoint,
				"method", string(creds.method), "reason", refused.logReason)
		}
	}()
	if creds.method == authPrivateKeyJWT {
		c, err := o.verifyAssertion(ctx, creds, endpoint)
		if err != nil {
			var oe *oidc.Error
			if unavailable(err) || errors.As(err, &oe) && oe.ErrorType == oidc.ServerError {
				return nil, o.internalAuthFailure(ctx, "client assertion", err)
			}
			refused.description = "client assertion refused: " + err.Error()
			refused.logReason = refused.description
			return nil, refused
		}
		return c, nil
	}
	c, err := o.storage.client(ctx, creds.id)
	if err != nil {
		var oe *oidc.Error
		if unavailable(err) || errors.As(err, &oe) && oe.ErrorType == oidc.ServerError {
			return nil, o.internalAuthFailure(ctx, "client lookup", err)
		}
		refused.logReason = "unknown client"
		return nil, refused
	}
	if creds.method == authNone {
		if !c.c.Public || !publicOK {
			refused.logReason = "no client authentication"
			return nil, refused
		}
		return c, nil
	}
	if !secretMatches(o.storage.kr, c.c, creds.secret) {
		refused.logReason = "wrong or missing secret"
		return nil, refused
	}
	return c, nil
}

// verifyAssertion checks a private_key_jwt client assertion (RFC 7523
// §3): signed by one of the client's registered keys with an allowed
// algorithm; iss and sub the client; aud the issuer, the token endpoint
// or the endpoint called; exp present and near; jti used once (until exp,
// across instances: storage.UseOnce).
func (o *OP) verifyAssertion(ctx context.Context, creds clientCreds, endpoint string) (*client, error) {
	tok, err := jwt.ParseSigned(creds.assertion, assertionAlgs)
	if err != nil {
		return nil, fmt.Errorf("not a signed JWT with an allowed algorithm (%v)", assertionAlgs)
	}
	if len(tok.Headers) != 1 {
		return nil, errors.New("one signature expected")
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, errors.New("malformed claims")
	}
	id := unverified.Issuer
	if id == "" || unverified.Subject != id {
		return nil, errors.New("iss and sub must both be the client_id")
	}
	if creds.id != "" && creds.id != id {
		return nil, errors.New("client_id does not match the assertion")
	}
	c, err := o.storage.client(ctx, id)
	if err != nil {
		var oe *oidc.Error
		if unavailable(err) || errors.As(err, &oe) && oe.ErrorType == oidc.ServerError {
			return nil, err
		}
		return nil, errors.New("unknown client")
	}
	if !c.hasKeys() {
		return nil, errors.New("the client has no registered keys")
	}
	hdr := tok.Headers[0]
	var claims jwt.Claims
	verified := false
	for refresh := range 2 {
		keys, err := o.clientKeys.keys(ctx, c.c, refresh == 1)
		if err != nil {
			return nil, serverError(ctx, err)
		}
		found := false
		for _, k := range keys {
			if hdr.KeyID != "" && k.KeyID != hdr.KeyID {
				continue
			}
			if k.Algorithm != "" && k.Algorithm != hdr.Algorithm {
				continue
			}
			found = true
			if tok.Claims(k.Key, &claims) == nil {
				verified = true
				break
			}
		}
		// An unknown kid may be a key the client added since we last
		// fetched its jwks_uri: fetch once more (RFC 7523 leaves key
		// rotation to the JWKS).
		if verified || found || c.c.JWKSURI == "" {
			break
		}
	}
	if !verified {
		return nil, errors.New("signature does not verify with the client's keys")
	}
	now := o.opts.Now()
	switch {
	case claims.Expiry == nil:
		return nil, errors.New("exp is required")
	case now.After(claims.Expiry.Time()):
		return nil, errors.New("expired")
	case claims.Expiry.Time().Sub(now) > maxAssertionLife:
		return nil, fmt.Errorf("exp is more than %s ahead", maxAssertionLife)
	case claims.NotBefore != nil && claims.NotBefore.Time().After(now.Add(assertionSkew)):
		return nil, errors.New("not valid yet (nbf)")
	case claims.IssuedAt != nil && claims.IssuedAt.Time().After(now.Add(assertionSkew)):
		return nil, errors.New("issued in the future (iat)")
	case claims.ID == "":
		return nil, errors.New("jti is required")
	case len(claims.ID) > 256:
		return nil, errors.New("jti too long")
	}
	iss := o.opts.Issuer
	audOK := slices.ContainsFunc(claims.Audience, func(a string) bool {
		return a == iss || a == o.endpointURL(tokenPath) || a == o.endpointURL(endpoint)
	})
	if !audOK {
		return nil, errors.New("aud must be the issuer or the endpoint's URL")
	}
	if err := o.storage.store.UseOnce(ctx, "client-assertion:"+id+":"+claims.ID, now, claims.Expiry.Time()); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return nil, errors.New("jti already used")
		}
		return nil, serverError(ctx, err)
	}
	return c, nil
}

// clientKeyring finds a client's public keys: its inline JWKS, or its
// jwks_uri fetched with a timeout and cached (per instance: a cache, not
// a decision), refetched on an unknown kid at most every
// jwksRefetchEvery.
type clientKeyring struct {
	http   *http.Client
	now    func() time.Time
	logger *slog.Logger

	mu    sync.Mutex
	cache map[string]fetchedKeys // jwks_uri → keys
}

type fetchedKeys struct {
	keys []jose.JSONWebKey
	at   time.Time
}

const (
	jwksCacheFor     = 10 * time.Minute
	jwksRefetchEvery = 30 * time.Second
	jwksFetchTimeout = 5 * time.Second
	jwksMaxBytes     = 256 << 10
)

// keys returns c's usable keys; refresh asks for a fresh fetch of its
// jwks_uri (rate-limited).
func (k *clientKeyring) keys(ctx context.Context, c storage.Client, refresh bool) ([]jose.JSONWebKey, error) {
	if c.JWKS != "" {
		return usableKeys([]byte(c.JWKS))
	}
	uri := c.JWKSURI
	now := k.now()
	k.mu.Lock()
	f, ok := k.cache[uri]
	k.mu.Unlock()
	age := now.Sub(f.at)
	if ok && age >= 0 && (age < jwksCacheFor && !refresh || age < jwksRefetchEvery) {
		return f.keys, nil
	}
	keys, err := k.fetch(ctx, uri)
	if err != nil {
		if ok {
			k.logger.Warn("jwks_uri unreachable; using the keys fetched before", "client", c.ID, "uri", uri, "err", err)
			return f.keys, nil
		}
		k.logger.Warn("jwks_uri unreachable", "client", c.ID, "uri", uri, "err", err)
		return nil, nil // no keys: the assertion is refused, not a server error
	}
	k.mu.Lock()
	if k.cache == nil || len(k.cache) > 10000 {
		k.cache = map[string]fetchedKeys{}
	}
	k.cache[uri] = fetchedKeys{keys: keys, at: now}
	k.mu.Unlock()
	return keys, nil
}

func (k *clientKeyring) fetch(ctx context.Context, uri string) ([]jose.JSONWebKey, error) {
	ctx, cancel := context.WithTimeout(ctx, jwksFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := k.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, jwksMaxBytes+1))
	if err != nil {
		return nil, err
	}
	if len(body) > jwksMaxBytes {
		return nil, errors.New("JWK set too large")
	}
	return usableKeys(body)
}

// usableKeys parses a JWK set and keeps the keys a client may sign its
// assertions with (config.CheckClientKey: the same rule the config file
// is held to).
func usableKeys(raw []byte) ([]jose.JSONWebKey, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, fmt.Errorf("not a JWK set: %w", err)
	}
	out := set.Keys[:0]
	for _, key := range set.Keys {
		if config.CheckClientKey(key) == "" {
			out = append(out, key)
		}
	}
	return out, nil
}

// hasKeys: the client registered keys for private_key_jwt.
func (c *client) hasKeys() bool { return !c.c.Public && (c.c.JWKS != "" || c.c.JWKSURI != "") }

// authMethods are the methods a client can authenticate with.
func (c *client) authMethods() []string {
	if c.c.Public {
		return []string{authNone}
	}
	var out []string
	if len(c.c.SecretHash) > 0 {
		out = append(out, authSecretBasic, authSecretPost)
	}
	if c.hasKeys() {
		out = append(out, authPrivateKeyJWT)
	}
	return out
}

// endpointURL is the URL of one of our endpoints.
func (o *OP) endpointURL(path string) string { return strings.TrimSuffix(o.opts.Issuer, "/") + path }
