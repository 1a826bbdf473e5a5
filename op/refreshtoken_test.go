package op

import (
	"context"
	"encoding/base64"
	"net/url"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// TestRefreshTokenTag: every value NewRefreshToken makes is "<family>.<43
// base64url characters>" and carries the tag of its family under this
// server's key; the tag does not move to another family or another key,
// and nothing else passes for an issued value — not the untagged tokens
// of earlier releases, not a secret flipped in one bit, not garbage.
func TestRefreshTokenTag(t *testing.T) {
	kr := testKeyring(t)
	other, err := keyring.New([]byte(strings.Repeat("o", keyring.MinSecretLen)))
	if err != nil {
		t.Fatal(err)
	}
	const fam = "fam01"
	raw := NewRefreshToken(kr, fam)
	if again := NewRefreshToken(kr, fam); again == raw {
		t.Fatal("two values alike")
	}
	f, secret, _ := strings.Cut(raw, ".")
	if f != fam || len(secret) != 43 || RefreshFamilyOf(raw) != fam {
		t.Fatalf("value %q", raw)
	}
	if _, err := base64.RawURLEncoding.DecodeString(secret); err != nil {
		t.Fatalf("secret %q: %v", secret, err)
	}
	if !refreshIssued(kr, raw) {
		t.Fatal("an issued value is not recognised")
	}
	b, _ := base64.RawURLEncoding.DecodeString(secret)
	flipped := func(i int) string {
		c := append([]byte(nil), b...)
		c[i] ^= 1
		return fam + "." + base64.RawURLEncoding.EncodeToString(c)
	}
	for name, v := range map[string]string{
		"another family":         "fam02." + secret,
		"another server's key":   NewRefreshToken(other, fam),
		"untagged (earlier)":     fam + "." + keyring.NewToken(),
		"random part flipped":    flipped(0),
		"tag flipped":            flipped(31),
		"secret cut short":       raw[:len(raw)-1],
		"secret made longer":     raw + "A",
		"padded":                 raw + "=",
		"no family":              "." + secret,
		"no dot":                 fam + secret,
		"a family too long":      strings.Repeat("f", 65) + "." + secret,
		"not base64url":          fam + "." + strings.Repeat("+", 43),
		"empty":                  "",
		"NUL in the secret":      fam + "." + secret[:42] + "\x00",
		"a family with the dot":  fam + ".." + secret[1:],
		"the other key's family": "fam01." + strings.SplitN(NewRefreshToken(other, fam), ".", 2)[1],
	} {
		if refreshIssued(kr, v) {
			t.Errorf("%s: %q taken for an issued value", name, v)
		}
	}
}

// BenchmarkRefreshIssued: the tag check a refresh of a value that is not
// stored pays before its family is looked at.
func BenchmarkRefreshIssued(b *testing.B) {
	kr := testKeyring(b)
	raw := NewRefreshToken(kr, "0123456789abcdef0123456789")
	for b.Loop() {
		if !refreshIssued(kr, raw) {
			b.Fatal("not issued")
		}
	}
}

// TestRefreshEarlierTokens: a token issued before the tag (its secret
// 32 random bytes) still refreshes while it is stored, into a tagged
// one; the untagged value, used, is reuse as before and ends the family.
func TestRefreshEarlierTokens(t *testing.T) {
	for _, d := range storagetest.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			e := newTokenEnv(t, d.Open(t))
			fam := storage.NewID()
			old := fam + "." + keyring.NewToken()
			rt := storage.RefreshToken{
				ID: storage.NewSortableID(e.now), FamilyID: fam, TokenHash: e.kr.MACString(keyring.PurposeRefresh, old),
				ClientID: "conf", UserID: e.user.ID, Scopes: []string{"openid", "offline_access"},
				GrantedScopes: []string{"openid", "offline_access"}, Audience: []string{"conf"},
				AMR: []string{"pwd", "otp"}, AuthTime: e.now, SecondFactorAt: e.now,
				CreatedAt: e.now, FamilyCreatedAt: e.now, LastUsedAt: e.now,
			}
			if _, err := e.store.CreateRefreshToken(context.Background(), rt); err != nil {
				t.Fatal(err)
			}
			grant := func(raw string) url.Values {
				return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {raw}}
			}
			a := e.post(grant(old), "conf:"+confSecret)
			next, _ := a.body["refresh_token"].(string)
			if a.status != 200 || RefreshFamilyOf(next) != fam || !refreshIssued(e.kr, next) {
				t.Fatalf("refresh of an earlier token: %d %v", a.status, a.body)
			}
			checkError(t, "the earlier token again", e.post(grant(old), "conf:"+confSecret), 400, "invalid_grant", false)
			checkError(t, "its successor after the reuse", e.post(grant(next), "conf:"+confSecret), 400, "invalid_grant", false)
		})
	}
}
