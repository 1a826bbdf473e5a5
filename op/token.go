package op

// The token endpoint (RFC 6749 §3.2), all of it ours: one client
// authentication for every grant (clientauth.go), one DPoP check
// (dpop.go), then the grant. The authorization_code and device_code
// grants still build their tokens with zitadel (CreateTokenResponse on
// our storage, so nonce, at_hash, c_hash and the user claims are its);
// client_credentials and refresh_token are ours end to end
// (clientcredentials.go, refresh.go).

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"
)

const tokenPath = "/oauth/token"

// Token types of a token response (RFC 6749 §7.1, RFC 9449 §5).
const (
	tokenTypeBearer = "Bearer"
	tokenTypeDPoP   = "DPoP"
)

// token serves POST /oauth/token (its form parsed).
func (o *OP) token(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	grant := r.PostForm.Get("grant_type")
	switch grant {
	case "":
		tokenError(w, http.StatusBadRequest, "invalid_request", "grant_type missing", false)
		return
	case GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials, GrantDeviceCode:
	default:
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "", false)
		return
	}
	// A public client names itself by client_id for every grant that
	// binds what it gets otherwise (PKCE, the refresh token, the device
	// code); client_credentials needs a confidential client.
	c, fail := o.authenticateClient(ctx, r, tokenPath, grant != GrantClientCredentials)
	if fail != nil {
		fail.write(w)
		return
	}
	if !c.hasGrant(grant) {
		tokenError(w, http.StatusBadRequest, "unauthorized_client", "the client may not use this grant", false)
		return
	}
	proof, ok := o.tokenDPoP(w, r, c)
	if !ok {
		return
	}
	switch grant {
	case GrantAuthorizationCode:
		o.codeGrant(w, r, c, proof)
	case GrantRefreshToken:
		o.refreshGrant(w, r, c, proof)
	case GrantClientCredentials:
		o.clientCredentials(w, r, c, proof)
	case GrantDeviceCode:
		o.deviceGrant(w, r, c, proof)
	}
}

// tokenDPoP checks the DPoP proof of a token request: none is fine
// unless the client must use DPoP (dpop_bound_access_tokens, RFC 9449
// §5.2). On failure it has answered (400, with a fresh nonce).
func (o *OP) tokenDPoP(w http.ResponseWriter, r *http.Request, c *client) (*dpopProof, bool) {
	if !hasDPoP(r) {
		if c.c.DPoPBound {
			w.Header().Set(dpopNonceHeader, o.dpopNonce())
			tokenError(w, http.StatusBadRequest, "invalid_dpop_proof", "this client must send a DPoP proof", false)
			return nil, false
		}
		return nil, true
	}
	w.Header().Set(dpopNonceHeader, o.dpopNonce())
	proof, derr, err := o.checkDPoP(r.Context(), r, o.endpointURL(tokenPath), "")
	if err != nil {
		o.internalError(w, r, "token: DPoP proof", err)
		return nil, false
	}
	if derr != nil {
		tokenError(w, http.StatusBadRequest, derr.code, derr.description, false)
		return nil, false
	}
	return proof, true
}

// bindings: what a token request's proof binds. Access tokens are bound
// to its key; refresh tokens only for public clients (RFC 9449 §5: a
// confidential client's refresh token is bound by its authentication).
func bindings(c *client, proof *dpopProof) (accessJKT, refreshJKT string) {
	if proof == nil {
		return "", ""
	}
	if c.c.Public {
		return proof.jkt, proof.jkt
	}
	return proof.jkt, ""
}

func tokenType(jkt string) string {
	if jkt != "" {
		return tokenTypeDPoP
	}
	return tokenTypeBearer
}

// codeGrant: the authorization_code grant (RFC 6749 §4.1.3, OIDC Core
// §3.1.3): the code, its client, its redirect_uri and its PKCE verifier;
// a failed attempt never burns the code.
func (o *OP) codeGrant(w http.ResponseWriter, r *http.Request, c *client, proof *dpopProof) {
	ctx := r.Context()
	s := o.storage
	code := r.PostForm.Get("code")
	if code == "" {
		tokenError(w, http.StatusBadRequest, "invalid_request", "code missing", false)
		return
	}
	req, err := s.AuthRequestByCode(ctx, code)
	if err != nil {
		o.grantError(w, r, err)
		return
	}
	ar := req.(*authRequest)
	if ar.ar.ClientID != c.c.ID {
		tokenError(w, http.StatusBadRequest, "invalid_grant", "", false)
		return
	}
	if r.PostForm.Get("redirect_uri") != ar.ar.RedirectURI {
		tokenError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri does not match the authorization request", false)
		return
	}
	if err := zop.AuthorizeCodeChallenge(r.PostForm.Get("code_verifier"), ar.GetCodeChallenge()); err != nil {
		o.grantError(w, r, err)
		return
	}
	if c.c.Public && ar.GetCodeChallenge() == nil {
		tokenError(w, http.StatusBadRequest, "invalid_request", "PKCE required", false)
		return
	}
	ar.accessJKT, ar.refreshJKT = bindings(c, proof)
	ctx = zop.ContextWithIssuer(ctx, o.opts.Issuer)
	resp, err := o.tokenResponse(ctx, ar, c, code, true)
	if err != nil {
		o.grantError(w, r, err)
		return
	}
	o.recordSessionClient(ctx, ar.ar.SessionID, c.c.ID, ar.ar.UserID)
	resp.TokenType = tokenType(ar.accessJKT)
	writeJSONToken(w, resp)
}

