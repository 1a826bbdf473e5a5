package config

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"slices"

	jose "github.com/go-jose/go-jose/v4"
)

// ClientKeyAlgorithms are the JWS algorithms a client may sign its
// private_key_jwt assertions with (issue 12): RS256, PS256, ES256, EdDSA.
var ClientKeyAlgorithms = []string{"RS256", "PS256", "ES256", "EdDSA"}

// CheckJWKS returns what is wrong with a client's JWK set, or "": it must
// hold at least one public signing key usable with ClientKeyAlgorithms
// (RSA of 2048 bits or more, EC P-256, Ed25519), and no private or
// symmetric key. The provider applies the same rule to keys fetched from
// a jwks_uri.
func CheckJWKS(raw []byte) string {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		return fmt.Sprintf("is not a JWK set: %v", err)
	}
	if len(set.Keys) == 0 {
		return "has no keys"
	}
	for i, k := range set.Keys {
		if msg := CheckClientKey(k); msg != "" {
			return fmt.Sprintf("key %d (kid %q) %s", i, k.KeyID, msg)
		}
	}
	return ""
}

// CheckClientKey returns what makes k unusable as a client's signing key,
// or "".
func CheckClientKey(k jose.JSONWebKey) string {
	if !k.IsPublic() {
		return "is a private or symmetric key: register only the public key"
	}
	if !k.Valid() {
		return "is not a valid key"
	}
	if k.Use != "" && k.Use != "sig" {
		return fmt.Sprintf("has use %q, want sig", k.Use)
	}
	if k.Algorithm != "" && !slices.Contains(ClientKeyAlgorithms, k.Algorithm) {
		return fmt.Sprintf("has alg %q; supported: %v", k.Algorithm, ClientKeyAlgorithms)
	}
	switch pk := k.Key.(type) {
	case *rsa.PublicKey:
		if pk.N.BitLen() < 2048 {
			return fmt.Sprintf("is RSA of %d bits, want at least 2048", pk.N.BitLen())
		}
	case *ecdsa.PublicKey:
		if pk.Curve != elliptic.P256() {
			return "is on a curve other than P-256 (ES256)"
		}
	case ed25519.PublicKey:
	default:
		return fmt.Sprintf("has an unsupported key type %T", k.Key)
	}
	return ""
}
