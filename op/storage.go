package op

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
)

// Token id prefixes. Storage ids never contain '_', so a prefix cannot
// collide with a row id.
const (
	refreshIDPrefix = "rt_"    // GetRefreshTokenInfo → RevokeToken
	ccJWTPrefix     = "ccjwt_" // client-credentials JWT access tokens: no row
)

// opStorage adapts *storage.Store to zitadel's op.Storage and its optional
// interfaces. It holds no request state; everything lives in the database.
type opStorage struct {
	store    *storage.Store
	kr       *keyring.Keyring
	keys     *keyManager
	clients  *clientCache
	opts     Options
	life     lifetimes
	now      func() time.Time
	logger   *slog.Logger
	loginURL string
	devices  deviceExtras
}

var (
	_ zop.Storage                        = (*opStorage)(nil)
	_ zop.CanSetUserinfoFromRequest      = (*opStorage)(nil)
	_ zop.CanGetPrivateClaimsFromRequest = (*opStorage)(nil)
	_ zop.CanTerminateSessionFromRequest = (*opStorage)(nil)
)

// errInvalidGrant is what every refused code or refresh token answers, with
// the real cause kept for the log only.
func errInvalidGrant(cause string) error {
	return oidc.ErrInvalidGrant().WithParent(errors.New(cause))
}

// serverError marks a genuine fault (answered with 500). Text the
// database cannot hold is the client's fault: invalid_request (text.go).
func serverError(ctx context.Context, err error) error {
	noteUnavailable(ctx, err)
	if errors.Is(err, storage.ErrInvalidText) {
		return oidc.ErrInvalidRequest().WithDescription(msgInvalidText).WithParent(err)
	}
	return oidc.ErrServerError().WithParent(err)
}

func (s *opStorage) Health(ctx context.Context) error { return s.store.Health(ctx) }

// --- clients ---

func (s *opStorage) client(ctx context.Context, id string) (*client, error) {
	if id == "" {
		return nil, oidc.ErrInvalidClient().WithDescription("client_id missing")
	}
	c, err := s.clients.get(ctx, id)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil, oidc.ErrInvalidClient().WithDescription("unknown client")
		}
		return nil, serverError(ctx, err)
	}
	return &client{c: c, loginURL: s.loginURL, lifetimes: s.life}, nil
}

func (s *opStorage) GetClientByClientID(ctx context.Context, id string) (zop.Client, error) {
	return s.client(ctx, id)
}

// authenticate finds a confidential client by its id and secret.
func (s *opStorage) authenticate(ctx context.Context, id, secret string) (*client, error) {
	c, err := s.client(ctx, id)
	if err != nil {
		var oe *oidc.Error
		if errors.As(err, &oe) && oe.ErrorType == oidc.InvalidClient {
			s.logger.WarnContext(ctx, "client authentication failed", "client_id", id, "reason", oe.Description)
		}
		return nil, err
	}
	if !secretMatches(s.kr, c.c, secret) {
		s.logger.WarnContext(ctx, "client authentication failed", "client_id", id, "reason", "wrong or missing secret")
		return nil, oidc.ErrInvalidClient().WithDescription("invalid client credentials")
	}
	return c, nil
}

func (s *opStorage) AuthorizeClientIDSecret(ctx context.Context, id, secret string) error {
	_, err := s.authenticate(ctx, id, secret)
	return err
}

// --- auth requests ---

