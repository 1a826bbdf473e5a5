package op

import (
	"context"
	"errors"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"
)

// AccessTokenInfo is what a resource (our own account API) learns from a
// valid access token.
type AccessTokenInfo struct {
	Subject   string
	ClientID  string
	Scopes    []string
	SessionID string
}

// ErrInvalidToken: the token is unknown, expired, revoked, or not ours.
var ErrInvalidToken = errors.New("op: invalid access token")

// VerifyAccessToken checks an access token (opaque or JWT) the way
// userinfo does: it must decrypt or verify, exist unrevoked in storage
// (JWTs of users are stored too), be unexpired, and belong to a user
// that is still enabled. Client-credentials tokens have no user and are
// refused.
func (o *OP) VerifyAccessToken(ctx context.Context, token string) (AccessTokenInfo, error) {
	if token == "" || len(token) > 4096 {
		return AccessTokenInfo{}, ErrInvalidToken
	}
	ctx = zop.ContextWithIssuer(ctx, o.opts.Issuer)
	var id, sub string
	if plain, err := o.provider.Crypto().Decrypt(token); err == nil {
		var ok bool
		if id, sub, ok = strings.Cut(plain, ":"); !ok || strings.Contains(sub, ":") {
			return AccessTokenInfo{}, ErrInvalidToken
		}
	} else {
		claims, err := zop.VerifyAccessToken[*oidc.AccessTokenClaims](ctx, token, o.provider.AccessTokenVerifier(ctx))
		if err != nil {
			return AccessTokenInfo{}, ErrInvalidToken
		}
		id, sub = claims.JWTID, claims.Subject
	}
	if strings.HasPrefix(id, ccJWTPrefix) {
		return AccessTokenInfo{}, ErrInvalidToken
	}
	at, err := o.storage.liveAccessToken(ctx, id, sub)
	if err != nil {
		var oe *oidc.Error
		if errors.As(err, &oe) && oe.ErrorType == oidc.ServerError {
			return AccessTokenInfo{}, err
		}
		return AccessTokenInfo{}, ErrInvalidToken
	}
	if at.UserID == at.ClientID && at.FamilyID == "" && at.SessionID == "" {
		return AccessTokenInfo{}, ErrInvalidToken
	}
	u, err := o.storage.store.GetUser(ctx, at.UserID)
	if err != nil || u.Disabled {
		return AccessTokenInfo{}, ErrInvalidToken
	}
	return AccessTokenInfo{Subject: at.UserID, ClientID: at.ClientID, Scopes: at.Scopes, SessionID: at.SessionID}, nil
}
