package op

import (
	"context"
	"errors"
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