func (s *opStorage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, hintSubject string) (zop.AuthRequest, error) {
	c, err := s.client(ctx, req.ClientID)
	if err != nil {
		return nil, err
	}
	if !validAuthRequestText(req) {
		return nil, oidc.ErrInvalidRequest().WithDescription(msgInvalidText)
	}
	// checkAuthRequest (authorize.go) applied every rule before this;
	// PKCE is checked again here because a request without it must never
	// be stored for a public client.
	if err := pkceRule(c, req); err != nil {
		return nil, err
	}
	now := s.now()
	ar := storage.AuthRequest{
		ID:                  storage.NewID(),
		ClientID:            req.ClientID,
		RedirectURI:         req.RedirectURI,
		Scopes:              []string(req.Scopes),
		State:               req.State,
		Nonce:               req.Nonce,
		ResponseType:        string(req.ResponseType),
		ResponseMode:        string(req.ResponseMode),
		CodeChallenge:       req.CodeChallenge,
		CodeChallengeMethod: string(req.CodeChallengeMethod),
		Prompt:              []string(req.Prompt),
		ACRValues:           []string(req.ACRValues),
		LoginHint:           req.LoginHint,
		IDTokenHintSubject:  hintSubject,
		CreatedAt:           now,
		ExpiresAt:           now.Add(s.opts.AuthRequestLifetime),
	}
	if req.MaxAge != nil {
		v := int64(*req.MaxAge)
		ar.MaxAge = &v
	}
	for _, l := range req.UILocales {
		ar.UILocales = append(ar.UILocales, l.String())
	}
	if err := s.store.CreateAuthRequest(ctx, ar); err != nil {
		return nil, serverError(ctx, err)
	}
	return &authRequest{ar: ar}, nil
}

func (s *opStorage) AuthRequestByID(ctx context.Context, id string) (zop.AuthRequest, error) {
	ar, err := s.store.GetAuthRequest(ctx, id)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil, oidc.ErrInvalidRequest().WithDescription("unknown or expired sign-in request")
		}
		return nil, serverError(ctx, err)
	}
	if s.now().After(ar.ExpiresAt) {
		return nil, oidc.ErrInvalidRequest().WithDescription("unknown or expired sign-in request")
	}
	return &authRequest{ar: ar}, nil
}

// SaveAuthCode stores the digest of the code zitadel minted (an encryption
// of the request id) with our short lifetime.
func (s *opStorage) SaveAuthCode(ctx context.Context, id, code string) error {
	hash := s.kr.MACString(keyring.PurposeAuthCode, code)
	if err := s.store.SaveAuthCode(ctx, id, hash, s.now().Add(s.opts.AuthCodeLifetime)); err != nil {
		return serverError(ctx, err)
	}
	return nil
}

// AuthRequestByCode finds the request of a code without redeeming it: PKCE
// and client authentication run after this, and a failed attempt must not
// burn the legitimate client's code. Redemption is atomic, in
// CreateAccessToken / CreateAccessAndRefreshTokens.
func (s *opStorage) AuthRequestByCode(ctx context.Context, code string) (zop.AuthRequest, error) {
	ar, err := s.store.GetAuthRequestByCode(ctx, s.kr.MACString(keyring.PurposeAuthCode, code))
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil, errInvalidGrant("unknown code")
		}
		return nil, serverError(ctx, err)
	}
	now := s.now()
	if !ar.CodeUsedAt.IsZero() {
		// RFC 6749 §4.1.2: a code used twice revokes what it issued.
		s.revokeIssuedFrom(ctx, ar, now)
		return nil, errInvalidGrant("code reused")
	}
	if now.After(ar.CodeExpiresAt) || !ar.Done {
		return nil, errInvalidGrant("code expired")
	}
	return &authRequest{ar: ar}, nil
}

// redeem claims the code of an auth request; exactly one caller wins.
func (s *opStorage) redeem(ctx context.Context, a *authRequest) error {
	_, err := s.store.RedeemAuthCode(ctx, a.ar.CodeHash, s.now())
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrConflict):
		s.revokeIssuedFrom(ctx, a.ar, s.now())
		return errInvalidGrant("code reused")
	case errors.Is(err, storage.ErrNotFound):
		return errInvalidGrant("code expired")
	}
	return serverError(ctx, err)
}

// revokeIssuedFrom revokes the refresh family (and its access tokens) that
// an auth request's code produced: its family id is the request id.
func (s *opStorage) revokeIssuedFrom(ctx context.Context, ar storage.AuthRequest, now time.Time) {
	if err := s.store.RevokeRefreshFamily(ctx, ar.ID, now); err != nil && !errors.Is(err, storage.ErrNotFound) {
		s.logger.Error("revoke tokens of a reused code", "err", err, "auth_request", ar.ID)
	}
	s.audit(ctx, storage.AuditEvent{UserID: ar.UserID, ClientID: ar.ClientID, Event: "code.reused", Reason: "authorization code presented twice; its tokens were revoked"})
}

// DeleteAuthRequest keeps the row: its used code is the tombstone that
// detects replays until the request expires and the sweeper removes it.
func (s *opStorage) DeleteAuthRequest(context.Context, string) error { return nil }

