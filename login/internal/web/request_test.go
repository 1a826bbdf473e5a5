package web

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestTruncateOnCharacterBoundary: a cut never splits a character, so
// valid text stays valid (PostgreSQL refuses half a character).
func TestTruncateOnCharacterBoundary(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 5, "abc"},
		{"abc", 3, "abc"},
		{"abc", 2, "ab"},
		{"aé", 2, "a"},   // é is 2 bytes
		{"aé", 3, "aé"},  //
		{"a€", 3, "a"},   // € is 3 bytes
		{"a€", 2, "a"},   //
		{"a🙂", 4, "a"},   // 4 bytes
		{"a🙂b", 5, "a🙂"}, //
		{"é", 1, ""},
		{"abc", 0, ""},
	} {
		got := Truncate(tc.in, tc.n)
		if got != tc.want || !utf8.ValidString(got) || len(got) > tc.n {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
	// Every cut of a long mixed string is valid and as long as it can be.
	s := strings.Repeat("aé€🙂", 50)
	for n := 0; n <= len(s); n++ {
		got := Truncate(s, n)
		if !utf8.ValidString(got) || len(got) > n || len(got) < n-3 {
			t.Fatalf("Truncate(_, %d) = %d bytes, valid %v", n, len(got), utf8.ValidString(got))
		}
	}
}

func TestCleanText(t *testing.T) {
	for in, want := range map[string]string{
		"Firefox/128.0": "Firefox/128.0",
		"a\x00b":        "ab",
		"a\xffb":        "a\uFFFDb",
		"tab\there\r\n": "tabhere",
		"Zoë 名前":        "Zoë 名前",
		"caf\xc3":       "caf\uFFFD",
	} {
		if got := CleanText(in); got != want {
			t.Errorf("CleanText(%q) = %q, want %q", in, got, want)
		}
	}
}
