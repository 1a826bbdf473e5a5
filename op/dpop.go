package op

// DPoP (RFC 9449): proof-of-possession for the tokens of desktop and
// command-line products. A proof is a JWT the client signs with its own
// key for each request; tokens issued with one are bound to that key's
// thumbprint (cnf.jkt) and are useless without it.
//
// The provider requires its own nonces (§8): stateless, an HMAC of a
// five-minute window under the server secret, so every instance issues
// and accepts the same ones; a nonce is good in its window and the next.
// Each proof's jti is used once (storage.UseOnce, one statement across
// instances) for as long as the proof's iat would pass.

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
)

const (
	dpopNonceWindow = 5 * time.Minute
	// dpopProofMaxAge: a proof's iat may be this old; dpopProofSkew: this
	// far in the future.
	dpopProofMaxAge = 5 * time.Minute
	dpopProofSkew   = time.Minute
	dpopHeader      = "DPoP"
	dpopNonceHeader = "DPoP-Nonce"
)

// dpopAlgs are the proof algorithms we accept and advertise
// (dpop_signing_alg_values_supported).
var dpopAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.PS256, jose.EdDSA}

// dpopProof is a verified proof: the thumbprint of its key.
type dpopProof struct {
	jkt string
}

// dpopError is a refused proof: invalid_dpop_proof, or use_dpop_nonce
// when only a (fresh) nonce is missing.
type dpopError struct {
	code        string
	description string
}

func (e *dpopError) Error() string { return e.code + ": " + e.description }

func badProof(desc string) *dpopError {
	return &dpopError{code: "invalid_dpop_proof", description: desc}
}

// hasDPoP: the request carries a DPoP header.
func hasDPoP(r *http.Request) bool { return len(r.Header.Values(dpopHeader)) > 0 }

// checkDPoP verifies r's DPoP proof (§4.3) for the endpoint URL htu and,
// at a resource, for accessToken (ath). A server error comes back as the
// plain error.
func (o *OP) checkDPoP(ctx context.Context, r *http.Request, htu, accessToken string) (*dpopProof, *dpopError, error) {
	vals := r.Header.Values(dpopHeader)
	if len(vals) != 1 {
		return nil, badProof("send exactly one DPoP header"), nil
	}
	raw := vals[0]
	if len(raw) > 8192 {
		return nil, badProof("proof too large"), nil
	}
	obj, err := jose.ParseSigned(raw, dpopAlgs)
	if err != nil || len(obj.Signatures) != 1 {
		return nil, badProof("not a JWS signed with one of " + algList(dpopAlgs)), nil
	}
	hdr := obj.Signatures[0].Protected
	if typ, _ := hdr.ExtraHeaders[jose.HeaderType].(string); typ != "dpop+jwt" {
		return nil, badProof(`typ must be "dpop+jwt"`), nil
	}
	jwk := hdr.JSONWebKey
	if jwk == nil || !jwk.IsPublic() || !jwk.Valid() {
		return nil, badProof("the header must carry the public key (jwk)"), nil
	}
	if err := oidc.ValidateDPoPKeyStrength(jwk.Key); err != nil {
		return nil, badProof(err.Error()), nil
	}
	payload, err := obj.Verify(jwk.Key)
	if err != nil {
		return nil, badProof("signature does not verify"), nil
	}
	var claims struct {
		JTI   string      `json:"jti"`
		HTM   string      `json:"htm"`
		HTU   string      `json:"htu"`
		IAT   json.Number `json:"iat"`
		Nonce string      `json:"nonce"`
		ATH   string      `json:"ath"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, badProof("malformed claims"), nil
	}
	now := o.opts.Now()
	iat, err := claims.IAT.Int64()
	switch {
	case claims.JTI == "" || len(claims.JTI) > 256:
		return nil, badProof("jti is required"), nil
	case claims.HTM != r.Method:
		return nil, badProof("htm does not match the request method"), nil
	case !sameHTU(claims.HTU, htu):
		return nil, badProof("htu does not match the request URL"), nil
	case err != nil:
		return nil, badProof("iat is required"), nil
	case now.Sub(time.Unix(iat, 0)) > dpopProofMaxAge:
		return nil, badProof("the proof is too old"), nil
	case time.Unix(iat, 0).Sub(now) > dpopProofSkew:
		return nil, badProof("the proof is issued in the future"), nil
	}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		if claims.ATH != base64.RawURLEncoding.EncodeToString(sum[:]) {
			return nil, badProof("ath does not match the access token"), nil
		}
	}
	if !o.validDPoPNonce(claims.Nonce, now) {
		return nil, &dpopError{code: "use_dpop_nonce", description: "use the nonce in the DPoP-Nonce header"}, nil
	}
	jkt, err := oidc.JWKThumbprint(jwk)
	if err != nil {
		return nil, badProof("cannot compute the key thumbprint"), nil
	}
	if err := o.storage.store.UseOnce(ctx, "dpop:"+jkt+":"+claims.JTI, now, now.Add(dpopProofMaxAge+dpopProofSkew)); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return nil, badProof("the proof was used before (jti)"), nil
		}
		return nil, nil, err
	}
	return &dpopProof{jkt: jkt}, nil, nil
}

// sameHTU compares a proof's htu with the endpoint URL, ignoring query
// and fragment (§4.3) and the case of scheme and host.
func sameHTU(claim, want string) bool {
	u, err := url.Parse(claim)
	w, err2 := url.Parse(want)
	if err != nil || err2 != nil {
		return false
	}
	return strings.EqualFold(u.Scheme, w.Scheme) && strings.EqualFold(u.Host, w.Host) && u.EscapedPath() == w.EscapedPath()
}

// dpopNonce is the current nonce: the window number and its HMAC.
func (o *OP) dpopNonce() string {
	return o.nonceFor(o.opts.Now().Unix() / int64(dpopNonceWindow/time.Second))
}

func (o *OP) nonceFor(window int64) string {
	b := make([]byte, 8, 24)
	binary.BigEndian.PutUint64(b, uint64(window))
	b = append(b, o.storage.kr.MAC(keyring.PurposeDPoPNonce, b)[:16]...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// validDPoPNonce: a nonce of this window or the one before.
func (o *OP) validDPoPNonce(n string, now time.Time) bool {
	b, err := base64.RawURLEncoding.DecodeString(n)
	if err != nil || len(b) != 24 {
		return false
	}
	w := int64(binary.BigEndian.Uint64(b[:8]))
	cur := now.Unix() / int64(dpopNonceWindow/time.Second)
	if w != cur && w != cur-1 {
		return false
	}
	return hmac.Equal([]byte(o.nonceFor(w)), []byte(n))
}

func algList(algs []jose.SignatureAlgorithm) string {
	s := make([]string, len(algs))
	for i, a := range algs {
		s[i] = string(a)
	}
	return strings.Join(s, " ")
}
