package admin

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/latchkey/latchkey/config"
	"github.com/latchkey/latchkey/federation"
	"github.com/latchkey/latchkey/op"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
)

// ClientFromConfig maps a validated config client (its defaults filled
// by config.Validate) onto the stored one, hashing its secret. The
// config sync, the CLI and the API all go through it.
func ClientFromConfig(kr *keyring.Keyring, c config.Client, source string, now time.Time) storage.Client {
	sc := storage.Client{
		ID: c.ID, Name: c.Name, Public: c.Public, AppType: c.Type, RedirectURIs: c.RedirectURIs,
		PostLogoutRedirectURIs: c.PostLogoutRedirectURIs, GrantTypes: c.GrantTypes,
		AccessTokenFormat: c.AccessTokenFormat, AccessTokenLifetime: c.AccessTokenLifetime.Std(),
		IDTokenLifetime: c.IDTokenLifetime.Std(), DefaultACR: c.DefaultACR, AdminAccess: c.Admin, Source: source,
		JWKS: string(c.JWKS), JWKSURI: c.JWKSURI, Scopes: c.Scopes,
		BackchannelLogoutURI: c.BackchannelLogoutURI, BackchannelLogoutSessionRequired: c.BackchannelLogoutSessionRequired,
		ThirdParty: c.ThirdParty, RequirePAR: c.RequirePushedAuthorizationRequests, DPoPBound: c.DPoPBoundAccessTokens,
		IDTokenSigningAlg: c.IDTokenSignedResponseAlg, LogoURI: c.LogoURI, CreatedAt: now, UpdatedAt: now,
	}
	if !c.Public && c.Secret != "" {
		// A client with only keys (private_key_jwt) stores no secret.
		sc.SecretHash = op.HashClientSecret(kr, c.Secret)
	}
	return sc
}

// configOf is the config form of a stored client, for validation; the
// secret is a stand-in (the stored one is a hash).
func configOf(c storage.Client) config.Client {
	cc := config.Client{ID: c.ID, Name: c.Name, Public: c.Public, Type: c.AppType, RedirectURIs: c.RedirectURIs,
		PostLogoutRedirectURIs: c.PostLogoutRedirectURIs, GrantTypes: c.GrantTypes, AccessTokenFormat: c.AccessTokenFormat,
		AccessTokenLifetime: config.Duration(c.AccessTokenLifetime), IDTokenLifetime: config.Duration(c.IDTokenLifetime),
		DefaultACR: c.DefaultACR, Admin: c.AdminAccess,
		JWKS: config.JWKS(c.JWKS), JWKSURI: c.JWKSURI, Scopes: c.Scopes,
		BackchannelLogoutURI: c.BackchannelLogoutURI, BackchannelLogoutSessionRequired: c.BackchannelLogoutSessionRequired,
		ThirdParty: c.ThirdParty, RequirePushedAuthorizationRequests: c.RequirePAR, DPoPBoundAccessTokens: c.DPoPBound,
		IDTokenSignedResponseAlg: c.IDTokenSigningAlg, LogoURI: c.LogoURI}
	if !c.Public && len(c.SecretHash) > 0 {
		cc.Secret = strings.Repeat("x", 32)
	}
	return cc
}

// validateClient checks a client with the configuration file's rules (one
// place: config.Validate) and returns it with its defaults filled in.
func (s *Service) validateClient(cc config.Client) (config.Client, error) {
	check := *s.d.Config
	check.Clients = []config.Client{cc}
	check.Organizations = nil
	if err := check.Validate(); err != nil {
		return cc, invalid("%s", strings.ReplaceAll(err.Error(), "clients[0].", ""))
	}
	return check.Clients[0], nil
}

