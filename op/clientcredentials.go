package op

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/latchkey/latchkey/storage"
)

// The client_credentials grant (RFC 6749 §4.4) is served here rather than
// by zitadel: it is the token endpoint's busiest grant (every API call of
// every service), and zitadel's path spends more CPU outside the signature
// than in it — the claims are marshalled, unmarshalled into a map and
// marshalled again, a fresh jose signer is built per token, and the
// response goes through reflection. This handler does the same protocol
// with fixed-shape JSON and the cached signing key. The refresh grant is
// ours for the same reason (refresh.go); codes and the device grant stay
// zitadel's.
//
// Parity with zitadel's handler (and RFC 6749): client_secret_basic (URL-
// decoded) or client_secret_post, never both; only confidential clients
// with the grant; user scopes are dropped; the access token is a JWT or an
// opaque token by the client's format; errors are RFC 6749 §5.2 JSON.

func (o *OP) clientCredentials(w http.ResponseWriter, r *http.Request) {
	c := o.tokenClient(w, r, GrantClientCredentials, false)
	if c == nil {
		return
	}
	s := o.storage
	scopes := ccScopes(r.PostForm.Get("scope"), c.c)
	life := c.accessTokenLifetime()
	var token string
	if c.format() == storage.TokenFormatJWT {
		ks, err := s.keys.get(r.Context())
		if err != nil {
			o.opts.Logger.Error("client_credentials: signing key", "err", err)
			tokenError(w, http.StatusInternalServerError, "server_error", "", false)
			return
		}
		// iat and exp on the token clock (Options.TokenNow), which
		// zitadel verifies them against at /oauth/introspect.
		iat := o.opts.TokenNow()
		token, err = ks.signing.signJWT(atClaims(o.opts.Issuer, c.c.ID, nil, c.c.ID, ccJWTPrefix+storage.NewID(), scopes, iat, iat.Add(life)))
		if err != nil {
			o.opts.Logger.Error("client_credentials: sign", "err", err)
			tokenError(w, http.StatusInternalServerError, "server_error", "", false)
			return
		}
	} else {
		atID, _, err := s.newAccessToken(r.Context(), c, storage.AccessToken{
			ClientID: c.c.ID, UserID: c.c.ID, Scopes: scopes, Audience: []string{c.c.ID},
		}, s.now())
		if err != nil {
			o.opts.Logger.Error("client_credentials: store token", "err", err)
			tokenError(w, http.StatusInternalServerError, "server_error", "", false)
			return
		}
		if token, err = o.provider.Crypto().Encrypt(atID + ":" + c.c.ID); err != nil {
			tokenError(w, http.StatusInternalServerError, "server_error", "", false)
			return
		}
	}
	writeTokenResponse(w, token, "", "", life, scopes)
}

// tokenClient authenticates the client of a request to one of our grant
// handlers and checks that it may use grant. A public client has no
// secret: where publicOK (refresh, RFC 6749 §6) its client_id alone names
// it, elsewhere it cannot authenticate. On failure tokenClient has
// answered (RFC 6749 §5.2) and returns nil.
func (o *OP) tokenClient(w http.ResponseWriter, r *http.Request, grant string, publicOK bool) *client {
	id, secret, basic, err := clientAuth(r)
	if err != nil {
		o.opts.Logger.InfoContext(r.Context(), "token request refused", "reason", err.Error())
		tokenError(w, http.StatusBadRequest, "invalid_request", err.Error(), false)
		return nil
	}
	s := o.storage
	c, err := s.client(r.Context(), id)
	if err != nil {
		var oe *oidc.Error
		if errors.As(err, &oe) && oe.ErrorType == oidc.ServerError {
			o.opts.Logger.Error("token: client lookup", "err", err)
			tokenError(w, http.StatusInternalServerError, "server_error", "", false)
			return nil
		}
	}
	if err != nil || !c.authenticates(s.kr, secret, publicOK) {
		// Logged without the secret: which client, how, and why.
		reason := "wrong or missing secret"
		if err != nil {
			reason = "unknown client"
		}
		method := "client_secret_post"
		if basic {
			method = "client_secret_basic"
		}
		o.opts.Logger.WarnContext(r.Context(), "client authentication failed", "client_id", id, "method", method, "reason", reason)
		tokenError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed", basic)
		return nil
	}
	if !c.hasGrant(grant) {
		tokenError(w, http.StatusBadRequest, "unauthorized_client", "the client may not use this grant", false)
		return nil
	}
	return c
}

