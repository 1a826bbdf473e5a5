package clientip

import (
	"net/http"
	"testing"
)

func TestClientAddress(t *testing.T) {
	trusted, err := Parse([]string{"10.0.0.0/8", "192.0.2.1", "::1", "2001:db8:ff::/48"})
	if err != nil {
		t.Fatal(err)
	}
	behind := New(trusted)
	direct := New(nil)
	for _, tc := range []struct {
		name     string
		peer     string
		xff      []string
		fwd      []string
		want     string // with the trusted proxies
		wantNone string // without any ("" : the peer's host)
	}{
		{name: "no proxy", peer: "198.51.100.9:5000", want: "198.51.100.9"},
		{name: "untrusted peer's XFF is ignored", peer: "198.51.100.9:5000", xff: []string{"203.0.113.1"}, want: "198.51.100.9"},
		{name: "trusted proxy", peer: "10.1.2.3:443", xff: []string{"203.0.113.1"}, want: "203.0.113.1", wantNone: "10.1.2.3"},
		{name: "forged left part ignored", peer: "10.1.2.3:443", xff: []string{"1.1.1.1, 203.0.113.1"}, want: "203.0.113.1", wantNone: "10.1.2.3"},
		{name: "two trusted hops", peer: "10.1.2.3:443", xff: []string{"6.6.6.6, 203.0.113.1, 192.0.2.1"}, want: "203.0.113.1", wantNone: "10.1.2.3"},
		{name: "several header lines", peer: "10.1.2.3:443", xff: []string{"6.6.6.6", "203.0.113.1, 10.9.9.9"}, want: "203.0.113.1", wantNone: "10.1.2.3"},
		{name: "all hops trusted", peer: "10.1.2.3:443", xff: []string{"10.0.0.7, 192.0.2.1"}, want: "10.0.0.7", wantNone: "10.1.2.3"},
		{name: "garbage hop stops at the proxy", peer: "10.1.2.3:443", xff: []string{"203.0.113.1, unknown"}, want: "10.1.2.3", wantNone: "10.1.2.3"},
		{name: "empty XFF", peer: "10.1.2.3:443", xff: []string{""}, want: "10.1.2.3", wantNone: "10.1.2.3"},
		{name: "IPv6 peer, XFF with port", peer: "[::1]:443", xff: []string{"[2001:db8::7]:4711"}, want: "2001:db8::7", wantNone: "::1"},
		{name: "mapped IPv4", peer: "[::ffff:10.1.2.3]:443", xff: []string{"::ffff:203.0.113.1"}, want: "203.0.113.1", wantNone: "10.1.2.3"},
		{name: "Forwarded", peer: "10.1.2.3:443", fwd: []string{`for=6.6.6.6, for="[2001:db8::7]:4711";proto=https`}, want: "2001:db8::7", wantNone: "10.1.2.3"},
		{name: "Forwarded obfuscated", peer: "10.1.2.3:443", fwd: []string{`for=_hidden`}, want: "10.1.2.3", wantNone: "10.1.2.3"},
		{name: "XFF wins over Forwarded", peer: "10.1.2.3:443", xff: []string{"203.0.113.1"}, fwd: []string{"for=6.6.6.6"}, want: "203.0.113.1", wantNone: "10.1.2.3"},
		{name: "trusted IPv6 range", peer: "[2001:db8:ff::5]:443", xff: []string{"203.0.113.1"}, want: "203.0.113.1", wantNone: "2001:db8:ff::5"},
		{name: "bad remote addr", peer: "pipe", want: "pipe", wantNone: "pipe"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tc.peer
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			for _, v := range tc.fwd {
				r.Header.Add("Forwarded", v)
			}
			if got := behind(r); got != tc.want {
				t.Errorf("behind trusted proxies: %q, want %q", got, tc.want)
			}
			want := tc.wantNone
			if want == "" {
				want = tc.want
			}
			if got := direct(r); got != want {
				t.Errorf("without trusted proxies: %q, want %q", got, want)
			}
		})
	}
}

func TestParse(t *testing.T) {
	for _, bad := range []string{"", "10.0.0.0/33", "example.com", "10.0.0.1/8/2", "fe80::1%eth0"} {
		if _, err := Parse([]string{bad}); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
	got, err := Parse([]string{"10.1.2.3/8", " 192.0.2.1 ", "::ffff:192.0.2.2"})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].String() != "10.0.0.0/8" || got[1].String() != "192.0.2.1/32" || got[2].String() != "192.0.2.2/32" {
		t.Errorf("Parse = %v", got)
	}
}