// deviceGrant: the device_code grant (RFC 8628 §3.4, §3.5). A code used
// twice is invalid_grant; zitadel would say access_denied.
func (o *OP) deviceGrant(w http.ResponseWriter, r *http.Request, c *client, proof *dpopProof) {
	ctx := r.Context()
	s := o.storage
	dc := r.PostForm.Get("device_code")
	if dc == "" {
		tokenError(w, http.StatusBadRequest, "invalid_request", "device_code missing", false)
		return
	}
	st, err := s.GetDeviceAuthorizatonState(ctx, c.c.ID, dc)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		tokenError(w, http.StatusBadRequest, "slow_down", "", false)
		return
	case errors.Is(err, errDeviceUsed):
		tokenError(w, http.StatusBadRequest, "invalid_grant", "the device code was used already", false)
		return
	case errors.Is(err, errDeviceUnknown):
		tokenError(w, http.StatusBadRequest, "invalid_grant", "unknown device code", false)
		return
	case err != nil:
		o.grantError(w, r, err)
		return
	case st.Denied:
		tokenError(w, http.StatusBadRequest, "access_denied", "the user denied the request", false)
		return
	case s.now().After(st.Expires):
		s.devices.forget(st)
		tokenError(w, http.StatusBadRequest, "expired_token", "", false)
		return
	case !st.Done:
		tokenError(w, http.StatusBadRequest, "authorization_pending", "", false)
		return
	}
	x := s.devices.get(st)
	x.accessJKT, x.refreshJKT = bindings(c, proof)
	s.devices.put(st, x)
	ctx = zop.ContextWithIssuer(ctx, o.opts.Issuer)
	resp, err := o.tokenResponse(ctx, st, c, "", false)
	s.devices.forget(st)
	if err != nil {
		o.grantError(w, r, err)
		return
	}
	o.recordSessionClient(ctx, x.sessionID, c.c.ID, st.Subject)
	resp.TokenType = tokenType(x.accessJKT)
	writeJSONToken(w, resp)
}

// tokenResponse is zitadel's CreateTokenResponse (code grant, alwaysID)
// and CreateDeviceTokenResponse (device grant: an ID token with openid),
// built from the same zitadel functions — so nonce, c_hash, at_hash, acr
// and the user claims are zitadel's — but with each token signed by its
// own key: a JWT access token with the access-token key
// (Options.AccessTokenAlgorithm), the ID token with the client's
// id_token_signed_response_alg. zitadel's own functions ask the storage
// for one key for both.
func (o *OP) tokenResponse(ctx context.Context, req zop.TokenRequest, c *client, code string, alwaysID bool) (*oidc.AccessTokenResponse, error) {
	km := o.storage.keys
	accessToken, refreshToken, validity, err := zop.CreateAccessToken(withSigningAlg(ctx, km.atAlg), req, c.AccessTokenType(), o.provider, c, "")
	if err != nil {
		return nil, err
	}
	resp := &oidc.AccessTokenResponse{
		AccessToken: accessToken, RefreshToken: refreshToken, TokenType: oidc.BearerToken,
		ExpiresIn: uint64(validity.Seconds()), Scope: req.GetScopes(),
	}
	if idr, ok := req.(zop.IDTokenRequest); ok && (alwaysID || slices.Contains(req.GetScopes(), oidc.ScopeOpenID)) {
		idCtx := withSigningAlg(ctx, c.idTokenAlg(km.idAlg))
		if resp.IDToken, err = zop.CreateIDToken(idCtx, o.opts.Issuer, idr, c.IDTokenLifetime(), accessToken, code, o.storage, c); err != nil {
			return nil, err
		}
	}
	if ar, ok := req.(zop.AuthRequest); ok {
		if err := o.storage.DeleteAuthRequest(ctx, ar.GetID()); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// recordSessionClient remembers that the client got tokens in the
// session, for back-channel logout. A failure is logged: the tokens are
// issued already.
func (o *OP) recordSessionClient(ctx context.Context, sessionID, clientID, userID string) {
	if sessionID == "" {
		return
	}
	if err := o.storage.store.RecordSessionClient(ctx, sessionID, clientID, userID, o.opts.Now()); err != nil {
		o.opts.Logger.Error("record session client", "err", err, "client", clientID)
	}
}

// writeJSONToken writes zitadel's token response, uncacheable.
func writeJSONToken(w http.ResponseWriter, resp *oidc.AccessTokenResponse) {
	b, err := json.Marshal(resp)
	if err != nil {
		tokenError(w, http.StatusInternalServerError, "server_error", "", false)
		return
	}
	setNoStoreJSON(w.Header())
	_, _ = w.Write(b)
}

// grantError answers the storage adapter's and zitadel's errors
// (oidc.Error values) as RFC 6749 §5.2 says.
func (o *OP) grantError(w http.ResponseWriter, r *http.Request, err error) {
	if unavailable(err) {
		o.internalError(w, r, "token request failed", err)
		return
	}
	var oe *oidc.Error
	if errors.As(err, &oe) && oe.ErrorType != oidc.ServerError {
		o.opts.Logger.Log(r.Context(), oe.LogLevel(), "token request refused", "oidc_error", oe)
		status := http.StatusBadRequest
		if oe.ErrorType == oidc.InvalidClient {
			status = http.StatusUnauthorized
		}
		desc := oe.Description
		if oe.ErrorType == oidc.InvalidGrant {
			desc = "" // the cause is logged, not told
		}
		tokenError(w, status, string(oe.ErrorType), desc, false)
		return
	}
	o.internalError(w, r, "token request failed", err)
}

// scopesWithin: every scope of want is in have.
func scopesWithin(want, have []string) bool {
	for _, sc := range want {
		if !slices.Contains(have, sc) {
			return false
		}
	}
	return true
}