// clientAuth reads client_secret_basic or client_secret_post credentials
// (RFC 6749 §2.3.1): exactly one method.
func clientAuth(r *http.Request) (id, secret string, basic bool, err error) {
	formID, formSecret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if r.PostForm.Get("client_assertion") != "" {
		return "", "", false, errors.New("private_key_jwt is not supported")
	}
	if u, p, ok := r.BasicAuth(); ok {
		if formSecret != "" {
			return "", "", true, errors.New("use one client authentication method, not two")
		}
		if id, err = url.QueryUnescape(u); err != nil {
			return "", "", true, errors.New("malformed basic credentials")
		}
		if secret, err = url.QueryUnescape(p); err != nil {
			return "", "", true, errors.New("malformed basic credentials")
		}
		if formID != "" && formID != id {
			return "", "", true, errors.New("client_id does not match the credentials")
		}
		return id, secret, true, nil
	}
	return formID, formSecret, false, nil
}

// ccScopes keeps the requested scopes that make sense without a user and
// that the client may have (the admin API's only when granted).
func ccScopes(s string, c storage.Client) []string {
	var out []string
	for _, sc := range strings.Fields(s) {
		if !userScope(sc) && adminScopeAllowed(c, sc) {
			out = append(out, sc)
		}
	}
	return out
}

// userScope: a scope about a user, meaningless in a client_credentials
// token.
func userScope(sc string) bool {
	switch sc {
	case oidc.ScopeOpenID, oidc.ScopeOfflineAccess, oidc.ScopeProfile, oidc.ScopeEmail,
		oidc.ScopePhone, oidc.ScopeAddress, ScopePrivacy:
		return true
	}
	return false
}

// atClaims is a JWT access token's payload: the RFC 9068 claims as
// zitadel issues them, plus scope (which zitadel leaves out). The
// audience is aud and the client.
func atClaims(issuer, sub string, aud []string, clientID, jti string, scopes []string, iat, exp time.Time) []byte {
	b := make([]byte, 0, 320)
	b = append(b, `{"iss":`...)
	b = appendJSONString(b, issuer)
	b = append(b, `,"sub":`...)
	b = appendJSONString(b, sub)
	b = appendAudience(b, aud, clientID)
	b = appendTimes(b, iat, exp)
	b = append(b, `,"nbf":`...)
	b = strconv.AppendInt(b, iat.Unix(), 10)
	b = append(b, `,"client_id":`...)
	b = appendJSONString(b, clientID)
	b = append(b, `,"jti":`...)
	b = appendJSONString(b, jti)
	b = appendScope(b, scopes)
	return append(b, '}')
}

// writeTokenResponse writes a successful token response (RFC 6749 §5.1);
// an empty refresh or ID token is left out.
func writeTokenResponse(w http.ResponseWriter, accessToken, refreshToken, idToken string, life time.Duration, scopes []string) {
	b := make([]byte, 0, len(accessToken)+len(refreshToken)+len(idToken)+160)
	b = append(b, `{"access_token":`...)
	b = appendJSONString(b, accessToken)
	b = append(b, `,"token_type":"Bearer"`...)
	if refreshToken != "" {
		b = append(b, `,"refresh_token":`...)
		b = appendJSONString(b, refreshToken)
	}
	b = append(b, `,"expires_in":`...)
	b = strconv.AppendInt(b, int64(life/time.Second), 10)
	if idToken != "" {
		b = append(b, `,"id_token":`...)
		b = appendJSONString(b, idToken)
	}
	b = appendScope(b, scopes)
	b = append(b, '}')
	setNoStoreJSON(w.Header())
	_, _ = w.Write(b)
}

// appendScope appends the scope member, if there are scopes.
func appendScope(b []byte, scopes []string) []byte {
	if len(scopes) == 0 {
		return b
	}
	b = append(b, `,"scope":`...)
	return appendJSONString(b, strings.Join(scopes, " "))
}

// setNoStoreJSON: token endpoint answers, errors included, are JSON that
// must not be cached (RFC 6749 §5.1, §5.2).
func setNoStoreJSON(h http.Header) {
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			q, _ := json.Marshal(s) // rare: escapes or non-ASCII
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// tokenError writes an RFC 6749 §5.2 error response.
func tokenError(w http.ResponseWriter, status int, code, description string, basic bool) {
	setNoStoreJSON(w.Header())
	if basic && status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="token"`)
	}
	w.WriteHeader(status)
	b := append([]byte(`{"error":`), appendJSONString(nil, code)...)
	if description != "" {
		b = append(b, `,"error_description":`...)
		b = appendJSONString(b, description)
	}
	_, _ = w.Write(append(b, '}'))
}
