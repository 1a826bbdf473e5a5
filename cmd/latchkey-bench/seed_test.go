package main

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/config"
	"github.com/latchkey/latchkey/login/factor"
	"github.com/latchkey/latchkey/login/flow"
	"github.com/latchkey/latchkey/op"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// openSeeded opens the database a seed run wrote to, as serve would.
func openSeeded(t *testing.T, url string) *storage.Store {
	t.Helper()
	s, err := storage.Open(t.Context(), url, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestSeed seeds users and refresh tokens on each database (COPY on
// PostgreSQL) and checks what a server on that database would see: users
// who sign in with the password, and refresh tokens in the file that the
// server's keyring finds, for the client, at acr mfa.
func TestSeed(t *testing.T) {
	for _, d := range storagetest.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			url := d.URL(t)
			environ := []string{
				"LATCHKEY_DATABASE_URL=" + url,
				"LATCHKEY_DATA_DIR=" + t.TempDir(),
				"LATCHKEY_SECRET_KEY=" + strings.Repeat("5e", 32),
				"LATCHKEY_LOG_LEVEL=error",
			}
			cfg, _, err := config.Load("", environ)
			if err != nil {
				t.Fatal(err)
			}
			kr, err := keyring.New(cfg.SecretKey.Bytes())
			if err != nil {
				t.Fatal(err)
			}

			code, out, errOut := cli(t, environ, "seed", "--users", "3", "--user-pattern", "seed%d@example.com")
			if code != exitOK || !strings.Contains(out, "created 3 users (seed0@example.com … seed2@example.com)") {
				t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
			}
			store := openSeeded(t, url)
			ctx := t.Context()
			u, err := store.GetUserByEmail(ctx, "seed2@example.com")
			if err != nil {
				t.Fatal(err)
			}
			if ok, _, err := factor.VerifyPassword(u.PasswordHash, "Bench-password-123", factor.DefaultPasswordParams); !ok || err != nil {
				t.Fatalf("the default password does not verify: %v", err)
			}
			if !u.EmailVerified {
				t.Fatal("seeded user's email is not verified")
			}

			// Refresh tokens need an existing client; none is created.
			code, _, errOut = cli(t, environ, "seed", "--users", "1", "--user-start", "9", "--user-pattern", "seed%d@example.com",
				"--client", "bench", "--refresh-tokens", "1")
			if code != exitNotFound || !strings.Contains(errOut, "no client bench") {
				t.Fatalf("unknown client: exit %d\n%s", code, errOut)
			}
			if _, err := store.GetUserByEmail(ctx, "seed9@example.com"); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("a user was created before the client check: %v", err)
			}

			if err := store.CreateClient(ctx, storage.Client{ID: "bench", AppType: storage.AppTypeWeb,
				GrantTypes: []string{"refresh_token"}, RedirectURIs: []string{"http://127.0.0.1:9/cb"}}); err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(t.TempDir(), "rt.txt")
			code, out, errOut = cli(t, environ, "seed", "--users", "2", "--user-start", "3", "--user-pattern", "seed%d@example.com",
				"--client", "bench", "--refresh-tokens", "5", "--tokens-out", file, "--tokens-out-count", "4")
			if code != exitOK || !strings.Contains(out, "minted 5 refresh tokens for client bench") || !strings.Contains(out, "4 written to "+file) {
				t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
			}
			// On PostgreSQL the seed leaves the tables vacuumed and analyzed,
			// as autovacuum would later: the first requests of a benchmark do
			// not pay for setting the copied rows' hint bits.
			if vacuumed := strings.Contains(out, "vacuumed and analyzed in "); vacuumed != (d.Name == storage.DialectPostgres) {
				t.Fatalf("on %s the seed says vacuumed = %v:\n%s", d.Name, vacuumed, out)
			}
			if d.Name == storage.DialectPostgres {
				db := storagetest.RawDB(t, url)
				for _, table := range []string{"users", "refresh_tokens"} {
					var vacuumed, analyzed bool
					if err := db.QueryRowContext(ctx, `SELECT last_vacuum IS NOT NULL, last_analyze IS NOT NULL
						FROM pg_stat_user_tables WHERE relname = $1`, table).Scan(&vacuumed, &analyzed); err != nil {
						t.Fatal(err)
					}
					if !vacuumed || !analyzed {
						t.Errorf("%s after the seed: vacuumed %v, analyzed %v", table, vacuumed, analyzed)
					}
				}
			}
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Fields(string(b))
			if len(lines) != 4 {
				t.Fatalf("%d tokens in the file, want 4:\n%s", len(lines), b)
			}
			var newUsers []string
			for _, e := range []string{"seed3@example.com", "seed4@example.com"} {
				u, err := store.GetUserByEmail(ctx, e)
				if err != nil {
					t.Fatal(err)
				}
				newUsers = append(newUsers, u.ID)
			}
			for _, raw := range lines {
				rt, err := store.GetRefreshTokenByHash(ctx, op.RefreshFamilyOf(raw), kr.MACString(keyring.PurposeRefresh, raw))
				if err != nil {
					t.Fatalf("token from the file: %v", err)
				}
				if rt.ClientID != "bench" || rt.ACR != flow.ACRMFA || !slices.Contains(newUsers, rt.UserID) ||
					!slices.Contains(rt.Scopes, "offline_access") {
					t.Fatalf("token %+v", rt)
				}
			}

			// Seeding the same users again changes nothing and says so.
			code, _, errOut = cli(t, environ, "seed", "--users", "1", "--user-pattern", "seed%d@example.com")
			if code != exitConflict || !strings.Contains(errOut, "--user-start") {
				t.Fatalf("existing users: exit %d\n%s", code, errOut)
			}
		})
	}
}

// TestSeedConfigFile: seed reads --config like serve does, including the
// development secret key serve would generate in data_dir, and reports a
// bad file as a failure.
func TestSeedConfigFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "latchkey.yaml")
	data := filepath.Join(dir, "data")
	if err := os.WriteFile(path, []byte("data_dir: "+data+"\nlog:\n  level: error\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := cli(t, nil, "seed", "--config", path, "--users", "2")
	if code != exitOK || !strings.Contains(out, "created 2 users (bench0@example.com … bench1@example.com)") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(data, "secret.key")); err != nil {
		t.Fatalf("no development secret key in data_dir: %v", err)
	}
	store := openSeeded(t, "sqlite:"+filepath.Join(data, "latchkey.db"))
	if _, err := store.GetUserByEmail(t.Context(), "bench1@example.com"); err != nil {
		t.Fatalf("not in data_dir's database: %v", err)
	}

	if err := os.WriteFile(path, []byte("data_dir: "+data+"\nno_such_key: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = cli(t, nil, "seed", "--config", path, "--users", "2", "--user-start", "2")
	if code != exitFailure || !strings.Contains(errOut, "no_such_key") {
		t.Fatalf("unknown key: exit %d\n%s", code, errOut)
	}
}