// CreateClient validates and stores a client. A confidential client
// without a secret gets a generated one, returned once.
func (s *Service) CreateClient(ctx context.Context, a Actor, cc config.Client) (storage.Client, string, error) {
	generated := ""
	if !cc.Public && cc.Secret == "" && cc.JWKS == "" && cc.JWKSURI == "" {
		// A client with keys (private_key_jwt) needs no secret.
		cc.Secret = keyring.NewToken()
		generated = cc.Secret
	}
	if cc.Type == "" {
		cc.Type = config.ClientWeb
		if cc.Public {
			cc.Type = config.ClientNative
		}
	}
	cc, err := s.validateClient(cc)
	if err != nil {
		return storage.Client{}, "", err
	}
	source := "cli"
	if a.ClientID != "" {
		source = "api"
	}
	c := ClientFromConfig(s.d.Keyring, cc, source, s.d.Now())
	if err := s.d.Store.CreateClient(ctx, c); err != nil {
		return storage.Client{}, "", storeErr(err, "client "+c.ID+" exists already")
	}
	s.audit(ctx, a, storage.AuditEvent{Event: "client.created", Details: map[string]string{"client": c.ID, "admin": c.AdminAccess}})
	return c, generated, nil
}

// Client finds a client.
func (s *Service) Client(ctx context.Context, id string) (storage.Client, error) {
	c, err := s.d.Store.GetClient(ctx, id)
	return c, storeErr(err, "client "+id)
}

// Clients lists the clients.
func (s *Service) Clients(ctx context.Context) ([]storage.Client, error) {
	return s.d.Store.ListClients(ctx)
}

// ClientChange is a change of a client; nil fields stay.
type ClientChange struct {
	Name                   *string
	RedirectURIs           *[]string
	PostLogoutRedirectURIs *[]string
	GrantTypes             *[]string
	AccessTokenFormat      *string
	DefaultACR             *string
	Admin                  *string
	// IDTokenSignedResponseAlg: "" goes back to keys.algorithm.
	IDTokenSignedResponseAlg *string
	// LogoURI: "" removes the logo.
	LogoURI *string
}

// errBuiltin: the demo and account clients are the server's own.
func errBuiltin(id string) error {
	return invalid("client %s is built in and cannot be changed or deleted", id)
}

// UpdateClient changes a client, checked with the same rules as a new one.
func (s *Service) UpdateClient(ctx context.Context, a Actor, id string, ch ClientChange) (storage.Client, error) {
	now := s.d.Now()
	c, err := s.d.Store.UpdateClient(ctx, id, func(c *storage.Client) error {
		if c.Source == "builtin" {
			return errBuiltin(id)
		}
		cc := configOf(*c)
		if ch.Name != nil {
			cc.Name = *ch.Name
		}
		if ch.RedirectURIs != nil {
			cc.RedirectURIs = *ch.RedirectURIs
		}
		if ch.PostLogoutRedirectURIs != nil {
			cc.PostLogoutRedirectURIs = *ch.PostLogoutRedirectURIs
		}
		if ch.GrantTypes != nil {
			cc.GrantTypes = *ch.GrantTypes
		}
		if ch.AccessTokenFormat != nil {
			cc.AccessTokenFormat = *ch.AccessTokenFormat
		}
		if ch.DefaultACR != nil {
			cc.DefaultACR = *ch.DefaultACR
		}
		if ch.Admin != nil {
			cc.Admin = *ch.Admin
		}
		if ch.LogoURI != nil {
			cc.LogoURI = *ch.LogoURI
		}
		if ch.IDTokenSignedResponseAlg != nil {
			cc.IDTokenSignedResponseAlg = *ch.IDTokenSignedResponseAlg
		}
		cc, err := s.validateClient(cc)
		if err != nil {
			return err
		}
		next := ClientFromConfig(s.d.Keyring, cc, c.Source, c.CreatedAt)
		next.SecretHash, next.UpdatedAt = c.SecretHash, now
		*c = next
		return nil
	})
	if err != nil {
		var ie *InvalidError
		if errors.As(err, &ie) {
			return storage.Client{}, err
		}
		return storage.Client{}, storeErr(err, "client "+id)
	}
	s.audit(ctx, a, storage.AuditEvent{Event: "client.updated", Details: map[string]string{"client": id}})
	return c, nil
}

