package factor

import "testing"

func TestNormalizeEmail(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"ada@example.com", "ada@example.com", true},
		{"  Ada.Lovelace+tag@Example.co.uk \n", "Ada.Lovelace+tag@Example.co.uk", true},
		{"o'brien@example.ie", "o'brien@example.ie", true},
		{"jörg@bücher.example", "jörg@bücher.example", true},
		{"evil@example.com\r\nBcc: x@example.com", "", false}, // header injection
		{"evil@example.com\nBcc: x@example.com", "", false},
		{"<script>@example.com", "", false},
		{"Ada <ada@example.com>", "", false},
		{`"ada"@example.com`, "", false},
		{"ada(comment)@example.com", "", false},
		{"ada@example.com, bob@example.com", "", false},
		{"ada@localhost", "", false},
		{"ada@example..com", "", false},
		{"ada@.example.com", "", false},
		{"ada@example.com.", "", false},
		{"@example.com", "", false},
		{"ada@", "", false},
		{"ada", "", false},
		{"", "", false},
		{"a\x00a@example.com", "", false},
		{"a\xffa@example.com", "", false},
		{"ada@exa mple.com", "", false},
		{"a@b@example.com", "", false},
		{string(make([]byte, 65)) + "@example.com", "", false},
	} {
		got, ok := NormalizeEmail(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	long := ""
	for len(long) < 250 {
		long += "a"
	}
	if _, ok := NormalizeEmail("x@" + long + ".com"); ok {
		t.Error("an address over 254 bytes was accepted")
	}
}

func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{"ada@example.com", "evil@example.com\r\nBcc: x@example.com", "<script>@example.com", "a@b.c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, ok := NormalizeEmail(s)
		if !ok {
			return
		}
		if again, ok2 := NormalizeEmail(e); !ok2 || again != e {
			t.Fatalf("not idempotent: %q → %q → %q, %v", s, e, again, ok2)
		}
		for _, r := range e {
			if r < 0x20 || r == 0x7f || r == '<' || r == '>' {
				t.Fatalf("accepted %q", e)
			}
		}
	})
}
