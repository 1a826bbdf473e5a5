package op

// Our own compact JWS signer (RFC 7515 §7.1), for the tokens of the grants
// we serve ourselves (clientcredentials.go, refresh.go). zitadel builds a
// go-jose signer per token and marshals the claims three times; here the
// header is encoded once per key (jwsHeader, at key load) and a token
// costs one signature and one base64 pass. zitadel keeps signing the
// tokens of the code and device grants, with the same key and header
// fields, so relying parties cannot tell the two apart.

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
)

// jwsHeader is the base64url-encoded protected header of a key's tokens:
// alg, kid and typ "JWT", as zitadel writes them.
func jwsHeader(alg, kid string) ([]byte, error) {
	hdr, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{alg, kid, "JWT"})
	if err != nil {
		return nil, err
	}
	return base64.RawURLEncoding.AppendEncode(nil, hdr), nil
}

// signJWT signs a payload as a compact JWS with this key:
// BASE64URL(header) "." BASE64URL(payload) "." BASE64URL(signature).
func (k *signingKey) signJWT(payload []byte) (string, error) {
	return k.signWithHeader(k.header, payload)
}

// signWithHeader signs payload under another base64url-encoded header of
// this key (a logout token's typ logout+jwt).
func (k *signingKey) signWithHeader(header, payload []byte) (string, error) {
	enc := base64.RawURLEncoding
	input := make([]byte, 0, len(header)+1+enc.EncodedLen(len(payload))+1+enc.EncodedLen(512))
	input = append(input, header...)
	input = append(input, '.')
	input = enc.AppendEncode(input, payload)
	var sig []byte
	switch key := k.key.(type) {
	case *ecdsa.PrivateKey:
		// ES256 (RFC 7518 §3.4): R and S as fixed-width big-endian
		// integers, concatenated — not the ASN.1 DER of crypto/ecdsa's
		// SignASN1, which verifiers reject.
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
		// RS256 (RFC 7518 §3.3): RSASSA-PKCS1-v1_5 with SHA-256.
		d := sha256.Sum256(input)
		var err error
		if sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, d[:]); err != nil {
			return "", err
		}
	case ed25519.PrivateKey:
		// EdDSA (RFC 8037 §3.1): Ed25519 signs the input itself.
		sig = ed25519.Sign(key, input)
	default:
		return "", errors.New("op: unsupported signing key")
	}
	input = append(input, '.')
	input = enc.AppendEncode(input, sig)
	return string(input), nil
}
