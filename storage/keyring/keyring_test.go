package keyring

import (
	"bytes"
	"testing"
)

func TestKeyring(t *testing.T) {
	if _, err := New([]byte("short")); err == nil {
		t.Fatal("a short secret was accepted")
	}
	k1, err := New(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := New(bytes.Repeat([]byte{2}, 32))

	// MACs are deterministic, purpose-bound and secret-bound.
	a := k1.MACString(PurposeSession, "token")
	if !bytes.Equal(a, k1.MACString(PurposeSession, "token")) {
		t.Fatal("MAC not deterministic")
	}
	if bytes.Equal(a, k1.MACString(PurposeDevice, "token")) || bytes.Equal(a, k2.MACString(PurposeSession, "token")) {
		t.Fatal("MAC not bound to purpose and secret")
	}
	if !k1.Verify(PurposeSession, []byte("token"), a) || k1.Verify(PurposeSession, []byte("tokeN"), a) {
		t.Fatal("Verify")
	}

	// Sealing: round trip, bound to the associated data and the secret,
	// tamper-evident, and randomised.
	s1 := k1.Seal([]byte("seed"), []byte("row-1"))
	if pt, err := k1.Open(s1, []byte("row-1")); err != nil || string(pt) != "seed" {
		t.Fatalf("open: %q %v", pt, err)
	}
	if _, err := k1.Open(s1, []byte("row-2")); err == nil {
		t.Fatal("opened with other associated data")
	}
	if _, err := k2.Open(s1, []byte("row-1")); err == nil {
		t.Fatal("opened with another secret")
	}
	s1[len(s1)-1] ^= 1
	if _, err := k1.Open(s1, []byte("row-1")); err == nil {
		t.Fatal("opened a tampered value")
	}
	if _, err := k1.Open([]byte("x"), nil); err == nil {
		t.Fatal("opened garbage")
	}
	if bytes.Equal(k1.Seal([]byte("seed"), nil), k1.Seal([]byte("seed"), nil)) {
		t.Fatal("sealing is deterministic")
	}
	if k1.Key("a") == k1.Key("b") || k1.Key("a") != k1.Key("a") {
		t.Fatal("Key derivation")
	}
	if len(NewToken()) != 43 || NewToken() == NewToken() {
		t.Fatal("NewToken")
	}
}

func BenchmarkMAC(b *testing.B) {
	k, _ := New(bytes.Repeat([]byte{1}, 32))
	tok := []byte(NewToken())
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		k.MAC(PurposeRefresh, tok)
	}
}