// --- tokens ---

func (s *opStorage) CreateAccessToken(ctx context.Context, req zop.TokenRequest) (string, time.Time, error) {
	now := s.now()
	switch r := req.(type) {
	case *authRequest:
		if err := s.redeem(ctx, r); err != nil {
			return "", time.Time{}, err
		}
		c, err := s.client(ctx, r.ar.ClientID)
		if err != nil {
			return "", time.Time{}, err
		}
		return s.newAccessToken(ctx, c, storage.AccessToken{
			ClientID: r.ar.ClientID, UserID: r.ar.UserID, SessionID: r.ar.SessionID,
			Scopes: r.ar.Scopes, Audience: r.GetAudience(), FamilyID: r.ar.ID, JKT: r.accessJKT,
		}, now)
	case *zop.DeviceAuthorizationState:
		c, err := s.client(ctx, r.ClientID)
		if err != nil {
			return "", time.Time{}, err
		}
		x := s.devices.get(r)
		return s.newAccessToken(ctx, c, storage.AccessToken{
			ClientID: r.ClientID, UserID: r.Subject, SessionID: x.sessionID,
			Scopes: r.Scopes, Audience: r.GetAudience(), JKT: x.accessJKT,
		}, now)
	}
	return "", time.Time{}, oidc.ErrUnsupportedGrantType()
}

func (s *opStorage) newAccessToken(ctx context.Context, c *client, at storage.AccessToken, now time.Time) (string, time.Time, error) {
	at.ID = storage.NewSortableID(now)
	at.CreatedAt = now
	at.ExpiresAt = now.Add(c.accessTokenLifetime())
	if err := s.store.CreateAccessToken(ctx, at); err != nil {
		return "", time.Time{}, serverError(ctx, err)
	}
	return at.ID, at.ExpiresAt, nil
}

func (s *opStorage) CreateAccessAndRefreshTokens(ctx context.Context, req zop.TokenRequest, current string) (string, string, time.Time, error) {
	now := s.now()
	var (
		c     *client
		first storage.RefreshToken
		err   error
	)
	var accessJKT string
	switch r := req.(type) {
	case *authRequest:
		if err := s.redeem(ctx, r); err != nil {
			return "", "", time.Time{}, err
		}
		if c, err = s.client(ctx, r.ar.ClientID); err != nil {
			return "", "", time.Time{}, err
		}
		first = storage.RefreshToken{
			FamilyID: r.ar.ID, ClientID: r.ar.ClientID, UserID: r.ar.UserID, SessionID: r.ar.SessionID,
			Scopes: r.ar.Scopes, GrantedScopes: r.ar.Scopes, Audience: r.GetAudience(),
			AMR: r.ar.AMR, ACR: r.ar.ACR, AuthTime: r.ar.AuthTime, SecondFactorAt: r.ar.SecondFactorAt,
			JKT: r.refreshJKT,
		}
		accessJKT = r.accessJKT
	case *zop.DeviceAuthorizationState:
		x := s.devices.get(r)
		if c, err = s.client(ctx, r.ClientID); err != nil {
			return "", "", time.Time{}, err
		}
		// The device grant's second factor is not recorded separately:
		// re-verification counts from the sign-in (stricter, never laxer).
		first = storage.RefreshToken{
			FamilyID: storage.NewID(), ClientID: r.ClientID, UserID: r.Subject, SessionID: x.sessionID,
			Scopes: r.Scopes, GrantedScopes: r.Scopes, Audience: r.GetAudience(),
			AMR: r.AMR, ACR: x.acr, AuthTime: r.AuthTime, JKT: x.refreshJKT,
		}
		accessJKT = x.accessJKT
	case *refreshRequest:
		// The token endpoint hands over the client it authenticated.
		if c = r.client; c == nil || c.c.ID != r.rt.ClientID {
			if c, err = s.client(ctx, r.rt.ClientID); err != nil {
				return "", "", time.Time{}, err
			}
		}
		raw := NewRefreshToken(s.kr, r.rt.FamilyID)
		next := r.rt
		next.ID = storage.NewSortableID(now)
		next.TokenHash = s.kr.MACString(keyring.PurposeRefresh, raw)
		next.Scopes = r.scopes
		next.CreatedAt = now
		next.LastUsedAt = now
		next.UsedAt = time.Time{}
		next.RevokedAt = time.Time{}
		at := storage.AccessToken{ID: storage.NewSortableID(now), ClientID: next.ClientID, UserID: next.UserID,
			SessionID: next.SessionID, Scopes: next.Scopes, Audience: next.Audience,
			CreatedAt: now, ExpiresAt: now.Add(c.accessTokenLifetime()), JKT: r.accessJKT}
		if _, err = s.store.RotateRefreshTokenWithAccess(ctx, r.rt.ID, now, s.opts.RefreshReuseGrace, next, at); err != nil {
			if errors.Is(err, storage.ErrConflict) {
				// Lost a race with another use of the same token: reuse.
				s.reuseDetected(ctx, r.rt, now)
				return "", "", time.Time{}, errInvalidGrant("refresh token reused")
			}
			return "", "", time.Time{}, serverError(ctx, err)
		}
		atID, exp := at.ID, at.ExpiresAt
		return atID, raw, exp, err
	default:
		return "", "", time.Time{}, oidc.ErrUnsupportedGrantType()
	}
	raw := NewRefreshToken(s.kr, first.FamilyID)
	first.ID = storage.NewSortableID(now)
	first.TokenHash = s.kr.MACString(keyring.PurposeRefresh, raw)
	first.CreatedAt, first.FamilyCreatedAt, first.LastUsedAt = now, now, now
	if s.opts.RefreshTokenLifetime > 0 {
		first.ExpiresAt = now.Add(s.opts.RefreshTokenLifetime)
	}
	created, err := s.store.CreateRefreshToken(ctx, first)
	if err != nil {
		return "", "", time.Time{}, serverError(ctx, err)
	}
	atID, exp, err := s.newAccessToken(ctx, c, storage.AccessToken{
		ClientID: created.ClientID, UserID: created.UserID, SessionID: created.SessionID,
		RefreshTokenID: created.ID, FamilyID: created.FamilyID, Scopes: created.Scopes, Audience: created.Audience,
		JKT: accessJKT,
	}, now)
	return atID, raw, exp, err
}