// RotateClientSecret gives a confidential client a new generated secret
// (the old one stops working at once); the secret is returned once.
func (s *Service) RotateClientSecret(ctx context.Context, a Actor, id string) (string, error) {
	secret := keyring.NewToken()
	now := s.d.Now()
	_, err := s.d.Store.UpdateClient(ctx, id, func(c *storage.Client) error {
		switch {
		case c.Source == "builtin":
			return errBuiltin(id)
		case c.Public:
			return invalid("client %s is public: it has no secret", id)
		}
		c.SecretHash, c.UpdatedAt = op.HashClientSecret(s.d.Keyring, secret), now
		return nil
	})
	if err != nil {
		var ie *InvalidError
		if errors.As(err, &ie) {
			return "", err
		}
		return "", storeErr(err, "client "+id)
	}
	s.audit(ctx, a, storage.AuditEvent{Event: "client.secret_rotated", Details: map[string]string{"client": id}})
	return secret, nil
}

// DeleteClient deletes a client (its tokens are refused from then on).
func (s *Service) DeleteClient(ctx context.Context, a Actor, id string) (storage.Client, error) {
	c, err := s.d.Store.GetClient(ctx, id)
	if err != nil {
		return c, storeErr(err, "client "+id)
	}
	if c.Source == "builtin" {
		return c, errBuiltin(id)
	}
	if err := s.d.Store.DeleteClient(ctx, id); err != nil {
		return c, storeErr(err, "client "+id)
	}
	s.audit(ctx, a, storage.AuditEvent{Event: "client.deleted", Details: map[string]string{"client": id}})
	return c, nil
}

// --- organisations ---

// OrgFromConfig maps a validated config organisation onto the stored one
// under id, sealing the client secret with that id.
func OrgFromConfig(kr *keyring.Keyring, co config.Organization, id string, now time.Time) storage.Organization {
	return storage.Organization{
		ID: id, Name: co.Name, Domains: co.Domains, Issuer: co.Issuer, ClientID: co.ClientID,
		ClientSecretSealed: federation.SealSecret(kr, id, co.ClientSecret),
		Scopes:             co.Scopes, ClaimEmail: co.Claims.Email, ClaimName: co.Claims.Name, ClaimGroups: co.Claims.Groups,
		TrustUpstreamMFA: co.TrustUpstreamMFA, JITProvisioning: co.JITEnabled(),
		CreatedAt: now, UpdatedAt: now,
	}
}

func (s *Service) validateOrg(co config.Organization) (config.Organization, error) {
	check := *s.d.Config
	check.Clients = nil
	check.Organizations = []config.Organization{co}
	if err := check.Validate(); err != nil {
		return co, invalid("%s", strings.ReplaceAll(err.Error(), "organizations[0].", ""))
	}
	return check.Organizations[0], nil
}

// CreateOrg validates and stores an organisation, its upstream secret
// sealed.
func (s *Service) CreateOrg(ctx context.Context, a Actor, co config.Organization) (storage.Organization, error) {
	co, err := s.validateOrg(co)
	if err != nil {
		return storage.Organization{}, err
	}
	o := OrgFromConfig(s.d.Keyring, co, storage.NewID(), s.d.Now())
	o.Source = "cli"
	if a.ClientID != "" {
		o.Source = "api"
	}
	o, err = s.d.Store.CreateOrganization(ctx, o)
	if err != nil {
		return o, storeErr(err, "an organisation named "+co.Name+", or owning one of the domains "+strings.Join(co.Domains, ", ")+", exists already")
	}
	s.audit(ctx, a, storage.AuditEvent{Event: "org.created", Details: map[string]string{"org": o.Name, "domains": strings.Join(o.Domains, ",")}})
	return o, nil
}

