package config

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// devSecretFile is where a development secret key is kept, in data_dir.
const devSecretFile = "secret.key"

// EnsureSecretKey makes sure SecretKey is set. When it is empty and the
// issuer is local, it reads <data_dir>/secret.key (hex), or generates 32
// random bytes and writes them there (directory 0700, file 0600), so that
// sessions survive a restart of a development instance; either way it logs
// a warning. When it is empty and the issuer is not local, it returns an
// error: a production instance must not start with a key nobody chose.
func (c *Config) EnsureSecretKey(logger *slog.Logger) error {
	if c.SecretKey.IsSet() {
		return nil
	}
	if !c.IsLocalIssuer() {
		return errors.New("config: secret_key: required when the issuer is not localhost; generate one with: openssl rand -hex 32")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	path := filepath.Join(c.DataDir, devSecretFile)
	key, err := readSecretFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = writeSecretFile(c.DataDir, path)
		if errors.Is(err, fs.ErrExist) { // another instance won the race
			key, err = readSecretFile(path)
		} else if err == nil {
			logger.Warn("development secret key generated at " + path + "; set LATCHKEY_SECRET_KEY in production")
		}
	} else if err == nil {
		logger.Warn("using the development secret key at " + path + "; set LATCHKEY_SECRET_KEY in production")
	}
	if err != nil {
		return err
	}
	c.SecretKey = key
	return nil
}

func readSecretFile(path string) (Secret, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: read development secret key: %w", err)
	}
	raw, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(raw) < MinSecretKeyLen {
		return nil, fmt.Errorf("config: %s: not a hex key of at least %d bytes; delete it to generate a new one", path, MinSecretKeyLen)
	}
	return Secret(raw), nil
}

func writeSecretFile(dir, path string) (Secret, error) {
	key := make([]byte, MinSecretKeyLen)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("config: generate secret key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("config: create data_dir: %w", err)
	}
	// O_EXCL: never overwrite a key another instance just wrote.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("config: write development secret key: %w", err)
	}
	_, err = f.WriteString(hex.EncodeToString(key) + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("config: write development secret key: %w", err)
	}
	return Secret(key), nil
}
