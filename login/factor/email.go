package factor

import (
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxEmailBytes bounds an email address (RFC 5321 §4.5.3.1.3: a path is
// at most 256 octets with its angle brackets).
const MaxEmailBytes = 254

// NormalizeEmail is the one check of an email address for every entry
// point (the sign-in, sign-up and reset forms, the command line, the
// configuration): a bare addr-spec (RFC 5322 §3.4.1) without display
// name, comments, quoting or angle brackets, a domain with a dot, at
// most 254 bytes of valid UTF-8 and no control or space characters — so
// it can go into a mail header, a log line and a page as it is. Leading
// and trailing white space is trimmed; case is kept (storage compares
// without it).
func NormalizeEmail(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > MaxEmailBytes || !utf8.ValidString(s) {
		return "", false
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.IsSpace(r) || strings.ContainsRune(`<>"(),;:\[]`, r) {
			return "", false
		}
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at > 64 || at == len(s)-1 {
		return "", false
	}
	domain := s[at+1:]
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") {
		return "", false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return "", false
	}
	return s, true
}
