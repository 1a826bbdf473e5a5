package factor

import (
	"math"
	"strings"
	"testing"

	zop "github.com/zitadel/oidc/v3/pkg/op"
)

func TestNewEmailCodeFormat(t *testing.T) {
	for i := 0; i < 1000; i++ {
		c := NewEmailCode()
		if !allDigits(c, 6) {
			t.Fatalf("NewEmailCode() = %q", c)
		}
		if n, ok := NormalizeEmailCode(c); !ok || n != c {
			t.Fatalf("NormalizeEmailCode(%q) = %q, %v", c, n, ok)
		}
	}
}

// TestNewEmailCodeDistribution is a sanity check, not a randomness test: over
// 60 000 codes every digit appears in every position about equally often, and
// codes with a leading zero occur (about 10 % of them).
func TestNewEmailCodeDistribution(t *testing.T) {
	const n = 60_000
	var counts [6][10]int
	leadingZero := 0
	seen := make(map[string]struct{}, n)
	for i := 0; i < n; i++ {
		c := NewEmailCode()
		seen[c] = struct{}{}
		if c[0] == '0' {
			leadingZero++
		}
		for p := 0; p < 6; p++ {
			counts[p][c[p]-'0']++
		}
	}
	// Expected 6 000 per cell, σ ≈ 73; allow ±8 σ so the test never flakes.
	for p := 0; p < 6; p++ {
		for d := 0; d < 10; d++ {
			if got := counts[p][d]; math.Abs(float64(got)-n/10) > 600 {
				t.Errorf("digit %d at position %d: %d times, expected about %d", d, p, got, n/10)
			}
		}
	}
	if leadingZero == 0 {
		t.Error("no code with a leading zero")
	}
	// 60 000 draws from 10^6: about 1 750 collisions expected; far more
	// would mean a broken generator.
	if len(seen) < n-3000 {
		t.Errorf("only %d distinct codes in %d", len(seen), n)
	}
}