// refreshRequest is a validated refresh token about to be rotated.
type refreshRequest struct {
	rt     storage.RefreshToken
	user   storage.User
	scopes []string
	// accessJKT binds the new access token to a DPoP key.
	accessJKT string
	// client is the authenticated client of the request (nil: look it up).
	client *client
}

var _ zop.RefreshTokenRequest = (*refreshRequest)(nil)

func (r *refreshRequest) GetAMR() []string             { return r.rt.AMR }
func (r *refreshRequest) GetAudience() []string        { return r.rt.Audience }
func (r *refreshRequest) GetAuthTime() time.Time       { return r.rt.AuthTime }
func (r *refreshRequest) GetClientID() string          { return r.rt.ClientID }
func (r *refreshRequest) GetScopes() []string          { return r.scopes }
func (r *refreshRequest) GetSubject() string           { return r.rt.UserID }
func (r *refreshRequest) SetCurrentScopes(sc []string) { r.scopes = sc }

// TokenRequestByRefreshToken validates a presented refresh token: unknown,
// reused, revoked, idle, expired, re-verification due or user disabled all
// answer invalid_grant (the library maps every error to it).
func (s *opStorage) TokenRequestByRefreshToken(ctx context.Context, raw string) (zop.RefreshTokenRequest, error) {
	family, hash := RefreshFamilyOf(raw), s.kr.MACString(keyring.PurposeRefresh, raw)
	// The token and its user in one statement; what is missing is told
	// apart below.
	rt, u, err := s.store.GetRefreshGrant(ctx, family, hash)
	now := s.now()
	if err == nil {
		return s.refreshRequest(ctx, rt, &u, now)
	}
	if !errors.Is(err, storage.ErrNotFound) {
		return nil, serverError(ctx, err)
	}
	rt, err = s.store.GetRefreshTokenByHash(ctx, family, hash)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			// Used tokens are compacted away (storage.Sweep); a token the
			// OP issued (its tag, refreshtoken.go) of a live family that is
			// no longer stored was rotated away long ago: reuse all the
			// same. A value it never issued ends nothing.
			if !refreshIssued(s.kr, raw) {
				return nil, errInvalidGrant("unknown refresh token")
			}
			if head, ferr := s.store.LiveRefreshFamily(ctx, family); ferr == nil {
				s.reuseDetected(ctx, head, now)
				return nil, errInvalidGrant("refresh token reused")
			} else if !errors.Is(ferr, storage.ErrNotFound) {
				return nil, serverError(ctx, ferr)
			}
			return nil, errInvalidGrant("unknown refresh token")
		}
		return nil, serverError(ctx, err)
	}
	switch u, err := s.store.GetUser(ctx, rt.UserID); {
	case err == nil:
		return s.refreshRequest(ctx, rt, &u, now)
	case errors.Is(err, storage.ErrNotFound):
		return s.refreshRequest(ctx, rt, nil, now)
	default:
		return nil, serverError(ctx, err)
	}
}

