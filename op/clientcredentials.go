package op

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

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
// The client is authenticated by the token endpoint (token.go: secret or
// private_key_jwt; only confidential clients with the grant); the scopes
// are the client's allowed ones (ccScopes); the access token is a JWT or
// an opaque token by the client's format, DPoP-bound when the request
// carried a proof; errors are RFC 6749 §5.2 JSON.

func (o *OP) clientCredentials(w http.ResponseWriter, r *http.Request, c *client, proof *dpopProof) {
	s := o.storage
	scopes, ok := ccScopes(r.PostForm.Get("scope"), c.ccAllowedScopes(), c.c.Scopes)
	if !ok {
		tokenError(w, http.StatusBadRequest, "invalid_scope", "the client may not ask for these scopes", false)
		return
	}
	jkt, _ := bindings(c, proof)
	life := c.accessTokenLifetime()
	var token string
	if c.format() == storage.TokenFormatJWT {
		ks, err := s.keys.get(r.Context())
		if err != nil {
			o.internalError(w, r, "client_credentials: signing key", err)
			return
		}
		// The access-token key (ES256 unless configured otherwise): a
		// client_credentials token never pays for an RSA signature by
		// default. iat and exp on the token clock (Options.TokenNow),
		// which zitadel verifies them against at /oauth/introspect.
		iat := o.opts.TokenNow()
		token, err = ks.access.signJWT(atClaims(o.opts.Issuer, c.c.ID, nil, c.c.ID, ccJWTPrefix+storage.NewID(), scopes, jkt, iat, iat.Add(life)))
		if err != nil {
			o.internalError(w, r, "client_credentials: sign", err)
			return
		}
	} else {
		atID, _, err := s.newAccessToken(r.Context(), c, storage.AccessToken{
			ClientID: c.c.ID, UserID: c.c.ID, Scopes: scopes, Audience: []string{c.c.ID}, JKT: jkt,
		}, s.now())
		if err != nil {
			o.internalError(w, r, "client_credentials: store token", err)
			return
		}
		if token, err = o.provider.Crypto().Encrypt(atID + ":" + c.c.ID); err != nil {
			tokenError(w, http.StatusInternalServerError, "server_error", "", false)
			return
		}
	}
	writeTokenResponse(w, token, tokenType(jkt), "", "", life, scopes)
}

// ccScopes are the scopes of a client_credentials token: what the client
// asked for, each among its allowed scopes (SPEC 8: "only the scopes a
// client is allowed"; anything else is invalid_scope), or the defaults
// when it asked for none (RFC 6749 §3.3: a pre-defined default — the
// client's configured scopes; the admin API's only when asked for).
func ccScopes(requested string, allowed, defaults []string) ([]string, bool) {
	want := strings.Fields(requested)
	if len(want) == 0 {
		return slices.Clone(defaults), true
	}
	var out []string
	for _, sc := range want {
		if !slices.Contains(allowed, sc) {
			return nil, false
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return out, true
}

// atClaims is a JWT access token's payload: the RFC 9068 claims as
// zitadel issues them, plus scope (which zitadel leaves out). The
// audience is aud and the client.
func atClaims(issuer, sub string, aud []string, clientID, jti string, scopes []string, jkt string, iat, exp time.Time) []byte {
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
	if jkt != "" {
		// RFC 9449 §6.1: the key the token is bound to.
		b = append(b, `,"cnf":{"jkt":`...)
		b = appendJSONString(b, jkt)
		b = append(b, '}')
	}
	return append(b, '}')
}

// writeTokenResponse writes a successful token response (RFC 6749 §5.1);
// an empty refresh or ID token is left out.
func writeTokenResponse(w http.ResponseWriter, accessToken, tokenType, refreshToken, idToken string, life time.Duration, scopes []string) {
	b := make([]byte, 0, len(accessToken)+len(refreshToken)+len(idToken)+160)
	b = append(b, `{"access_token":`...)
	b = appendJSONString(b, accessToken)
	b = append(b, `,"token_type":`...)
	b = appendJSONString(b, tokenType)
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
