package op

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/latchkey/latchkey/storage"
)

// The refresh_token grant (RFC 6749 §6, OIDC Core §12) is served here for
// the same reason as client_credentials (clientcredentials.go): every
// product calls it all day, and zitadel's response building (claims
// merged through three JSON passes, a signer per token) cost as much as
// the rotation itself. The validation, rotation and reuse detection are
// the same methods zitadel's path calls (TokenRequestByRefreshToken,
// CreateAccessAndRefreshTokens); only the HTTP and JSON are ours.
//
// Parity: the client is authenticated by the token endpoint (token.go;
// client_id alone for public ones, RFC 6749 §6 — the refresh token is
// bound to the client, and to its DPoP key if it has one); the grant must
// be allowed; a requested scope must be within
// what was granted (RFC 6749 §6), and narrows this response and the new
// refresh token; the ID token (when openid is among the scopes) carries
// auth_time, amr, acr and sid of the original sign-in, at_hash, and the
// user claims of the scopes — no nonce (OIDC Core §12.2).

func (o *OP) refreshGrant(w http.ResponseWriter, r *http.Request, c *client, proof *dpopProof) {
	ctx := r.Context()
	s := o.storage
	raw := r.PostForm.Get("refresh_token")
	if raw == "" {
		tokenError(w, http.StatusBadRequest, "invalid_request", "refresh_token missing", false)
		return
	}
	req, err := s.TokenRequestByRefreshToken(ctx, raw)
	if err != nil {
		o.grantError(w, r, err)
		return
	}
	rr := req.(*refreshRequest)
	if rr.rt.ClientID != c.c.ID {
		tokenError(w, http.StatusBadRequest, "invalid_grant", "", false)
		return
	}
	rr.client = c
	// A refresh token bound to a DPoP key (RFC 9449 §5) needs a proof
	// with that key; the new access token is bound to the proof's key.
	if rr.rt.JKT != "" && (proof == nil || proof.jkt != rr.rt.JKT) {
		tokenError(w, http.StatusBadRequest, "invalid_grant", "the refresh token is bound to another DPoP key", false)
		return
	}
	if proof != nil {
		rr.accessJKT = proof.jkt
	}
	if want := strings.Fields(r.PostForm.Get("scope")); len(want) > 0 {
		granted := rr.rt.GrantedScopes
		if len(granted) == 0 {
			granted = rr.rt.Scopes
		}
		for _, sc := range want {
			if !slices.Contains(granted, sc) {
				tokenError(w, http.StatusBadRequest, "invalid_scope", "a requested scope was not granted", false)
				return
			}
		}
		rr.scopes = want
	}
	// The keys first: a failure after the rotation would cost the client
	// its grant.
	ks, err := s.keys.get(ctx)
	if err != nil {
		o.internalError(w, r, "refresh: signing key", err)
		return
	}
	atID, newRT, exp, err := s.CreateAccessAndRefreshTokens(ctx, rr, raw)
	if err != nil {
		o.grantError(w, r, err)
		return
	}
	// iat and exp are on the token clock (Options.TokenNow: the one
	// zitadel stamps and verifies with); the lifetime is the decision
	// clock's, the one the stored token expires by.
	iat := o.opts.TokenNow()
	life := exp.Sub(s.now())
	var at string
	if c.format() == storage.TokenFormatJWT {
		at, err = ks.access.signJWT(atClaims(o.opts.Issuer, rr.rt.UserID, rr.rt.Audience, c.c.ID, atID, rr.scopes, rr.accessJKT, iat, iat.Add(life)))
	} else {
		at, err = o.provider.Crypto().Encrypt(atID + ":" + rr.rt.UserID)
	}
	if err != nil {
		tokenError(w, http.StatusInternalServerError, "server_error", "", false)
		return
	}
	var idt string
	if slices.Contains(rr.scopes, oidc.ScopeOpenID) {
		// The ID token with the client's registered algorithm (at_hash
		// with its hash); the access token above with the access-token key.
		k := ks.idToken(c.c.IDTokenSigningAlg)
		if idt, err = k.signJWT(idTokenClaims(o.opts.Issuer, rr, c.c.ID, k, at, iat, iat.Add(c.IDTokenLifetime()))); err != nil {
			tokenError(w, http.StatusInternalServerError, "server_error", "", false)
			return
		}
	}
	writeTokenResponse(w, at, tokenType(rr.accessJKT), newRT, idt, life, rr.scopes)
}

