package factor

import (
	"strings"
	"testing"
	"time"
)

// FuzzNormalizeBackupCode: never panics; whatever it accepts is 16 symbols of
// the alphabet, normalises to itself, and survives FormatBackupCode.
func FuzzNormalizeBackupCode(f *testing.F) {
	for _, s := range []string{
		"K7QF-9M2C-XW4P-T8NB", "k7qf9m2cxw4pt8nb", "OOOO-IIII-LLLL-0000", "UUUU-UUUU-UUUU-UUUU",
		"", "-", "K7QF\u20139M2C", "\xff\xfe", "K7QF 9M2C XW4P T8NB\n", "ı", strings.Repeat("A", 200),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, ok := NormalizeBackupCode(s)
		if !ok {
			if c != "" {
				t.Fatalf("rejected %q but returned %q", s, c)
			}
			return
		}
		if len(c) != BackupCodeLen {
			t.Fatalf("%q → %q: %d symbols", s, c, len(c))
		}
		for i := 0; i < len(c); i++ {
			if strings.IndexByte(crockford, c[i]) < 0 {
				t.Fatalf("%q → %q: %q not in the alphabet", s, c, c[i])
			}
		}
		if again, ok := NormalizeBackupCode(c); !ok || again != c {
			t.Fatalf("not idempotent: %q → %q → %q, %v", s, c, again, ok)
		}
		if again, ok := NormalizeBackupCode(FormatBackupCode(c)); !ok || again != c {
			t.Fatalf("format round trip: %q → %q, %v", c, again, ok)
		}
	})
}

// FuzzVerifyPasswordPHC: a stored string of any shape never panics.
// Everything is parsed; strings that parse are canonical (formatting them
// again gives the same bytes) and, when cheap enough to run under a fuzzer,
// are verified too.
func FuzzVerifyPasswordPHC(f *testing.F) {
	valid, err := HashPassword("password", cheap)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		valid,
		"$argon2id$v=19$m=64,t=1,p=1$" + validSalt + "$" + validKey,
		"$argon2id$v=19$m=19456,t=2,p=1$" + validSalt + "$" + validKey,
		"$argon2id$v=19$m=8,t=1,p=1$" + validSalt + "$" + validKey,
		"$argon2id$v=19$m=0,t=0,p=0$$",
		"$argon2i$v=19$m=64,t=1,p=1$" + validSalt + "$" + validKey,
		"$argon2id$v=19$m=4294967295,t=4294967295,p=255$" + validSalt + "$" + validKey,
		"", "$", "$$$$$", "$argon2id$v=19$m=64,t=1,p=1$\n$\n",
	} {
		f.Add(s, "password")
	}
	f.Fuzz(func(t *testing.T, phc, password string) {
		p, salt, key, err := parsePHC(phc)
		if err != nil {
			if p != (PasswordParams{}) || salt != nil || key != nil {
				t.Fatalf("error %v with values", err)
			}
			if ok, rehash, verr := VerifyPassword(phc, password, cheap); ok || rehash || verr == nil {
				t.Fatalf("parse failed but VerifyPassword = %v, %v, %v", ok, rehash, verr)
			}
			return
		}
		if got := formatPHC(p, salt, key); got != phc {
			t.Fatalf("not canonical: %q parses, formats as %q", phc, got)
		}
		if p.Memory <= 1024 && p.Time <= 2 {
			ok, rehash, err := VerifyPassword(phc, password, cheap)
			if err != nil || (rehash && !ok) {
				t.Fatalf("VerifyPassword = %v, %v, %v", ok, rehash, err)
			}
		}
	})
}

// FuzzCodeInputs: the other normalisers and VerifyTOTP never panic and keep
// their output shapes.
func FuzzCodeInputs(f *testing.F) {
	for _, s := range []string{"123456", "123 456", "WDJB-MJHT", "wdjbmjht", "", "\xff", "１２３４５６"} {
		f.Add(s)
	}
	now := time.Unix(1_750_000_000, 0)
	f.Fuzz(func(t *testing.T, s string) {
		if c, ok := NormalizeEmailCode(s); ok && !allDigits(c, 6) {
			t.Fatalf("email code %q → %q", s, c)
		}
		if c, ok := NormalizeTOTPCode(s); ok && !allDigits(c, 6) {
			t.Fatalf("TOTP code %q → %q", s, c)
		}
		if c, ok := NormalizeUserCode(s); ok {
			if again, ok2 := NormalizeUserCode(c); len(c) != 9 || c[4] != '-' || !ok2 || again != c {
				t.Fatalf("user code %q → %q → %q", s, c, again)
			}
		}
		if step, ok := VerifyTOTP(rfcSeed, s, now, 0); ok && (step < TOTPStep(now)-1 || step > TOTPStep(now)+1) {
			t.Fatalf("VerifyTOTP(%q) matched step %d outside the window", s, step)
		}
	})
}