// Org finds an organisation by id or, failing that, by name.
func (s *Service) Org(ctx context.Context, idOrName string) (storage.Organization, error) {
	o, err := s.d.Store.GetOrganization(ctx, idOrName)
	if errors.Is(err, storage.ErrNotFound) {
		o, err = s.d.Store.GetOrganizationByName(ctx, idOrName)
	}
	return o, storeErr(err, "organisation "+idOrName)
}

// Orgs lists the organisations.
func (s *Service) Orgs(ctx context.Context) ([]storage.Organization, error) {
	return s.d.Store.ListOrganizations(ctx)
}

// OrgChange is a change of an organisation; nil fields stay. A new
// client secret is sealed again.
type OrgChange struct {
	Domains          *[]string
	Issuer           *string
	ClientID         *string
	ClientSecret     *string
	Scopes           *[]string
	ClaimEmail       *string
	ClaimName        *string
	ClaimGroups      *string
	TrustUpstreamMFA *bool
	JIT              *bool
}

// UpdateOrg changes an organisation, checked with the file's rules.
func (s *Service) UpdateOrg(ctx context.Context, a Actor, id string, ch OrgChange) (storage.Organization, error) {
	now := s.d.Now()
	o, err := s.d.Store.UpdateOrganization(ctx, id, func(o *storage.Organization) error {
		jit := o.JITProvisioning
		co := config.Organization{Name: o.Name, Domains: o.Domains, Issuer: o.Issuer, ClientID: o.ClientID,
			ClientSecret: "unchanged", Scopes: o.Scopes, TrustUpstreamMFA: o.TrustUpstreamMFA, JIT: &jit,
			Claims: config.Claims{Email: o.ClaimEmail, Name: o.ClaimName, Groups: o.ClaimGroups}}
		set := func(dst *string, v *string) {
			if v != nil {
				*dst = *v
			}
		}
		if ch.Domains != nil {
			co.Domains = slices.Clone(*ch.Domains)
		}
		if ch.Scopes != nil {
			co.Scopes = *ch.Scopes
		}
		set(&co.Issuer, ch.Issuer)
		set(&co.ClientID, ch.ClientID)
		set(&co.ClientSecret, ch.ClientSecret)
		set(&co.Claims.Email, ch.ClaimEmail)
		set(&co.Claims.Name, ch.ClaimName)
		set(&co.Claims.Groups, ch.ClaimGroups)
		if ch.TrustUpstreamMFA != nil {
			co.TrustUpstreamMFA = *ch.TrustUpstreamMFA
		}
		if ch.JIT != nil {
			co.JIT = ch.JIT
		}
		co, err := s.validateOrg(co)
		if err != nil {
			return err
		}
		next := OrgFromConfig(s.d.Keyring, co, o.ID, o.CreatedAt)
		if ch.ClientSecret == nil {
			next.ClientSecretSealed = o.ClientSecretSealed
		}
		next.Source, next.UpdatedAt = o.Source, now
		*o = next
		return nil
	})
	if err != nil {
		var ie *InvalidError
		if errors.As(err, &ie) {
			return o, err
		}
		return o, storeErr(err, "organisation "+id)
	}
	s.audit(ctx, a, storage.AuditEvent{Event: "org.updated", Details: map[string]string{"org": o.Name}})
	return o, nil
}

// DeleteOrg deletes an organisation; its users keep their accounts but
// cannot sign in until it exists again.
func (s *Service) DeleteOrg(ctx context.Context, a Actor, idOrName string) (storage.Organization, error) {
	o, err := s.Org(ctx, idOrName)
	if err != nil {
		return o, err
	}
	if err := s.d.Store.DeleteOrganization(ctx, o.ID); err != nil {
		return o, storeErr(err, "organisation "+idOrName)
	}
	s.audit(ctx, a, storage.AuditEvent{Event: "org.deleted", Details: map[string]string{"org": o.Name}})
	return o, nil
}
