package op

// The endpoints that take a token: userinfo (and, through
// AuthenticateResource, the account API), introspection (RFC 7662) and
// revocation (RFC 7009). Ours, so that their errors are what RFC 6750,
// 7662 and 7009 say, and so that DPoP-bound tokens work at them.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/latchkey/latchkey/storage"
)

const (
	userinfoPath   = "/userinfo"
	introspectPath = "/oauth/introspect"
	revokePath     = "/revoke"
)

// ResourceError is a refused request to a protected resource (RFC 6750
// §3, RFC 9449 §7.1): its status, its error code ("" when the request
// carried no token at all) and the challenge to send.
type ResourceError struct {
	Status      int
	Code        string
	Description string
	dpop        bool   // challenge with DPoP (the token is DPoP-bound, or the proof failed)
	nonce       string // a fresh DPoP-Nonce to send
	realm       string
}

func (e *ResourceError) Error() string { return e.Code + ": " + e.Description }

// SetHeaders sets the WWW-Authenticate challenges (and DPoP-Nonce).
// Without an error code both schemes are offered (RFC 9449 §7.1).
func (e *ResourceError) SetHeaders(h http.Header) {
	if e.Status >= 500 {
		// Our failure, not a challenge: nothing about the token (a
		// relying party must not take it for an invalid one).
		if e.Status == http.StatusServiceUnavailable {
			setRetryAfter(h)
		}
		h.Set("Cache-Control", "no-store")
		return
	}
	bearer := `Bearer realm="` + e.realm + `"`
	dpop := `DPoP realm="` + e.realm + `", algs="` + algList(dpopAlgs) + `"`
	if e.Code != "" {
		params := `, error="` + e.Code + `"`
		if e.Description != "" {
			params += `, error_description="` + strings.ReplaceAll(e.Description, `"`, `'`) + `"`
		}
		if e.Code == "insufficient_scope" {
			params += `, scope="` + ScopePrivacy + `"`
		}
		bearer += params
		dpop += params
	}
	switch {
	case e.Code == "":
		h.Add("WWW-Authenticate", bearer)
		h.Add("WWW-Authenticate", dpop)
	case e.dpop:
		h.Add("WWW-Authenticate", dpop)
	default:
		h.Add("WWW-Authenticate", bearer)
	}
	if e.nonce != "" {
		h.Set(dpopNonceHeader, e.nonce)
	}
	h.Set("Cache-Control", "no-store")
}

func (o *OP) resourceError(status int, code, desc string, dpop bool) *ResourceError {
	return &ResourceError{Status: status, Code: code, Description: desc, dpop: dpop, realm: o.opts.Issuer}
}

// AuthenticateResource checks the access token of a request to a
// protected resource (our userinfo and account API): Authorization:
// Bearer, or DPoP with a proof of the token's key (RFC 9449 §7), or (at
// userinfo) a form access_token. The token must be a user's, live, and
// the user enabled. Client-credentials tokens are refused.
func (o *OP) AuthenticateResource(r *http.Request) (AccessTokenInfo, *ResourceError) {
	return o.authenticateResource(r, false)
}

