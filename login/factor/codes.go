package factor

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"unicode"
	"unicode/utf8"
)

// maxCodeInput bounds what the normalisers read: anything longer is not a
// code, however many separators it holds.
const maxCodeInput = 128

// ---- Email one-time codes (SPEC §1.3) ----

// EmailCodeDigits is the length of an email one-time code.
const EmailCodeDigits = 6

// NewEmailCode returns 6 decimal digits drawn uniformly from crypto/rand
// (rejection sampling, so no modulo bias); leading zeros included.
func NewEmailCode() string {
	const limit = (1 << 32) / 1_000_000 * 1_000_000 // 4_294_000_000
	var b [4]byte
	for {
		_, _ = rand.Read(b[:])
		if v := binary.BigEndian.Uint32(b[:]); v < limit {
			return digits6(v % 1_000_000)
		}
	}
}

// digits6 writes v (< 10^6) as exactly six ASCII digits.
func digits6(v uint32) string {
	var b [6]byte
	for i := 5; i >= 0; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return string(b[:])
}

// NormalizeEmailCode strips white space and dashes ("123 456", "123-456")
// and requires exactly 6 ASCII digits.
func NormalizeEmailCode(s string) (string, bool) {
	c, ok := compact(s, true)
	if !ok || !allDigits(c, EmailCodeDigits) {
		return "", false
	}
	return c, true
}

// ---- Backup codes (SPEC §1.3) ----

// crockford is Crockford's base32 alphabet: digits and upper-case letters
// without I, L, O and U.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// BackupCodeLen is the number of symbols in a backup code: 16 × 5 bits = 80
// bits of entropy.
const BackupCodeLen = 16

// NewBackupCode returns a fresh backup code in canonical form: 16 symbols of
// Crockford base32 from 10 random bytes, no dashes. Store a keyed MAC of
// this value, never the value; show it with FormatBackupCode.
func NewBackupCode() string {
	var raw [10]byte
	_, _ = rand.Read(raw[:])
	// 80 bits → 16 five-bit groups, most significant first.
	hi := uint64(raw[0])<<32 | uint64(raw[1])<<24 | uint64(raw[2])<<16 | uint64(raw[3])<<8 | uint64(raw[4])
	lo := uint64(raw[5])<<32 | uint64(raw[6])<<24 | uint64(raw[7])<<16 | uint64(raw[8])<<8 | uint64(raw[9])
	var out [BackupCodeLen]byte
	for i := 7; i >= 0; i-- {
		out[i] = crockford[hi&31]
		out[8+i] = crockford[lo&31]
		hi >>= 5
		lo >>= 5
	}
	return string(out[:])
}

// crockfordValue maps an upper-case ASCII byte to its canonical symbol,
// folding Crockford's aliases: O → 0, I and L → 1. It returns 0 for
// anything else (U included, which Crockford reserves).
var crockfordValue = func() (t [256]byte) {
	for i := 0; i < len(crockford); i++ {
		t[crockford[i]] = crockford[i]
	}
	t['O'] = '0'
	t['I'], t['L'] = '1', '1'
	return t
}()

// NormalizeBackupCode accepts a backup code as people type or paste it —
// with or without dashes or spaces, any case, with O for 0 and I or L for
// 1 — and returns the canonical 16 symbols (no dashes) to MAC, or false.
func NormalizeBackupCode(s string) (string, bool) {
	c, ok := compact(s, true)
	if !ok || len(c) != BackupCodeLen {
		return "", false
	}
	var out [BackupCodeLen]byte
	for i := 0; i < len(c); i++ {
		ch := c[i]
		if 'a' <= ch && ch <= 'z' {
			ch -= 'a' - 'A'
		}
		if out[i] = crockfordValue[ch]; out[i] == 0 {
			return "", false
		}
	}
	return string(out[:]), true
}

// FormatBackupCode shows a canonical backup code in groups of four joined by
// dashes: "K7QF-9M2C-XW4P-T8NB".
func FormatBackupCode(canonical string) string {
	return group(canonical, 4, '-')
}

// ---- Device-flow user codes (RFC 8628 §6.1) ----

// userCodeAlphabet is RFC 8628 §6.1's example base-20 set: consonants only,
// so no words form and nothing reads as a digit. It is zitadel/oidc's
// op.CharSetBase20.
const userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"

// UserCodeLen is the number of symbols in a user code (8 × log2(20) ≈ 34.6
// bits, RFC 8628 §5.1 with its rate limiting).
const UserCodeLen = 8

var userCodeSet = func() (t [256]bool) {
	for i := 0; i < len(userCodeAlphabet); i++ {
		t[userCodeAlphabet[i]] = true
	}
	return t
}()

// NormalizeUserCode accepts a user code in any case, with or without its dash
// and spaces (RFC 8628 §6.1: "case-insensitive", "punctuation optional"), and
// returns it as "XXXX-XXXX" — the form zitadel/oidc generates and stores, so
// the result can be looked up directly — or false.
func NormalizeUserCode(s string) (string, bool) {
	c, ok := compact(s, true)
	if !ok || len(c) != UserCodeLen {
		return "", false
	}
	var out [UserCodeLen]byte
	for i := 0; i < len(c); i++ {
		ch := c[i]
		if 'a' <= ch && ch <= 'z' {
			ch -= 'a' - 'A'
		}
		if !userCodeSet[ch] {
			return "", false
		}
		out[i] = ch
	}
	return group(string(out[:]), 4, '-'), true
}

// ---- Digests ----

// Equal compares two digests in constant time (for equal lengths; a length
// mismatch returns false at once, and digest lengths are not secret).
func Equal(a, b []byte) bool {
	return subtle.ConstantTimeCompare(a, b) == 1
}

// ---- Helpers ----

// compact drops white space (and, if dashes, dash-like runes) from s and
// returns the remaining ASCII, or false if s is too long, is not valid
// UTF-8, or holds any other non-ASCII rune.
func compact(s string, dashes bool) (string, bool) {
	if len(s) > maxCodeInput {
		return "", false
	}
	b := make([]byte, 0, len(s))
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
		case dashes && isDash(r):
		case r < utf8.RuneSelf:
			b = append(b, byte(r))
		default: // other non-ASCII, and invalid UTF-8 (utf8.RuneError)
			return "", false
		}
	}
	return string(b), true
}

// isDash reports the hyphens and dashes that keyboards, phones and word
// processors produce for "-".
func isDash(r rune) bool {
	switch r {
	case '-', '\u2010', '\u2011', '\u2012', '\u2013', '\u2014', '\u2015', '\u2212', '\uFE63', '\uFF0D':
		return true
	}
	return false
}

func allDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// group splits s into runs of n bytes joined by sep.
func group(s string, n int, sep byte) string {
	if len(s) <= n {
		return s
	}
	b := make([]byte, 0, len(s)+len(s)/n)
	for i := 0; i < len(s); i += n {
		if i > 0 {
			b = append(b, sep)
		}
		b = append(b, s[i:min(i+n, len(s))]...)
	}
	return string(b)
}
