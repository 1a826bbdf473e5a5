package op

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
)

// tokenCrypto seals what zitadel makes opaque: access tokens ("id:subject")
// and authorization codes (the request id). zitadel's own AES-GCM crypto
// wraps the same AEAD in a JWE, whose JSON header and go-jose machinery
// cost more than the rest of a client_credentials request; these values
// are ours alone (no one else parses them), so a bare nonce‖ciphertext in
// base64url is enough. AES-256-GCM, random 96-bit nonces, key from the
// keyring.
type tokenCrypto struct{ aead cipher.AEAD }

var _ interface {
	Encrypt(string) (string, error)
	Decrypt(string) (string, error)
} = (*tokenCrypto)(nil)

var errBadToken = errors.New("op: malformed token")

func newTokenCrypto(key [32]byte) (*tokenCrypto, error) {
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &tokenCrypto{aead: aead}, nil
}

func (c *tokenCrypto) Encrypt(s string) (string, error) {
	n := c.aead.NonceSize()
	buf := make([]byte, n, n+len(s)+c.aead.Overhead())
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(c.aead.Seal(buf, buf, []byte(s), nil)), nil
}

func (c *tokenCrypto) Decrypt(s string) (string, error) {
	if len(s) > 4096 {
		return "", errBadToken
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	n := c.aead.NonceSize()
	if err != nil || len(b) < n+c.aead.Overhead() {
		return "", errBadToken
	}
	pt, err := c.aead.Open(nil, b[:n], b[n:], nil)
	if err != nil {
		return "", errBadToken
	}
	return string(pt), nil
}