// refreshRequest checks a found refresh token and its user (nil: the user
// is gone) at now. Reuse is reuse whether or not the user still exists.
func (s *opStorage) refreshRequest(ctx context.Context, rt storage.RefreshToken, u *storage.User, now time.Time) (*refreshRequest, error) {
	if !rt.UsedAt.IsZero() && !s.withinReuseGrace(rt, now) {
		s.reuseDetected(ctx, rt, now)
		return nil, errInvalidGrant("refresh token reused")
	}
	if why := s.refreshRefusal(rt, now); why != "" {
		return nil, errInvalidGrant(why)
	}
	switch {
	case u == nil:
		return nil, errInvalidGrant("user gone")
	case u.Disabled:
		return nil, errInvalidGrant("user disabled")
	}
	return &refreshRequest{rt: rt, user: *u, scopes: rt.Scopes}, nil
}

// refreshRefusal says why a refresh token may not be used at now ("" if
// it may): used, revoked, idle, expired, or its second factor due (the
// grant and introspection share this rule).
func (s *opStorage) refreshRefusal(rt storage.RefreshToken, now time.Time) string {
	switch {
	case !rt.UsedAt.IsZero() && !s.withinReuseGrace(rt, now):
		return "refresh token reused"
	case !rt.RevokedAt.IsZero():
		return "refresh token revoked"
	case s.opts.RefreshIdle > 0 && now.Sub(rt.LastUsedAt) > s.opts.RefreshIdle:
		return "refresh token unused too long"
	case !rt.ExpiresAt.IsZero() && now.After(rt.ExpiresAt):
		return "refresh token expired"
	case s.opts.ReverifyDue(rt.SecondFactorAt, rt.AuthTime, rt.AMR, now):
		// The sign-in policy's rule (Options.ReverifyDue): a grant lives
		// on its second factor, and a time from the future fails closed.
		return "second factor re-verification due"
	}
	return ""
}

// withinReuseGrace: a used token presented again within the grace of its
// first use (RFC 9700 §4.14.2) — a retry after a lost answer, or two
// refreshes at once — rotates again into a sibling instead of revoking
// the grant. The store decides it again, atomically, at the rotation.
func (s *opStorage) withinReuseGrace(rt storage.RefreshToken, now time.Time) bool {
	g := s.opts.RefreshReuseGrace
	return g > 0 && rt.RevokedAt.IsZero() && !rt.UsedAt.IsZero() && !rt.UsedAt.After(now) && now.Sub(rt.UsedAt) <= g
}

// refreshToken finds a presented refresh token in the store, whatever its
// state: by the family its value names and its digest.
func (s *opStorage) refreshToken(ctx context.Context, raw string) (storage.RefreshToken, error) {
	return s.store.GetRefreshTokenByHash(ctx, RefreshFamilyOf(raw), s.kr.MACString(keyring.PurposeRefresh, raw))
}

func (s *opStorage) reuseDetected(ctx context.Context, rt storage.RefreshToken, now time.Time) {
	s.opts.Metrics.RefreshReuse()
	s.logger.WarnContext(ctx, "refresh token reused: grant revoked", "client_id", rt.ClientID, "user", rt.UserID)
	if err := s.store.RevokeRefreshFamily(ctx, rt.FamilyID, now); err != nil {
		s.logger.Error("revoke reused refresh family", "err", err, "family", rt.FamilyID)
	}
	s.audit(ctx, storage.AuditEvent{UserID: rt.UserID, ClientID: rt.ClientID, Event: "refresh.reused",
		Reason: "a rotated refresh token was presented again; the whole grant was revoked"})
}