func (o *OP) authenticateResource(r *http.Request, formOK bool) (AccessTokenInfo, *ResourceError) {
	ctx := r.Context()
	scheme, token := "", ""
	if auth := r.Header.Get("Authorization"); auth != "" {
		s, t, ok := strings.Cut(auth, " ")
		switch {
		case !ok || strings.TrimSpace(t) == "":
			return AccessTokenInfo{}, o.resourceError(http.StatusBadRequest, "invalid_request", "malformed Authorization header", false)
		case strings.EqualFold(s, tokenTypeBearer):
			scheme = tokenTypeBearer
		case strings.EqualFold(s, tokenTypeDPoP):
			scheme = tokenTypeDPoP
		default:
			return AccessTokenInfo{}, o.resourceError(http.StatusUnauthorized, "", "", false)
		}
		token = strings.TrimSpace(t)
	}
	if formOK && r.Method == http.MethodPost {
		if f := r.PostForm.Get("access_token"); f != "" {
			if token != "" {
				return AccessTokenInfo{}, o.resourceError(http.StatusBadRequest, "invalid_request", "send the token one way only", false)
			}
			scheme, token = tokenTypeBearer, f
		}
	}
	if token == "" {
		// RFC 6750 §3.1: no credentials, no error code.
		return AccessTokenInfo{}, o.resourceError(http.StatusUnauthorized, "", "", false)
	}
	at, err := o.lookupAccessToken(ctx, token)
	if err != nil {
		if !errors.Is(err, ErrInvalidToken) {
			return AccessTokenInfo{}, o.internalResourceError(r, "access token lookup", err)
		}
		return AccessTokenInfo{}, o.resourceError(http.StatusUnauthorized, "invalid_token", "the access token is invalid, expired or revoked", scheme == tokenTypeDPoP)
	}
	if at.UserID == at.ClientID && at.FamilyID == "" && at.SessionID == "" {
		return AccessTokenInfo{}, o.resourceError(http.StatusUnauthorized, "invalid_token", "a client credentials token has no user", scheme == tokenTypeDPoP)
	}
	switch {
	case at.JKT != "" && scheme != tokenTypeDPoP:
		return AccessTokenInfo{}, o.resourceError(http.StatusUnauthorized, "invalid_token", "the access token is DPoP-bound: send it with the DPoP scheme and a proof", true)
	case at.JKT == "" && scheme == tokenTypeDPoP:
		return AccessTokenInfo{}, o.resourceError(http.StatusUnauthorized, "invalid_token", "the access token is not DPoP-bound: send it with the Bearer scheme", false)
	case at.JKT != "":
		nonce := o.dpopNonce()
		proof, derr, err := o.checkDPoP(ctx, r, o.endpointURL(r.URL.Path), token)
		if err != nil {
			return AccessTokenInfo{}, o.internalResourceError(r, "resource: DPoP proof", err)
		}
		if derr != nil {
			e := o.resourceError(http.StatusUnauthorized, derr.code, derr.description, true)
			e.nonce = nonce
			return AccessTokenInfo{}, e
		}
		if proof.jkt != at.JKT {
			e := o.resourceError(http.StatusUnauthorized, "invalid_token", "the DPoP proof is not made with the token's key", true)
			e.nonce = nonce
			return AccessTokenInfo{}, e
		}
	}
	u, err := o.storage.store.GetUser(ctx, at.UserID)
	if err != nil || u.Disabled {
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return AccessTokenInfo{}, o.internalResourceError(r, "resource: user", err)
		}
		return AccessTokenInfo{}, o.resourceError(http.StatusUnauthorized, "invalid_token", "the access token is no longer valid", at.JKT != "")
	}
	return AccessTokenInfo{Subject: at.UserID, ClientID: at.ClientID, Scopes: at.Scopes, SessionID: at.SessionID, Scheme: tokenType(at.JKT)}, nil
}

// lookupAccessToken finds the stored, live access token behind token
// (opaque or JWT). ErrInvalidToken when it is not one of ours, expired
// or revoked.
func (o *OP) lookupAccessToken(ctx context.Context, token string) (storage.AccessToken, error) {
	id, sub, jkt, ok := o.decodeAccessToken(ctx, token)
	if !ok {
		return storage.AccessToken{}, ErrInvalidToken
	}
	at, err := o.storage.liveAccessToken(ctx, id, sub)
	if err != nil {
		var oe *oidc.Error
		if errors.As(err, &oe) && oe.ErrorType == oidc.ServerError {
			return storage.AccessToken{}, err
		}
		return storage.AccessToken{}, ErrInvalidToken
	}
	if strings.HasPrefix(id, ccJWTPrefix) {
		at.JKT = jkt // not stored: the JWT says
	}
	return at, nil
}

// decodeAccessToken opens an opaque token or verifies a JWT one, giving
// its id, subject and (JWT) cnf.jkt.
func (o *OP) decodeAccessToken(ctx context.Context, token string) (id, sub, jkt string, ok bool) {
	if token == "" || len(token) > 4096 {
		return "", "", "", false
	}
	if plain, err := o.provider.Crypto().Decrypt(token); err == nil {
		id, sub, ok = strings.Cut(plain, ":")
		return id, sub, "", ok && !strings.Contains(sub, ":")
	}
	ctx = zop.ContextWithIssuer(ctx, o.opts.Issuer)
	claims, err := zop.VerifyAccessToken[*oidc.AccessTokenClaims](ctx, token, o.provider.AccessTokenVerifier(ctx))
	if err != nil {
		return "", "", "", false
	}
	if cnf, _ := claims.Claims["cnf"].(map[string]any); cnf != nil {
		jkt, _ = cnf["jkt"].(string)
	}
	return claims.JWTID, claims.Subject, jkt, claims.JWTID != ""
}

