package op

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
)

// OAuth grant type names, as clients are configured with them.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
	GrantDeviceCode        = "urn:ietf:params:oauth:grant-type:device_code"
)

// ScopePrivacy adds the privacy claim (SPEC 7).
const ScopePrivacy = "privacy"

// client adapts a storage.Client to zitadel's op.Client.
type client struct {
	c         storage.Client
	loginURL  string
	lifetimes lifetimes
}

var _ zop.Client = (*client)(nil)

func (c *client) GetID() string                    { return c.c.ID }
func (c *client) RedirectURIs() []string           { return c.c.RedirectURIs }
func (c *client) PostLogoutRedirectURIs() []string { return c.c.PostLogoutRedirectURIs }
func (c *client) LoginURL(id string) string {
	return c.loginURL + "?authRequestID=" + url.QueryEscape(id)
}
func (c *client) DevMode() bool { return false }

// ClockSkew is 0: zitadel shifts iat and auth_time back by it.
func (c *client) ClockSkew() time.Duration { return 0 }

func (c *client) ApplicationType() zop.ApplicationType {
	switch c.c.AppType {
	case storage.AppTypeNative:
		return zop.ApplicationTypeNative
	case storage.AppTypeUserAgent:
		return zop.ApplicationTypeUserAgent
	}
	return zop.ApplicationTypeWeb
}

// AuthMethod: public clients authenticate with PKCE alone; confidential
// ones with the secret, by Basic or form (zitadel accepts both for Basic).
func (c *client) AuthMethod() oidc.AuthMethod {
	switch {
	case c.c.Public:
		return oidc.AuthMethodNone
	case len(c.c.SecretHash) == 0 && c.hasKeys():
		return oidc.AuthMethodPrivateKeyJWT
	}
	return oidc.AuthMethodBasic
}

func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}

func (c *client) GrantTypes() []oidc.GrantType {
	out := make([]oidc.GrantType, 0, len(c.c.GrantTypes))
	for _, g := range c.c.GrantTypes {
		out = append(out, oidc.GrantType(g))
	}
	return out
}

func (c *client) hasGrant(g string) bool { return slices.Contains(c.c.GrantTypes, g) }

func (c *client) AccessTokenType() zop.AccessTokenType {
	if c.format() == storage.TokenFormatJWT {
		return zop.AccessTokenTypeJWT
	}
	return zop.AccessTokenTypeBearer
}

func (c *client) format() string {
	if c.c.AccessTokenFormat != "" {
		return c.c.AccessTokenFormat
	}
	return c.lifetimes.format
}

// idTokenAlg is the algorithm of the client's ID tokens: its registered
// id_token_signed_response_alg, else def (keys.algorithm).
func (c *client) idTokenAlg(def string) string {
	if c.c.IDTokenSigningAlg != "" {
		return c.c.IDTokenSigningAlg
	}
	return def
}

func (c *client) IDTokenLifetime() time.Duration {
	if c.c.IDTokenLifetime > 0 {
		return c.c.IDTokenLifetime
	}
	return c.lifetimes.idToken
}

func (c *client) accessTokenLifetime() time.Duration {
	if c.c.AccessTokenLifetime > 0 {
		return c.c.AccessTokenLifetime
	}
	return c.lifetimes.accessToken
}

func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// IsScopeAllowed admits our own scopes beyond the standard ones.
func (c *client) IsScopeAllowed(scope string) bool { return scope == ScopePrivacy }

// IDTokenUserinfoClaimsAssertion puts email/name in the ID token too, which
// most relying parties expect.
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }

// lifetimes are the provider-wide token defaults.
type lifetimes struct {
	accessToken time.Duration
	idToken     time.Duration
	format      string
}

// clientCache keeps clients for a short time: the token endpoint looks a
// client up on every request. Only hits are cached, so a client created
// with the CLI while the server runs is usable at once; a deleted or
// changed client is seen at once on PostgreSQL (ForgetClients on the
// change notification) and within ttl otherwise.
type clientCache struct {
	store interface {
		GetClient(ctx context.Context, id string) (storage.Client, error)
	}
	ttl time.Duration
	now func() time.Time

	mu      sync.RWMutex
	entries map[string]clientEntry
}

type clientEntry struct {
	c       storage.Client
	fetched time.Time
}

const maxCachedClients = 10000

func (cc *clientCache) get(ctx context.Context, id string) (storage.Client, error) {
	now := cc.now()
	cc.mu.RLock()
	e, ok := cc.entries[id]
	cc.mu.RUnlock()
	if ok && now.Sub(e.fetched) < cc.ttl && !e.fetched.After(now) {
		return e.c, nil
	}
	c, err := cc.store.GetClient(ctx, id)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			cc.forget(id)
		}
		return storage.Client{}, err
	}
	cc.mu.Lock()
	if cc.entries == nil || len(cc.entries) >= maxCachedClients {
		cc.entries = map[string]clientEntry{}
	}
	cc.entries[id] = clientEntry{c: c, fetched: now}
	cc.mu.Unlock()
	return c, nil
}

// clear forgets every client (another instance changed one).
func (cc *clientCache) clear() {
	cc.mu.Lock()
	cc.entries = nil
	cc.mu.Unlock()
}

func (cc *clientCache) forget(id string) {
	cc.mu.Lock()
	delete(cc.entries, id)
	cc.mu.Unlock()
}

// secretMatches compares a presented client secret with the stored HMAC in
// constant time.
func secretMatches(kr *keyring.Keyring, c storage.Client, secret string) bool {
	if c.Public || len(c.SecretHash) == 0 || secret == "" {
		return false
	}
	return kr.Verify(keyring.PurposeClient, []byte(secret), c.SecretHash)
}

// HashClientSecret is what the CLI and the config sync store for a secret.
func HashClientSecret(kr *keyring.Keyring, secret string) []byte {
	return kr.MACString(keyring.PurposeClient, secret)
}