// --- sessions, revocation ---

// TerminateSession is unused: TerminateSessionFromRequest replaces it.
func (s *opStorage) TerminateSession(context.Context, string, string) error { return nil }

// TerminateSessionFromRequest hands the validated end-session request to
// our /logout page, which can clear the browser cookie (storage cannot).
func (s *opStorage) TerminateSessionFromRequest(ctx context.Context, req *zop.EndSessionRequest) (string, error) {
	now := s.now()
	l, err := s.store.CreateLogoutRequest(ctx, storage.LogoutRequest{
		UserID: req.UserID, ClientID: req.ClientID, RedirectURI: req.RedirectURI,
		CreatedAt: now, ExpiresAt: now.Add(15 * time.Minute),
	})
	if err != nil {
		return "", serverError(ctx, err)
	}
	return zop.IssuerFromContext(ctx) + s.opts.LogoutPath + "?id=" + l.ID, nil
}

func (s *opStorage) GetRefreshTokenInfo(ctx context.Context, clientID, raw string) (string, string, error) {
	rt, err := s.refreshToken(ctx, raw)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return "", "", serverError(ctx, err)
	}
	if err != nil || rt.ClientID != clientID {
		// Unknown, or another client's token: not ours to revoke (RFC 7009
		// §2.1 says answer as if it were invalid).
		return "", "", zop.ErrInvalidRefreshToken
	}
	return rt.UserID, refreshIDPrefix + rt.FamilyID, nil
}

func (s *opStorage) RevokeToken(ctx context.Context, tokenOrID, userID, clientID string) *oidc.Error {
	now := s.now()
	if id, ok := strings.CutPrefix(tokenOrID, refreshIDPrefix); ok {
		// The family id came from GetRefreshTokenInfo, which checked the
		// client; filtering by client again keeps a forged "rt_…" string
		// from another client harmless.
		if err := s.store.RevokeRefreshTokens(ctx, storage.TokenFilter{FamilyID: id, ClientID: clientID}, now); err != nil {
			noteUnavailable(ctx, err)
			return oidc.ErrServerError().WithParent(err)
		}
		s.audit(ctx, storage.AuditEvent{UserID: userID, ClientID: clientID, Event: "token.revoked", Reason: "refresh token revoked by the client"})
		return nil
	}
	if strings.HasPrefix(tokenOrID, ccJWTPrefix) {
		if userID != clientID {
			return nil
		}
		// Record the revocation so that introspection answers inactive.
		err := s.store.CreateAccessToken(ctx, storage.AccessToken{ID: tokenOrID, ClientID: clientID, UserID: clientID,
			CreatedAt: now, ExpiresAt: now.Add(s.life.accessToken * 4), RevokedAt: now})
		if err != nil && !errors.Is(err, storage.ErrConflict) {
			noteUnavailable(ctx, err)
			return oidc.ErrServerError().WithParent(err)
		}
		return nil
	}
	at, err := s.store.GetAccessToken(ctx, tokenOrID)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		// Not "unknown": the revocation must not be reported done.
		noteUnavailable(ctx, err)
		return oidc.ErrServerError().WithParent(err)
	}
	if err != nil || at.ClientID != clientID {
		return nil // unknown tokens are not an error (RFC 7009 §2.2)
	}
	if err := s.store.RevokeAccessToken(ctx, at.ID, now); err != nil {
		noteUnavailable(ctx, err)
		return oidc.ErrServerError().WithParent(err)
	}
	return nil
}

// --- keys ---

// SigningKey is the key zitadel signs a token with (the code and device
// grants' tokens, token.go): the algorithm the context names
// (withSigningAlg: the access-token key for an access token, the
// client's for an ID token), else the default ID-token key.
func (s *opStorage) SigningKey(ctx context.Context) (zop.SigningKey, error) {
	ks, err := s.keys.get(ctx)
	if err != nil {
		return nil, serverError(ctx, err)
	}
	if alg, ok := ctx.Value(signingAlgKey{}).(string); ok {
		if k := ks.forAlg(alg); k != nil {
			return k, nil
		}
	}
	return ks.idDefault, nil
}