func TestNormalizeEmailCode(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"123456", "123456", true},
		{"012345", "012345", true},
		{"000000", "000000", true},
		{"123 456", "123456", true},
		{"123-456", "123456", true},
		{" 12-34 56 ", "123456", true},
		{"123\u2013456", "123456", true}, // en dash from a word processor
		{"123\u00a0456", "123456", true}, // no-break space
		{"\t123456\n", "123456", true},
		{"", "", false},
		{"12345", "", false},
		{"1234567", "", false},
		{"12345a", "", false},
		{"12.456", "", false},
		{"12_456", "", false},
		{"+12345", "", false},
		{"１２３４５６", "", false},
		{"12345\xff", "", false},
		{strings.Repeat("-", 200) + "123456", "", false},
	} {
		got, ok := NormalizeEmailCode(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("NormalizeEmailCode(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestNewBackupCode(t *testing.T) {
	seen := make(map[string]bool)
	var symbols [256]int
	for i := 0; i < 2000; i++ {
		c := NewBackupCode()
		if len(c) != BackupCodeLen {
			t.Fatalf("NewBackupCode() = %q: %d symbols", c, len(c))
		}
		for j := 0; j < len(c); j++ {
			if strings.IndexByte(crockford, c[j]) < 0 {
				t.Fatalf("NewBackupCode() = %q: %q not in the alphabet", c, c[j])
			}
			symbols[c[j]]++
		}
		// Canonical: normalising it changes nothing.
		if n, ok := NormalizeBackupCode(c); !ok || n != c {
			t.Fatalf("NormalizeBackupCode(%q) = %q, %v", c, n, ok)
		}
		if seen[c] {
			t.Fatalf("duplicate backup code %q", c)
		}
		seen[c] = true
	}
	// 16 symbols × 5 bits = 80 bits: the alphabet has exactly 32 symbols and
	// all of them are used, none outside it.
	if len(crockford) != 32 || BackupCodeLen*5 < 80 {
		t.Fatal("backup codes carry fewer than 80 bits")
	}
	used := 0
	for _, n := range symbols {
		if n > 0 {
			used++
		}
	}
	if used != 32 {
		t.Fatalf("%d distinct symbols used over 32 000 draws, want 32", used)
	}
	// 32 000 symbols, 1 000 expected per symbol; ±300 is over 9 σ.
	for i := 0; i < len(crockford); i++ {
		if n := symbols[crockford[i]]; n < 700 || n > 1300 {
			t.Errorf("symbol %q drawn %d times, expected about 1000", crockford[i], n)
		}
	}
}

func TestFormatBackupCode(t *testing.T) {
	for in, want := range map[string]string{
		"K7QF9M2CXW4PT8NB": "K7QF-9M2C-XW4P-T8NB",
		"0000000000000000": "0000-0000-0000-0000",
		"ABCD":             "ABCD",
		"ABCDE":            "ABCD-E",
		"":                 "",
	} {
		if got := FormatBackupCode(in); got != want {
			t.Errorf("FormatBackupCode(%q) = %q, want %q", in, got, want)
		}
	}
	c := NewBackupCode()
	f := FormatBackupCode(c)
	if len(f) != 19 || f[4] != '-' || f[9] != '-' || f[14] != '-' {
		t.Fatalf("FormatBackupCode(%q) = %q", c, f)
	}
	if n, ok := NormalizeBackupCode(f); !ok || n != c {
		t.Fatalf("NormalizeBackupCode(FormatBackupCode(%q)) = %q, %v", c, n, ok)
	}
}

func TestNormalizeBackupCode(t *testing.T) {
	const canon = "K7QF9M2CXW4PT8NB"
	for _, tc := range []struct {
		name, in, want string
		ok             bool
	}{
		{"canonical", canon, canon, true},
		{"formatted", "K7QF-9M2C-XW4P-T8NB", canon, true},
		{"lower case", "k7qf-9m2c-xw4p-t8nb", canon, true},
		{"mixed case, no dashes", "k7Qf9M2cXw4pT8nB", canon, true},
		{"spaces", "K7QF 9M2C XW4P T8NB", canon, true},
		{"stray separators", " K7-QF9M2C--XW4P T8NB\n", canon, true},
		{"unicode dash", "K7QF\u20119M2C\u2013XW4P\u2014T8NB", canon, true},
		{"O for zero", "OOOO-OOOO-OOOO-OOOO", "0000000000000000", true},
		{"o for zero", "oooo-0000-oooo-0000", "0000000000000000", true},
		{"I and L for one", "IIII-LLLL-iiii-llll", "1111111111111111", true},
		{"aliases mixed in", "K7QF-9M2C-XW4P-T8NB", canon, true},
		{"all symbols", "0123-4567-89AB-CDEF", "0123456789ABCDEF", true},
		{"rest of alphabet", "GHJK-MNPQ-RSTV-WXYZ", "GHJKMNPQRSTVWXYZ", true},
		{"U is not a symbol", "UUUU-UUUU-UUUU-UUUU", "", false},
		{"u is not a symbol", "K7QF-9M2C-XW4P-T8Nu", "", false},
		{"too short", "K7QF-9M2C-XW4P-T8N", "", false},
		{"too long", "K7QF-9M2C-XW4P-T8NBX", "", false},
		{"empty", "", "", false},
		{"only dashes", "----", "", false},
		{"punctuation", "K7QF.9M2C.XW4P.T8NB", "", false},
		{"underscore", "K7QF_9M2C_XW4P_T8NB", "", false},
		{"non-ASCII letter", "K7QF-9M2C-XW4P-T8NÉ", "", false},
		{"dotless i", "K7QF-9M2C-XW4P-T8Nı", "", false}, // ToUpper would make it I
		{"full-width", "Ｋ7QF-9M2C-XW4P-T8NB", "", false},
		{"invalid utf-8", "K7QF-9M2C-XW4P-T8N\xff", "", false},
		{"NUL", "K7QF-9M2C-XW4P-T8N\x00", "", false},
		{"huge", strings.Repeat(" ", 1000) + canon, "", false},
		{"an email code", "123456", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := NormalizeBackupCode(tc.in)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("NormalizeBackupCode(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// TestZitadelUserCodes: the OP's device flow issues zitadel/oidc's user
// codes (op.UserCodeBase20); every one must come back unchanged from
// NormalizeUserCode, which is how the verification page looks them up.
func TestZitadelUserCodes(t *testing.T) {
	if userCodeAlphabet != zop.CharSetBase20 {
		t.Fatalf("alphabet %q, zitadel's %q", userCodeAlphabet, zop.CharSetBase20)
	}
	cfg := zop.UserCodeBase20
	for i := 0; i < 500; i++ {
		c, err := zop.NewUserCode([]rune(cfg.CharSet), cfg.CharAmount, cfg.DashInterval)
		if err != nil {
			t.Fatal(err)
		}
		if n, ok := NormalizeUserCode(c); !ok || n != c {
			t.Fatalf("NormalizeUserCode(%q) = %q, %v", c, n, ok)
		}
		if n, ok := NormalizeUserCode(strings.ToLower(strings.ReplaceAll(c, "-", ""))); !ok || n != c {
			t.Fatalf("NormalizeUserCode(lower, no dash %q) = %q, %v", c, n, ok)
		}
	}
}

func TestNormalizeUserCode(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"WDJB-MJHT", "WDJB-MJHT", true}, // RFC 8628 §3.2 example
		{"wdjb-mjht", "WDJB-MJHT", true},
		{"WDJBMJHT", "WDJB-MJHT", true},
		{"wdjb mjht", "WDJB-MJHT", true},
		{" W-D-J-B-M-J-H-T ", "WDJB-MJHT", true},
		{"BCDF-GHJK", "BCDF-GHJK", true},
		{"LMNP-QRST", "LMNP-QRST", true},
		{"VWXZ-VWXZ", "VWXZ-VWXZ", true},
		{"WDJB-MJHA", "", false}, // vowel
		{"WDJB-MJHY", "", false}, // Y is not in the set
		{"WDJB-MJH1", "", false},
		{"WDJB-MJH", "", false},
		{"WDJB-MJHTB", "", false},
		{"", "", false},
		{"WDJB_MJHT", "", false},
		{"WDJB-MJHÞ", "", false},
	} {
		got, ok := NormalizeUserCode(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("NormalizeUserCode(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestEqual(t *testing.T) {
	a := []byte{1, 2, 3, 4}
	for _, tc := range []struct {
		b    []byte
		want bool
	}{
		{[]byte{1, 2, 3, 4}, true},
		{[]byte{1, 2, 3, 5}, false},
		{[]byte{1, 2, 3}, false},
		{nil, false},
	} {
		if got := Equal(a, tc.b); got != tc.want {
			t.Errorf("Equal(%v, %v) = %v", a, tc.b, got)
		}
	}
	if !Equal(nil, []byte{}) {
		t.Error("Equal(nil, empty) = false")
	}
}
