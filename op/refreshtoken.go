package op

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"strings"

	"github.com/latchkey/latchkey/storage/keyring"
)

// The value of a refresh token is "<family>.<secret>": the family its
// store search starts from (storage.GetRefreshTokenByHash), and a secret
// of 32 bytes — 16 random, then the first 16 of the HMAC of the family
// and those random bytes under keyring.PurposeRefreshIssued — in
// unpadded base64url. Only the HMAC of the whole value is stored.
//
// The tag is what lets a value that is no longer stored count as reuse:
// a token rotated away and compacted out of storage (storage.Sweep) is
// recognised by its family, and only a value the OP issued may end that
// family. Anyone who has seen a family id (a code-flow family is its
// sign-in's id) could otherwise end a user's grant with "<family>.x".
// Tokens issued before the tag (32 random bytes) still refresh while
// they are stored; once compacted, they are unknown, not reuse.
const (
	refreshRandomLen = 16
	refreshTagLen    = 16
	// refreshSecretLen is the secret's length in base64url.
	refreshSecretLen = (8*(refreshRandomLen+refreshTagLen) + 5) / 6
	// refreshFamilyMax is the longest family a value may name.
	refreshFamilyMax = 64
)

// NewRefreshToken is the value of a new refresh token of family (every
// token Latchkey issues; tools that seed tokens make them with it too).
func NewRefreshToken(kr *keyring.Keyring, family string) string {
	var b [refreshRandomLen + refreshTagLen]byte
	if _, err := rand.Read(b[:refreshRandomLen]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	copy(b[refreshRandomLen:], refreshTag(kr, family, b[:refreshRandomLen]))
	return family + "." + base64.RawURLEncoding.EncodeToString(b[:])
}

// RefreshFamilyOf is the family a presented refresh token names ("" for
// tokens issued before the prefix, and for garbage): with its digest, how
// the store finds it.
func RefreshFamilyOf(raw string) string {
	fam, _, ok := strings.Cut(raw, ".")
	if !ok || len(fam) == 0 || len(fam) > refreshFamilyMax {
		return ""
	}
	return fam
}

// refreshIssued reports, in constant time, whether raw carries the tag of
// a value the OP issued for the family it names.
func refreshIssued(kr *keyring.Keyring, raw string) bool {
	fam := RefreshFamilyOf(raw)
	if fam == "" || len(raw)-len(fam)-1 != refreshSecretLen {
		return false
	}
	secret := raw[len(fam)+1:]
	var b [refreshRandomLen + refreshTagLen]byte
	if n, err := base64.RawURLEncoding.Decode(b[:], []byte(secret)); err != nil || n != len(b) {
		return false
	}
	return subtle.ConstantTimeCompare(refreshTag(kr, fam, b[:refreshRandomLen]), b[refreshRandomLen:]) == 1
}

// refreshTag: the first refreshTagLen bytes of the HMAC of family, a dot
// and random.
func refreshTag(kr *keyring.Keyring, family string, random []byte) []byte {
	msg := make([]byte, 0, len(family)+1+len(random))
	msg = append(append(append(msg, family...), '.'), random...)
	return kr.MAC(keyring.PurposeRefreshIssued, msg)[:refreshTagLen]
}