// signingAlgKey carries the algorithm SigningKey gives zitadel.
type signingAlgKey struct{}

// withSigningAlg names the algorithm of the next token zitadel signs.
func withSigningAlg(ctx context.Context, alg string) context.Context {
	return context.WithValue(ctx, signingAlgKey{}, alg)
}

// SignatureAlgorithms are the ID tokens' (discovery's
// id_token_signing_alg_values_supported): the default, then what clients
// may register.
func (s *opStorage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	var out []jose.SignatureAlgorithm
	for _, a := range s.keys.idTokenAlgs() {
		out = append(out, jose.SignatureAlgorithm(a))
	}
	return out, nil
}

func (s *opStorage) KeySet(ctx context.Context) ([]zop.Key, error) {
	ks, err := s.keys.get(ctx)
	if err != nil {
		return nil, serverError(ctx, err)
	}
	return ks.public, nil
}

// --- claims ---

// SetUserinfoFromScopes is deprecated in zitadel; SetUserinfoFromRequest
// does the work.
func (s *opStorage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest fills the ID token: user claims by scope, and acr
// and sid, which zitadel leaves out of refreshed and device ID tokens.
func (s *opStorage) SetUserinfoFromRequest(ctx context.Context, ui *oidc.UserInfo, req zop.IDTokenRequest, scopes []string) error {
	var (
		u   storage.User
		err error
	)
	switch r := req.(type) {
	case *refreshRequest:
		u = r.user
		ui.AppendClaims("acr", r.rt.ACR)
		if r.rt.SessionID != "" {
			ui.AppendClaims("sid", r.rt.SessionID)
		}
	case *authRequest:
		if u, err = s.store.GetUser(ctx, r.ar.UserID); err != nil {
			return serverError(ctx, err)
		}
		if r.ar.SessionID != "" {
			ui.AppendClaims("sid", r.ar.SessionID)
		}
	case *zop.DeviceAuthorizationState:
		if u, err = s.store.GetUser(ctx, r.Subject); err != nil {
			return serverError(ctx, err)
		}
		x := s.devices.get(r)
		ui.AppendClaims("acr", x.acr)
		if x.sessionID != "" {
			ui.AppendClaims("sid", x.sessionID)
		}
		s.devices.forget(r) // the ID token is the last thing made
	default:
		if u, err = s.store.GetUser(ctx, req.GetSubject()); err != nil {
			return serverError(ctx, err)
		}
	}
	setUserClaims(ui, u, scopes)
	return nil
}

// SetUserinfoFromToken answers /userinfo for an access token.
func (s *opStorage) SetUserinfoFromToken(ctx context.Context, ui *oidc.UserInfo, tokenID, subject, _ string) error {
	at, err := s.liveAccessToken(ctx, tokenID, subject)
	if err != nil {
		return err
	}
	if at.UserID == at.ClientID && at.SessionID == "" && at.FamilyID == "" {
		return oidc.ErrInvalidRequest().WithDescription("a client credentials token has no user")
	}
	u, err := s.store.GetUser(ctx, at.UserID)
	if err != nil || u.Disabled {
		return oidc.ErrAccessDenied().WithDescription("token is no longer valid")
	}
	setUserClaims(ui, u, at.Scopes)
	return nil
}

// liveAccessToken loads an access token and checks it is unexpired, not
// revoked, and the subject matches.
func (s *opStorage) liveAccessToken(ctx context.Context, tokenID, subject string) (storage.AccessToken, error) {
	invalid := oidc.ErrAccessDenied().WithDescription("token is not active")
	now := s.now()
	if strings.HasPrefix(tokenID, ccJWTPrefix) {
		// Not stored unless revoked; the JWT's own exp was verified.
		if _, err := s.store.GetAccessToken(ctx, tokenID); !errors.Is(err, storage.ErrNotFound) {
			return storage.AccessToken{}, invalid
		}
		return storage.AccessToken{ID: tokenID, ClientID: subject, UserID: subject}, nil
	}
	at, err := s.store.GetAccessToken(ctx, tokenID)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return storage.AccessToken{}, invalid
		}
		return storage.AccessToken{}, serverError(ctx, err)
	}
	if at.UserID != subject || !at.RevokedAt.IsZero() || now.After(at.ExpiresAt) {
		return storage.AccessToken{}, invalid
	}
	return at, nil
}