// idTokenClaims: a refreshed ID token (OIDC Core §12.2).
func idTokenClaims(issuer string, rr *refreshRequest, clientID string, k *signingKey, accessToken string, iat, exp time.Time) []byte {
	rt, u := rr.rt, rr.user
	b := make([]byte, 0, 512)
	b = append(b, `{"iss":`...)
	b = appendJSONString(b, issuer)
	b = append(b, `,"sub":`...)
	b = appendJSONString(b, rt.UserID)
	b = appendAudience(b, rt.Audience, clientID)
	b = appendTimes(b, iat, exp)
	if !rt.AuthTime.IsZero() {
		b = append(b, `,"auth_time":`...)
		b = strconv.AppendInt(b, rt.AuthTime.Unix(), 10)
	}
	if rt.ACR != "" {
		b = append(b, `,"acr":`...)
		b = appendJSONString(b, rt.ACR)
	}
	if len(rt.AMR) > 0 {
		b = append(b, `,"amr":[`...)
		for i, m := range rt.AMR {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, m)
		}
		b = append(b, ']')
	}
	b = append(b, `,"azp":`...)
	b = appendJSONString(b, clientID)
	b = append(b, `,"client_id":`...)
	b = appendJSONString(b, clientID)
	if rt.SessionID != "" {
		b = append(b, `,"sid":`...)
		b = appendJSONString(b, rt.SessionID)
	}
	if h := tokenHash(string(k.alg), accessToken); h != "" {
		b = append(b, `,"at_hash":`...)
		b = appendJSONString(b, h)
	}
	for _, sc := range rr.scopes {
		switch sc {
		case oidc.ScopeEmail:
			b = append(b, `,"email":`...)
			b = appendJSONString(b, u.Email)
			b = append(b, `,"email_verified":`...)
			b = strconv.AppendBool(b, u.EmailVerified)
		case oidc.ScopeProfile:
			b = append(b, `,"name":`...)
			b = appendJSONString(b, u.Name)
			b = append(b, `,"preferred_username":`...)
			b = appendJSONString(b, u.Email)
			if !u.UpdatedAt.IsZero() {
				b = append(b, `,"updated_at":`...)
				b = strconv.AppendInt(b, u.UpdatedAt.Unix(), 10)
			}
		case ScopePrivacy:
			var upd int64
			if !u.PrivacyUpdatedAt.IsZero() {
				upd = u.PrivacyUpdatedAt.Unix()
			}
			b = append(b, `,"privacy":{"required":true,"product_improvement":`...)
			b = strconv.AppendBool(b, u.PrivacyProductImprovement)
			b = append(b, `,"personalised_offers":`...)
			b = strconv.AppendBool(b, u.PrivacyPersonalisedOffers)
			b = append(b, `,"updated_at":`...)
			b = strconv.AppendInt(b, upd, 10)
			b = append(b, '}')
		}
	}
	return append(b, '}')
}

func appendAudience(b []byte, aud []string, clientID string) []byte {
	b = append(b, `,"aud":[`...)
	for i, a := range aud {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, a)
	}
	if !slices.Contains(aud, clientID) {
		if len(aud) > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, clientID)
	}
	return append(b, ']')
}

func appendTimes(b []byte, iat, exp time.Time) []byte {
	b = append(b, `,"exp":`...)
	b = strconv.AppendInt(b, exp.Unix(), 10)
	b = append(b, `,"iat":`...)
	return strconv.AppendInt(b, iat.Unix(), 10)
}

// tokenHash is at_hash (OIDC Core §3.1.3.6): the left half of the hash of
// the token, with the hash of the signing algorithm (SHA-512 for EdDSA, as
// zitadel does).
func tokenHash(alg, token string) string {
	switch alg {
	case AlgRS256, AlgES256, "PS256":
		sum := sha256.Sum256([]byte(token))
		return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
	case AlgEdDSA:
		sum := sha512.Sum512([]byte(token))
		return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
	}
	return ""
}
