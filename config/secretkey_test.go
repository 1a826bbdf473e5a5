package config

import (
	"bytes"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEnsureSecretKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))

	c := Default()
	c.DataDir = dir
	if err := c.EnsureSecretKey(logger); err != nil {
		t.Fatal(err)
	}
	if len(c.SecretKey) != 32 {
		t.Fatalf("generated %d bytes", len(c.SecretKey))
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "development secret key generated at "+filepath.Join(dir, "secret.key")) {
		t.Errorf("log: %s", logs.String())
	}
	if strings.Contains(logs.String(), hex.EncodeToString(c.SecretKey)) {
		t.Error("the key was logged")
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("data_dir mode: %v, %v", fi.Mode(), err)
	}
	fi, err := os.Stat(filepath.Join(dir, "secret.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("secret.key mode: %v, %v", fi.Mode(), err)
	}

	// A restart reads the same key back.
	again := Default()
	again.DataDir = dir
	logs.Reset()
	if err := again.EnsureSecretKey(logger); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.SecretKey, c.SecretKey) {
		t.Error("the key changed across restarts")
	}
	if !strings.Contains(logs.String(), "using the development secret key") {
		t.Errorf("log: %s", logs.String())
	}

	// A configured key is left alone, and nothing is read or written.
	set := Default()
	set.DataDir = filepath.Join(t.TempDir(), "untouched")
	set.SecretKey = bytes.Repeat([]byte{7}, 32)
	if err := set.EnsureSecretKey(nil); err != nil || set.SecretKey[0] != 7 {
		t.Errorf("configured key: %v", err)
	}
	if _, err := os.Stat(set.DataDir); !os.IsNotExist(err) {
		t.Error("data_dir created although a key was configured")
	}
}

func TestEnsureSecretKeyRefusesProduction(t *testing.T) {
	c := Default()
	c.Issuer = "https://id.example.com"
	c.DataDir = t.TempDir()
	err := c.EnsureSecretKey(nil)
	if err == nil || !strings.Contains(err.Error(), "secret_key: required") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(c.DataDir, "secret.key")); !os.IsNotExist(err) {
		t.Error("a key was written for a production issuer")
	}
}

func TestEnsureSecretKeyBadFile(t *testing.T) {
	for _, content := range []string{"not hex\n", "abcd\n"} {
		c := Default()
		c.DataDir = t.TempDir()
		if err := os.WriteFile(filepath.Join(c.DataDir, "secret.key"), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := c.EnsureSecretKey(nil); err == nil || c.SecretKey.IsSet() {
			t.Errorf("%q: accepted", content)
		}
	}
}

func TestIsLocalIssuer(t *testing.T) {
	for issuer, want := range map[string]bool{
		"http://localhost:8080":        true,
		"http://127.0.0.1":             true,
		"http://[::1]:8080/x":          true,
		"https://localhost":            true,
		"https://id.example.com":       false,
		"http://localhost.example.com": false,
		"http://127.0.0.2":             false,
		"://":                          false,
	} {
		c := &Config{Issuer: issuer}
		if got := c.IsLocalIssuer(); got != want {
			t.Errorf("IsLocalIssuer(%q) = %v", issuer, got)
		}
	}
}

func TestRedactedHidesSecrets(t *testing.T) {
	secrets := []string{"db-pass-123", "smtp-pass-456", "client-secret-0123456789abcdef0123456789", "org-secret-789"}
	key := strings.Repeat("c3", 32)
	c, _, err := Load(writeFile(t, `
issuer: https://id.example.com
secret_key: `+key+`
database_url: postgres://lk:db-pass-123@db/lk?password=db-pass-123&sslmode=require
smtp_url: smtp://mailer:smtp-pass-456@smtp.example.com:587
clients:
  - id: web
    secret: client-secret-0123456789abcdef0123456789
    redirect_uris: [https://app.example.com/cb]
organizations:
  - name: Acme
    domains: [acme.com]
    issuer: https://sso.acme.com
    client_id: lk
    client_secret: org-secret-789
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Redacted()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range append(secrets, key) {
		if bytes.Contains(out, []byte(s)) {
			t.Errorf("Redacted shows %q:\n%s", s, out)
		}
	}
	if n := bytes.Count(out, []byte("<redacted>")); n != 6 {
		t.Errorf("%d redactions, want 6:\n%s", n, out)
	}
	// Redacted must not change the config itself.
	if c.Clients[0].Secret != secrets[2] || !strings.Contains(c.SMTPURL, "smtp-pass-456") {
		t.Error("Redacted modified the configuration")
	}
}