// SetIntrospectionFromToken answers introspection. Only the token's own
// client or a client named in its audience may learn about it.
func (s *opStorage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, callerID string) error {
	at, err := s.liveAccessToken(ctx, tokenID, subject)
	if err != nil {
		return err
	}
	if at.ClientID != callerID && !slices.Contains(at.Audience, callerID) {
		return oidc.ErrAccessDenied()
	}
	resp.Scope = at.Scopes
	resp.ClientID = at.ClientID
	resp.Subject = at.UserID
	resp.TokenType = oidc.BearerToken
	resp.Audience = at.Audience
	if !at.ExpiresAt.IsZero() {
		resp.Expiration = oidc.FromTime(at.ExpiresAt)
		resp.IssuedAt = oidc.FromTime(at.CreatedAt)
	}
	if at.UserID != at.ClientID || at.SessionID != "" || at.FamilyID != "" {
		if u, err := s.store.GetUser(ctx, at.UserID); err == nil {
			if u.Disabled {
				return oidc.ErrAccessDenied()
			}
			resp.Username = u.Email
		}
	}
	return nil
}

func (s *opStorage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

// GetPrivateClaimsFromRequest adds scope to JWT access tokens (zitadel
// leaves it out; RFC 9068 §2.2.3 has it).
// The cnf claim (RFC 9449 §6.1) binds a DPoP-bound one to its key.
func (s *opStorage) GetPrivateClaimsFromRequest(_ context.Context, req zop.TokenRequest, _ []string) (map[string]any, error) {
	claims := map[string]any{}
	if sc := req.GetScopes(); len(sc) > 0 {
		claims["scope"] = strings.Join(sc, " ")
	}
	var jkt string
	switch r := req.(type) {
	case *authRequest:
		jkt = r.accessJKT
	case *zop.DeviceAuthorizationState:
		jkt = s.devices.get(r).accessJKT
	}
	if jkt != "" {
		claims["cnf"] = map[string]any{"jkt": jkt}
	}
	if len(claims) == 0 {
		return nil, nil
	}
	return claims, nil
}

// GetKeyByIDAndClientID serves private_key_jwt and the JWT-bearer grant;
// neither is offered (discovery does not list them), so both are refused.
func (s *opStorage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, oidc.ErrInvalidClient().WithDescription("private_key_jwt is not supported")
}

// ValidateJWTProfileScopes refuses the JWT-bearer grant zitadel always
// enables.
func (s *opStorage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, oidc.ErrUnauthorizedClient().WithDescription("the JWT bearer grant is not supported")
}

func (s *opStorage) audit(ctx context.Context, e storage.AuditEvent) {
	if e.At.IsZero() {
		e.At = s.now()
	}
	if err := s.store.CreateAuditEvent(ctx, e); err != nil {
		s.logger.Error("audit event", "err", err, "event", e.Event)
	}
}

// setUserClaims maps a user onto the standard claims by scope.
func setUserClaims(ui *oidc.UserInfo, u storage.User, scopes []string) {
	ui.Subject = u.ID
	for _, sc := range scopes {
		switch sc {
		case oidc.ScopeEmail:
			ui.Email = u.Email
			ui.EmailVerified = oidc.Bool(u.EmailVerified)
		case oidc.ScopeProfile:
			ui.Name = u.Name
			ui.PreferredUsername = u.Email
			if !u.UpdatedAt.IsZero() {
				ui.UpdatedAt = oidc.FromTime(u.UpdatedAt)
			}
		case ScopePrivacy:
			ui.AppendClaims("privacy", PrivacyClaim(u))
		}
	}
}

// PrivacyClaim is the privacy claim object (SPEC 7).
func PrivacyClaim(u storage.User) map[string]any {
	var updated int64
	if !u.PrivacyUpdatedAt.IsZero() {
		updated = u.PrivacyUpdatedAt.Unix()
	}
	return map[string]any{
		"required":            true,
		"product_improvement": u.PrivacyProductImprovement,
		"personalised_offers": u.PrivacyPersonalisedOffers,
		"updated_at":          updated,
	}
}
