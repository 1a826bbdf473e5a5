// Package keyring turns the one server secret (config secret_key) into the
// purpose-bound keys Latchkey needs: HMAC-SHA256 digests for everything we
// look up but must not keep in the clear (cookies, codes, refresh tokens,
// client secrets) and AES-256-GCM sealing for what we must read back
// (TOTP seeds, signing keys, upstream client secrets).
//
// Each purpose gets its own key (HKDF-SHA256 with the purpose as info), so a
// digest computed for one purpose can never be replayed as another, and the
// sealing key is never used for MACs. Storage never sees the secret: callers
// pass it digests and ciphertexts.
package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"hash"
	"sync"
)

// Purposes. A new purpose is a new constant, never a reused one.
const (
	PurposeSession      = "session-cookie"
	PurposeDevice       = "device-cookie"
	PurposeBrowser      = "browser-handle"
	PurposeEmailCode    = "email-code"
	PurposeBackupCode   = "backup-code"
	PurposeRefresh      = "refresh-token"
	PurposeAuthCode     = "auth-code"
	PurposeClient       = "client-secret"
	PurposeAction       = "action-token"
	PurposeDeviceCode   = "device-code"
	PurposeUpstream     = "upstream-state"
	PurposeCSRF         = "csrf"
	PurposeAccountSess  = "account-session"
	PurposeUserCode     = "device-user-code"
	PurposeUserCodeHalf = "device-user-code-half"
	// PurposeOutbox seals queued mails (AES-GCM associated data prefix).
	PurposeOutbox = "mail-outbox"
	// PurposeIdentifier digests emails into keys that must not reveal them
	// (throttle keys, stand-in ids of unknown accounts).
	PurposeIdentifier = "identifier"
	// PurposePasskeyChallenge digests WebAuthn challenges in flight.
	PurposePasskeyChallenge = "passkey-challenge"
	// PurposeBrowserMove derives a browser's next handle from its current
	// one when a sign-in moves on (login/internal/web MoveBrowser).
	PurposeBrowserMove = "browser-handle-move"
	// PurposePAR digests pushed authorization request_uris (RFC 9126).
	PurposePAR = "par-request-uri"
	// PurposeDPoPNonce authenticates the provider's DPoP nonces (RFC 9449 §8).
	PurposeDPoPNonce = "dpop-nonce"
	// PurposeRefreshIssued tags the secret of every refresh token the OP
	// issues, so that a value it never issued cannot pass for one that was
	// rotated away (op.NewRefreshToken).
	PurposeRefreshIssued = "refresh-token-issued"
)

// MinSecretLen is the shortest server secret accepted.
const MinSecretLen = 32

// ErrOpen is returned when a ciphertext does not authenticate.
var ErrOpen = errors.New("keyring: cannot open sealed value")

// Keyring holds the derived keys. It is safe for concurrent use.
type Keyring struct {
	secret []byte
	aead   cipher.AEAD

	mu   sync.RWMutex
	macs map[string]*sync.Pool // purpose → pool of keyed hash.Hash
}

// New derives the keys from secret (at least MinSecretLen bytes).
func New(secret []byte) (*Keyring, error) {
	if len(secret) < MinSecretLen {
		return nil, errors.New("keyring: secret must be at least 32 bytes")
	}
	k := &Keyring{secret: append([]byte(nil), secret...), macs: map[string]*sync.Pool{}}
	sealKey, err := k.derive("seal-aes-256-gcm")
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(sealKey)
	if err != nil {
		return nil, err
	}
	if k.aead, err = cipher.NewGCM(block); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *Keyring) derive(info string) ([]byte, error) {
	return hkdf.Key(sha256.New, k.secret, []byte("latchkey/v1"), info, 32)
}

// Key returns a 32-byte key derived for an external purpose (e.g. the OP's
// token crypto key).
func (k *Keyring) Key(purpose string) [32]byte {
	var out [32]byte
	b, err := k.derive("key:" + purpose)
	if err != nil {
		panic(err) // hkdf.Key only fails for lengths > 255*32
	}
	copy(out[:], b)
	return out
}

func (k *Keyring) pool(purpose string) *sync.Pool {
	k.mu.RLock()
	p := k.macs[purpose]
	k.mu.RUnlock()
	if p != nil {
		return p
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if p = k.macs[purpose]; p != nil {
		return p
	}
	key, err := k.derive("mac:" + purpose)
	if err != nil {
		panic(err)
	}
	p = &sync.Pool{New: func() any { return hmac.New(sha256.New, key) }}
	k.macs[purpose] = p
	return p
}

// MAC returns HMAC-SHA256(purpose key, data).
func (k *Keyring) MAC(purpose string, data []byte) []byte {
	p := k.pool(purpose)
	h := p.Get().(hash.Hash)
	h.Reset()
	h.Write(data)
	sum := h.Sum(make([]byte, 0, sha256.Size))
	p.Put(h)
	return sum
}

// MACString is MAC of a string.
func (k *Keyring) MACString(purpose, s string) []byte { return k.MAC(purpose, []byte(s)) }

// UserCodeDigests are what is stored of an RFC 8628 user code (its
// canonical "XXXX-XXXX" form): the HMAC of the whole code, and the HMAC of
// its first half, which lets wrong guesses that share it count against
// the authorization they aim at.
func (k *Keyring) UserCodeDigests(code string) (full, half []byte) {
	h := code
	if i := len(code) / 2; i > 0 {
		h = code[:i]
	}
	return k.MACString(PurposeUserCode, code), k.MACString(PurposeUserCodeHalf, h)
}

// Verify reports, in constant time, whether mac is the MAC of data.
func (k *Keyring) Verify(purpose string, data, mac []byte) bool {
	return subtle.ConstantTimeCompare(k.MAC(purpose, data), mac) == 1
}

// Seal encrypts plaintext; ad binds the ciphertext to its context (e.g. the
// row id) so that a sealed value cannot be moved to another row.
func (k *Keyring) Seal(plaintext, ad []byte) []byte {
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return k.aead.Seal(nonce, nonce, plaintext, ad)
}

// Open decrypts what Seal produced with the same ad.
func (k *Keyring) Open(sealed, ad []byte) ([]byte, error) {
	n := k.aead.NonceSize()
	if len(sealed) < n+k.aead.Overhead() {
		return nil, ErrOpen
	}
	pt, err := k.aead.Open(nil, sealed[:n], sealed[n:], ad)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// NewToken returns a random URL-safe token carrying 256 bits.
func NewToken() string {
	return RandomString(32)
}

// RandomString returns n random bytes, base64url-encoded without padding.
func RandomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
