package factor

import (
	_ "embed"
	"errors"
	"strings"
	"sync"
	"unicode/utf8"
)

// Rules for a new password (NIST SP 800-63B §5.1.1.2: a minimum length, a
// generous maximum, a check against known breached values, and no
// composition rules).
const (
	MinPasswordRunes = 8
	MaxPasswordBytes = 1024
)

// The rule a new password broke. Test with errors.Is; the texts are plain
// enough to show, but the pages use their own words.
var (
	ErrPasswordTooShort = errors.New("password is too short: use at least 8 characters")
	ErrPasswordTooLong  = errors.New("password is too long: use at most 1024 bytes")
	ErrPasswordCommon   = errors.New("password is too common: it is on a list of passwords found in data breaches")
	ErrPasswordIsEmail  = errors.New("password must not be your email address")
	ErrPasswordEncoding = errors.New("password is not valid UTF-8 text")
)

// CheckNewPassword applies the rules for a password being set (sign-up,
// change, reset, operator-created user) and returns the first rule broken,
// or nil. The rules, in order: valid UTF-8; at least MinPasswordRunes
// characters (runes, so "pässwörd" counts 8); at most MaxPasswordBytes
// bytes; not the email address nor its local part (case-insensitive); not in
// the embedded list of most common breached passwords (case-insensitive).
func CheckNewPassword(password, email string) error {
	if !utf8.ValidString(password) {
		return ErrPasswordEncoding
	}
	if utf8.RuneCountInString(password) < MinPasswordRunes {
		return ErrPasswordTooShort
	}
	if len(password) > MaxPasswordBytes {
		return ErrPasswordTooLong
	}
	if email = strings.TrimSpace(email); email != "" {
		local := email
		if at := strings.LastIndexByte(email, '@'); at >= 0 {
			local = email[:at]
		}
		if strings.EqualFold(password, email) || (local != "" && strings.EqualFold(password, local)) {
			return ErrPasswordIsEmail
		}
	}
	if IsCommonPassword(password) {
		return ErrPasswordCommon
	}
	return nil
}

//go:embed common-passwords.txt
var commonPasswordsText string

// commonPasswords is the embedded list as a set of lower-cased entries, built
// on first use. A package-level value is fine here: it is a constant table
// derived from embedded data, with no configuration and no I/O.
var commonPasswords = sync.OnceValue(func() map[string]struct{} {
	set := make(map[string]struct{}, 2048)
	for line := range strings.Lines(commonPasswordsText) {
		line = strings.TrimRight(line, "\r\n")
		if line == "" || line[0] == '#' {
			continue
		}
		set[strings.ToLower(line)] = struct{}{}
	}
	return set
})

// IsCommonPassword reports whether password, compared case-insensitively, is
// on the embedded list of most common breached passwords.
func IsCommonPassword(password string) bool {
	_, found := commonPasswords()[strings.ToLower(password)]
	return found
}