// userinfo serves GET and POST /userinfo (OIDC Core §5.3).
func (o *OP) userinfo(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		tokenError(w, http.StatusMethodNotAllowed, "invalid_request", "use GET or POST", false)
		return
	}
	info, rerr := o.authenticateResource(r, true)
	if rerr != nil {
		writeResourceError(w, rerr)
		return
	}
	u, err := o.storage.store.GetUser(r.Context(), info.Subject)
	if err != nil {
		writeResourceError(w, o.internalResourceError(r, "userinfo: user", err))
		return
	}
	ui := new(oidc.UserInfo)
	setUserClaims(ui, u, info.Scopes)
	b, err := json.Marshal(ui)
	if err != nil {
		writeResourceError(w, o.resourceError(http.StatusInternalServerError, "server_error", "", false))
		return
	}
	setNoStoreJSON(w.Header())
	_, _ = w.Write(b)
}

func writeResourceError(w http.ResponseWriter, e *ResourceError) {
	e.SetHeaders(w.Header())
	code := e.Code
	if code == "" {
		code = "invalid_token"
	}
	setNoStoreJSON(w.Header())
	w.WriteHeader(e.Status)
	b := append([]byte(`{"error":`), appendJSONString(nil, code)...)
	if e.Description != "" {
		b = append(b, `,"error_description":`...)
		b = appendJSONString(b, e.Description)
	}
	_, _ = w.Write(append(b, '}'))
}

// introspect serves POST /oauth/introspect (RFC 7662): an authenticated
// client learns about its own tokens (or access tokens naming it in
// their audience): access tokens and, active with scope and client, its
// live refresh tokens. Anything else is {"active": false}.
func (o *OP) introspect(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		tokenError(w, http.StatusMethodNotAllowed, "invalid_request", "the introspection endpoint takes POST", false)
		return
	}
	ctx := r.Context()
	c, fail := o.authenticateClient(ctx, r, introspectPath, false)
	if fail != nil {
		fail.write(w)
		return
	}
	token := r.PostForm.Get("token")
	if token == "" {
		tokenError(w, http.StatusBadRequest, "invalid_request", "token missing", false)
		return
	}
	resp, err := o.introspectToken(ctx, c, token, r.PostForm.Get("token_type_hint"))
	if err != nil {
		o.internalError(w, r, "introspect", err)
		return
	}
	b, err := json.Marshal(resp)
	if err != nil {
		tokenError(w, http.StatusInternalServerError, "server_error", "", false)
		return
	}
	setNoStoreJSON(w.Header())
	_, _ = w.Write(b)
}

var inactive = map[string]any{"active": false}

