package op

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
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
// with fixed-shape JSON and the cached signing key. Everything else of the
// token endpoint (codes, refresh, device) stays zitadel's.
//
// Parity with zitadel's handler (and RFC 6749): client_secret_basic (URL-
// decoded) or client_secret_post, never both; only confidential clients
// with the grant; user scopes are dropped; the access token is a JWT or an
// opaque token by the client's format; errors are RFC 6749 §5.2 JSON.

func (o *OP) clientCredentials(w http.ResponseWriter, r *http.Request) {
	id, secret, basic, err := clientAuth(r)
	if err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request", err.Error(), false)
		return
	}
	s := o.storage
	c, err := s.client(r.Context(), id)
	if err != nil || !secretMatches(s.kr, c.c, secret) {
		var oe *oidc.Error
		if errors.As(err, &oe) && oe.ErrorType == oidc.ServerError {
			tokenError(w, http.StatusInternalServerError, "server_error", "", false)
			return
		}
		tokenError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed", basic)
		return
	}
	if !c.hasGrant(GrantClientCredentials) {
		tokenError(w, http.StatusBadRequest, "unauthorized_client", "the client may not use this grant", false)
		return
	}
	scopes := ccScopes(r.PostForm.Get("scope"))
	now := s.now()
	life := c.accessTokenLifetime()
	var token string
	if c.format() == storage.TokenFormatJWT {
		ks, err := s.keys.get(r.Context())
		if err != nil {
			o.opts.Logger.Error("client_credentials: signing key", "err", err)
			tokenError(w, http.StatusInternalServerError, "server_error", "", false)
			return
		}
		// JWT times follow the wall clock, as zitadel's do: relying
		// parties verify them against theirs.
		wall := time.Now()
		token, err = ks.signing.signJWT(ccClaims(o.opts.Issuer, c.c.ID, ccJWTPrefix+storage.NewID(), scopes, wall, wall.Add(life)))
		if err != nil {
			o.opts.Logger.Error("client_credentials: sign", "err", err)
			tokenError(w, http.StatusInternalServerError, "server_error", "", false)
			return
		}
	} else {
		atID, _, err := s.newAccessToken(r.Context(), c, storage.AccessToken{
			ClientID: c.c.ID, UserID: c.c.ID, Scopes: scopes, Audience: []string{c.c.ID},
		}, now)
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
	b := make([]byte, 0, len(token)+128)
	b = append(b, `{"access_token":`...)
	b = appendJSONString(b, token)
	b = append(b, `,"token_type":"Bearer","expires_in":`...)
	b = strconv.AppendInt(b, int64(life/time.Second), 10)
	if len(scopes) > 0 {
		b = append(b, `,"scope":`...)
		b = appendJSONString(b, strings.Join(scopes, " "))
	}
	b = append(b, '}')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	_, _ = w.Write(b)
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

// ccScopes keeps the requested scopes that make sense without a user.
func ccScopes(s string) []string {
	var out []string
	for _, sc := range strings.Fields(s) {
		switch sc {
		case oidc.ScopeOpenID, oidc.ScopeOfflineAccess, oidc.ScopeProfile, oidc.ScopeEmail,
			oidc.ScopePhone, oidc.ScopeAddress, ScopePrivacy:
			continue
		}
		out = append(out, sc)
	}
	return out
}

// ccClaims is the JWT access token's payload (RFC 9068 claims, as zitadel
// issues them, plus scope).
func ccClaims(issuer, clientID, jti string, scopes []string, iat, exp time.Time) []byte {
	b := make([]byte, 0, 256)
	b = append(b, `{"iss":`...)
	b = appendJSONString(b, issuer)
	b = append(b, `,"sub":`...)
	b = appendJSONString(b, clientID)
	b = append(b, `,"aud":[`...)
	b = appendJSONString(b, clientID)
	b = append(b, `],"exp":`...)
	b = strconv.AppendInt(b, exp.Unix(), 10)
	b = append(b, `,"iat":`...)
	b = strconv.AppendInt(b, iat.Unix(), 10)
	b = append(b, `,"nbf":`...)
	b = strconv.AppendInt(b, iat.Unix(), 10)
	b = append(b, `,"client_id":`...)
	b = appendJSONString(b, clientID)
	b = append(b, `,"jti":`...)
	b = appendJSONString(b, jti)
	if len(scopes) > 0 {
		b = append(b, `,"scope":`...)
		b = appendJSONString(b, strings.Join(scopes, " "))
	}
	return append(b, '}')
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

// signJWT signs a payload as a compact JWS with this key.
func (k *signingKey) signJWT(payload []byte) (string, error) {
	enc := base64.RawURLEncoding
	input := make([]byte, 0, len(k.header)+1+enc.EncodedLen(len(payload))+1+enc.EncodedLen(512))
	input = append(input, k.header...)
	input = append(input, '.')
	input = enc.AppendEncode(input, payload)
	var sig []byte
	switch key := k.key.(type) {
	case *ecdsa.PrivateKey:
		d := sha256.Sum256(input)
		r, s, err := ecdsa.Sign(rand.Reader, key, d[:])
		if err != nil {
			return "", err
		}
		size := (key.Curve.Params().BitSize + 7) / 8
		sig = make([]byte, 2*size)
		r.FillBytes(sig[:size])
		s.FillBytes(sig[size:])
	case *rsa.PrivateKey:
		d := sha256.Sum256(input)
		var err error
		if sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, d[:]); err != nil {
			return "", err
		}
	case ed25519.PrivateKey:
		sig = ed25519.Sign(key, input)
	default:
		return "", errors.New("op: unsupported signing key")
	}
	input = append(input, '.')
	input = enc.AppendEncode(input, sig)
	return string(input), nil
}

// tokenError writes an RFC 6749 §5.2 error response.
func tokenError(w http.ResponseWriter, status int, code, description string, basic bool) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	if basic && status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Basic realm="token"`)
	}
	w.WriteHeader(status)
	b := append([]byte(`{"error":`), appendJSONString(nil, code)...)
	if description != "" {
		b = append(b, `,"error_description":`...)
		b = appendJSONString(b, description)
	}
	_, _ = w.Write(append(b, '}'))
}
