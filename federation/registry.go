package federation

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
)

// SecretAD is the additional data the client secret of organisation
// orgID is sealed with (keyring.Seal / Open). Every writer (config sync,
// CLI) and the registry use it.
func SecretAD(orgID string) []byte { return []byte("org-secret:" + orgID) }

// SealSecret seals an organisation's client secret for storage.
func SealSecret(kr *keyring.Keyring, orgID, secret string) []byte {
	return kr.Seal([]byte(secret), SecretAD(orgID))
}

// Options configure a Registry.
type Options struct {
	Keyring *keyring.Keyring
	// RedirectURL is our callback, registered at every upstream
	// ("<issuer>/federation/callback").
	RedirectURL string
	// Timeout bounds every upstream call; default 10 s.
	Timeout time.Duration
	// TTL is how long a discovery stays cached; default 1 h.
	TTL    time.Duration
	Now    func() time.Time
	Logger *slog.Logger
}

// Registry opens organisations' connectors lazily and caches them. It is
// safe for concurrent use; every instance keeps its own cache (discovery
// is public metadata, nothing secret is shared).
type Registry struct {
	o      Options
	mu     sync.Mutex
	client *http.Client
	cache  map[string]*entry
}

type entry struct {
	fingerprint  string
	discoveredAt time.Time
	conn         *oidcConnector
}

// NewRegistry returns an empty registry.
func NewRegistry(o Options) *Registry {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.TTL <= 0 {
		o.TTL = time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Registry{o: o, client: NewHTTPClient(o.Timeout), cache: map[string]*entry{}}
}

// SetTimeout changes the per-call timeout and forgets every cached
// connector (tests shorten it to exercise an upstream that hangs).
func (r *Registry) SetTimeout(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.o.Timeout = d
	r.client = NewHTTPClient(d)
	r.cache = map[string]*entry{}
}

// Forget drops an organisation's cached connector.
func (r *Registry) Forget(orgID string) {
	r.mu.Lock()
	delete(r.cache, orgID)
	r.mu.Unlock()
}

// Connector returns org's connector, discovering the upstream when it is
// not cached, stale, or the organisation changed.
func (r *Registry) Connector(ctx context.Context, org storage.Organization) (Connector, error) {
	fp := fingerprint(org)
	now := r.o.Now()
	r.mu.Lock()
	e := r.cache[org.ID]
	client, timeout := r.client, r.o.Timeout
	r.mu.Unlock()
	if e != nil && e.fingerprint == fp && now.Sub(e.discoveredAt) < r.o.TTL && !now.Before(e.discoveredAt) {
		return e.conn, nil
	}
	secret, err := r.o.Keyring.Open(org.ClientSecretSealed, SecretAD(org.ID))
	if err != nil {
		return nil, fail(KindConfig, "client secret", fmt.Errorf("organisation %s: cannot open the sealed client secret: %w", org.Name, err))
	}
	c, err := discover(ctx, OIDCConfig{
		Issuer: org.Issuer, ClientID: org.ClientID, ClientSecret: string(secret),
		RedirectURL: r.o.RedirectURL, Scopes: org.Scopes,
		Claims:     ClaimMapping{Email: org.ClaimEmail, Name: org.ClaimName, Groups: org.ClaimGroups},
		HTTPClient: client, Timeout: timeout, Now: r.o.Now,
	})
	if err != nil {
		// Nothing cached: the next sign-in tries again.
		r.Forget(org.ID)
		return nil, err
	}
	id := org.ID
	c.onUnreachable = func() { r.Forget(id) }
	r.mu.Lock()
	r.cache[org.ID] = &entry{fingerprint: fp, discoveredAt: now, conn: c}
	r.mu.Unlock()
	r.o.Logger.Debug("federation: discovered upstream", "org", org.Name, "issuer", org.Issuer)
	return c, nil
}

// fingerprint changes when anything the connector is built from changes.
func fingerprint(o storage.Organization) string {
	var b bytes.Buffer
	for _, s := range []string{o.Issuer, o.ClientID, o.ClaimEmail, o.ClaimName, o.ClaimGroups} {
		fmt.Fprintf(&b, "%d:%s|", len(s), s)
	}
	for _, s := range o.Scopes {
		fmt.Fprintf(&b, "%d:%s|", len(s), s)
	}
	b.Write(o.ClientSecretSealed)
	return b.String()
}

// NewHTTPClient is an HTTP client for upstream calls: every phase of a
// request is bounded, so a hanging IdP cannot hold a sign-in (or a
// goroutine) forever.
func NewHTTPClient(timeout time.Duration) *http.Client {
	dial := timeout
	if dial > 5*time.Second {
		dial = 5 * time.Second
	}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: dial, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   dial,
			ResponseHeaderTimeout: timeout,
			ExpectContinueTimeout: time.Second,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
		},
	}
}