func (o *OP) introspectToken(ctx context.Context, c *client, token, hint string) (map[string]any, error) {
	tryAccess := func() (map[string]any, error) {
		at, err := o.lookupAccessToken(ctx, token)
		if err != nil {
			if errors.Is(err, ErrInvalidToken) {
				return nil, nil
			}
			return nil, err
		}
		if at.ClientID != c.c.ID && !slices.Contains(at.Audience, c.c.ID) {
			return inactive, nil
		}
		resp := map[string]any{
			"active": true, "client_id": at.ClientID, "sub": at.UserID, "token_type": tokenType(at.JKT),
			"iss": o.opts.Issuer,
		}
		if len(at.Scopes) > 0 {
			resp["scope"] = strings.Join(at.Scopes, " ")
		}
		if len(at.Audience) > 0 {
			resp["aud"] = at.Audience
		}
		if !at.ExpiresAt.IsZero() {
			resp["exp"], resp["iat"] = at.ExpiresAt.Unix(), at.CreatedAt.Unix()
		}
		if at.JKT != "" {
			resp["cnf"] = map[string]string{"jkt": at.JKT}
		}
		if at.UserID != at.ClientID || at.SessionID != "" || at.FamilyID != "" {
			u, err := o.storage.store.GetUser(ctx, at.UserID)
			if err != nil || u.Disabled {
				return inactive, nil
			}
			resp["username"] = u.Email
		}
		return resp, nil
	}
	tryRefresh := func() (map[string]any, error) {
		rt, err := o.storage.refreshToken(ctx, token)
		if err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				return nil, nil
			}
			return nil, err
		}
		if rt.ClientID != c.c.ID {
			return inactive, nil
		}
		now := o.opts.Now()
		if o.storage.refreshRefusal(rt, now) != "" {
			return inactive, nil
		}
		u, err := o.storage.store.GetUser(ctx, rt.UserID)
		if err != nil || u.Disabled {
			return inactive, nil
		}
		resp := map[string]any{
			"active": true, "client_id": rt.ClientID, "sub": rt.UserID, "username": u.Email,
			"scope": strings.Join(rt.Scopes, " "), "iat": rt.CreatedAt.Unix(), "iss": o.opts.Issuer,
		}
		if exp := o.storage.refreshExpiry(rt); !exp.IsZero() {
			resp["exp"] = exp.Unix()
		}
		if rt.JKT != "" {
			resp["cnf"] = map[string]string{"jkt": rt.JKT}
		}
		return resp, nil
	}
	order := []func() (map[string]any, error){tryAccess, tryRefresh}
	if hint == "refresh_token" {
		order[0], order[1] = tryRefresh, tryAccess
	}
	for _, try := range order {
		resp, err := try()
		if err != nil || resp != nil {
			return resp, err
		}
	}
	return inactive, nil
}

// revoke serves POST /revoke (RFC 7009). A token of another client is
// refused (§2.1: the client is told), an unknown one is not an error
// (§2.2); revoking a refresh token ends its family and the family's
// access tokens.
func (o *OP) revoke(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		tokenError(w, http.StatusMethodNotAllowed, "invalid_request", "the revocation endpoint takes POST", false)
		return
	}
	ctx := r.Context()
	c, fail := o.authenticateClient(ctx, r, revokePath, true)
	if fail != nil {
		fail.write(w)
		return
	}
	token := r.PostForm.Get("token")
	if token == "" {
		tokenError(w, http.StatusBadRequest, "invalid_request", "token missing", false)
		return
	}
	s := o.storage
	now := o.opts.Now()
	notYours := func() {
		tokenError(w, http.StatusBadRequest, "invalid_grant", "the token was issued to another client", false)
	}
	if id, sub, _, ok := o.decodeAccessToken(ctx, token); ok {
		owner := sub // a client-credentials JWT is the client's own
		if !strings.HasPrefix(id, ccJWTPrefix) {
			at, err := s.store.GetAccessToken(ctx, id)
			if err != nil {
				if !errors.Is(err, storage.ErrNotFound) {
					o.internalError(w, r, "revoke: access token", err)
					return
				}
				w.WriteHeader(http.StatusOK)
				return
			}
			owner = at.ClientID
		}
		if owner != c.c.ID {
			notYours()
			return
		}
		if oe := s.RevokeToken(ctx, id, sub, c.c.ID); oe != nil {
			o.internalError(w, r, "revoke: access token", oe)
			return
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	rt, err := s.refreshToken(ctx, token)
	switch {
	case errors.Is(err, storage.ErrNotFound):
	case err != nil:
		o.internalError(w, r, "revoke: refresh token", err)
		return
	case rt.ClientID != c.c.ID:
		notYours()
		return
	default:
		if err := s.store.RevokeRefreshTokens(ctx, storage.TokenFilter{FamilyID: rt.FamilyID, ClientID: c.c.ID}, now); err != nil {
			o.internalError(w, r, "revoke: refresh family", err)
			return
		}
		s.audit(ctx, storage.AuditEvent{UserID: rt.UserID, ClientID: c.c.ID, Event: "token.revoked", Reason: "refresh token revoked by the client"})
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// refreshExpiry is when a refresh token dies if unused: its idle limit or
// its family's cap, whichever comes first (zero: never).
func (s *opStorage) refreshExpiry(rt storage.RefreshToken) time.Time {
	var exp time.Time
	if s.opts.RefreshIdle > 0 {
		exp = rt.LastUsedAt.Add(s.opts.RefreshIdle)
	}
	if !rt.ExpiresAt.IsZero() && (exp.IsZero() || rt.ExpiresAt.Before(exp)) {
		exp = rt.ExpiresAt
	}
	return exp
}
