package op

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/latchkey/latchkey/storage"
)

// AccessTokenInfo is what a resource (our own account API) learns from a
// valid access token.
type AccessTokenInfo struct {
	Subject   string
	ClientID  string
	Scopes    []string
	SessionID string
	// Scheme is how the token must be presented: "Bearer", or "DPoP" for a
	// DPoP-bound token.
	Scheme string
}

// ErrInvalidToken: the token is unknown, expired, revoked, or not ours.
var ErrInvalidToken = errors.New("op: invalid access token")

// VerifyAccessToken checks a bearer access token (opaque or JWT) the
// way userinfo does: it must decrypt or verify, exist unrevoked in
// storage (JWTs of users are stored too), be unexpired, and belong to a
// user that is still enabled. Client-credentials tokens have no user and
// DPoP-bound tokens need their proof (AuthenticateResource): both are
// refused.
func (o *OP) VerifyAccessToken(ctx context.Context, token string) (AccessTokenInfo, error) {
	at, err := o.lookupAccessToken(ctx, token)
	if err != nil {
		return AccessTokenInfo{}, err
	}
	// A client-credentials token has no user; a DPoP-bound token is
	// worthless without its proof, which only AuthenticateResource sees.
	if (at.UserID == at.ClientID && at.FamilyID == "" && at.SessionID == "") || at.JKT != "" {
		return AccessTokenInfo{}, ErrInvalidToken
	}
	u, err := o.storage.store.GetUser(ctx, at.UserID)
	if err != nil || u.Disabled {
		return AccessTokenInfo{}, ErrInvalidToken
	}
	return AccessTokenInfo{Subject: at.UserID, ClientID: at.ClientID, Scopes: at.Scopes, SessionID: at.SessionID, Scheme: tokenTypeBearer}, nil
}

// Scopes of the admin API (cmd/latchkey's /admin/v1). A client_credentials
// token carries them only when its client is granted them
// (storage.Client.AdminAccess); user sign-ins never get them (zitadel
// drops scopes a client's IsScopeAllowed refuses).
const (
	ScopeAdmin     = "latchkey:admin"      // read and change
	ScopeAdminRead = "latchkey:admin:read" // read only
)

// ccAllowedScopes are the scopes client_credentials may give this client:
// its configured scopes, and the admin API's as its AdminAccess grants.
func (c *client) ccAllowedScopes() []string {
	out := slices.Clone(c.c.Scopes)
	switch c.c.AdminAccess {
	case storage.AdminFull:
		out = append(out, ScopeAdmin, ScopeAdminRead)
	case storage.AdminRead:
		out = append(out, ScopeAdminRead)
	}
	return out
}

// ClientTokenInfo is what an API for services (the admin API) learns from
// a valid client_credentials access token.
type ClientTokenInfo struct {
	ClientID string
	Scopes   []string
}

// VerifyClientToken checks a client_credentials access token (opaque or
// JWT): it must decrypt or verify, be unexpired and unrevoked, be a
// client_credentials token (the client is its subject, no user behind
// it), and its client must still exist. Anything else is ErrInvalidToken.
func (o *OP) VerifyClientToken(ctx context.Context, token string) (ClientTokenInfo, error) {
	if token == "" || len(token) > 4096 {
		return ClientTokenInfo{}, ErrInvalidToken
	}
	ctx = zop.ContextWithIssuer(ctx, o.opts.Issuer)
	var info ClientTokenInfo
	if plain, err := o.provider.Crypto().Decrypt(token); err == nil {
		id, sub, ok := strings.Cut(plain, ":")
		if !ok || strings.Contains(sub, ":") {
			return ClientTokenInfo{}, ErrInvalidToken
		}
		at, err := o.storage.liveAccessToken(ctx, id, sub)
		if err != nil {
			var oe *oidc.Error
			if errors.As(err, &oe) && oe.ErrorType == oidc.ServerError {
				return ClientTokenInfo{}, err
			}
			return ClientTokenInfo{}, ErrInvalidToken
		}
		if at.UserID != at.ClientID || at.FamilyID != "" || at.SessionID != "" || at.RefreshTokenID != "" {
			return ClientTokenInfo{}, ErrInvalidToken // a user's token
		}
		if at.JKT != "" {
			return ClientTokenInfo{}, ErrInvalidToken // DPoP-bound: worthless as a bearer token
		}
		info = ClientTokenInfo{ClientID: at.ClientID, Scopes: at.Scopes}
	} else {
		claims, err := zop.VerifyAccessToken[*oidc.AccessTokenClaims](ctx, token, o.provider.AccessTokenVerifier(ctx))
		if err != nil || !strings.HasPrefix(claims.JWTID, ccJWTPrefix) || claims.Subject != claims.ClientID || claims.Claims["cnf"] != nil {
			return ClientTokenInfo{}, ErrInvalidToken
		}
		// A revoked client_credentials JWT is recorded by its id.
		if at, err := o.storage.store.GetAccessToken(ctx, claims.JWTID); err == nil && !at.RevokedAt.IsZero() {
			return ClientTokenInfo{}, ErrInvalidToken
		} else if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return ClientTokenInfo{}, err
		}
		info = ClientTokenInfo{ClientID: claims.ClientID, Scopes: claims.Scopes}
	}
	if _, err := o.storage.clients.get(ctx, info.ClientID); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return ClientTokenInfo{}, ErrInvalidToken
		}
		return ClientTokenInfo{}, err
	}
	return info, nil
}
