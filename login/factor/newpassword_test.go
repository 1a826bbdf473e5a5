package factor

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckNewPassword(t *testing.T) {
	const email = "Alice.Smith@Example.com"
	for _, tc := range []struct {
		name, password, email string
		want                  error
	}{
		{"good", "correct horse battery staple", email, nil},
		{"good, exactly 8", "x7#Kp2!q", email, nil},
		{"empty", "", email, ErrPasswordTooShort},
		{"7 characters", "x7#Kp2!", email, ErrPasswordTooShort},
		{"7 runes in 14 bytes", "ääääääá", email, ErrPasswordTooShort},
		{"8 runes of 2 bytes", "äöüßéèçñ", email, nil},
		{"8 emoji", "🔑🔒🗝🚪🔑🔒🗝🚪", email, nil},
		{"1024 bytes", strings.Repeat("ab", 512), email, nil},
		{"1025 bytes", strings.Repeat("ab", 512) + "c", email, ErrPasswordTooLong},
		{"long in runes", strings.Repeat("ä", 513), email, ErrPasswordTooLong}, // 1026 bytes
		{"invalid utf-8", "abcdefgh\xff", email, ErrPasswordEncoding},
		{"the email", "Alice.Smith@Example.com", email, ErrPasswordIsEmail},
		{"the email, other case", "alice.smith@example.com", email, ErrPasswordIsEmail},
		{"the local part", "alice.smith", email, ErrPasswordIsEmail},
		{"the local part, upper", "ALICE.SMITH", email, ErrPasswordIsEmail},
		{"email with spaces around", "alice.smith@example.com", "  " + email + " ", ErrPasswordIsEmail},
		{"contains the local part", "alice.smith!2024", email, nil},
		{"short local part", "bob", "bob@example.com", ErrPasswordTooShort},
		{"no email given", "alice.smith", "", nil},
		{"email without @", "alicesmith", "alicesmith", ErrPasswordIsEmail},
		{"common", "password", email, ErrPasswordCommon},
		{"common, capitalised", "Password1", email, ErrPasswordCommon},
		{"common, upper", "QWERTY123", email, ErrPasswordCommon},
		{"common digits", "12345678", email, ErrPasswordCommon},
		{"common phrase", "iloveyou", email, ErrPasswordCommon},
		{"common, with trailing space is not common", "password ", email, nil},
		{"not common", "tangerine-otter-81", email, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckNewPassword(tc.password, tc.email)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("CheckNewPassword(%q, %q) = %v, want %v", tc.password, tc.email, err, tc.want)
			}
		})
	}
}

func TestCommonPasswordList(t *testing.T) {
	set := commonPasswords()
	if len(set) < 1000 {
		t.Fatalf("list has %d entries, want at least 1000", len(set))
	}
	for _, pw := range []string{
		"password", "12345678", "123456789", "1234567890", "qwerty123", "iloveyou",
		"password1", "Password1", "sunshine", "princess", "football", "baseball",
		"11111111", "1q2w3e4r", "qwertyuiop", "trustno1", "superman", "starwars",
		"welcome1", "passw0rd", "abc12345", "zaq12wsx", "1qaz2wsx", "letmein1",
		"password123", "P@ssw0rd", "Qwerty1234",
	} {
		if !IsCommonPassword(pw) {
			t.Errorf("%q is not on the list", pw)
		}
	}
	for entry := range set {
		if entry != strings.ToLower(entry) || strings.TrimSpace(entry) != entry || entry == "" {
			t.Errorf("entry %q is not a lower-case, trimmed, non-empty line", entry)
		}
		if len([]rune(entry)) < MinPasswordRunes {
			t.Errorf("entry %q is shorter than the minimum length and can never matter", entry)
		}
	}
	if IsCommonPassword("# Most common passwords, used by CheckNewPassword to refuse a new password.") {
		t.Error("a header comment was loaded as an entry")
	}
}
