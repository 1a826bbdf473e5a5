package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// commandLines are every command that takes flags.
var commandLines = [][]string{
	{"serve"}, {"migrate"}, {"health"}, {"backup"},
	{"user", "create"}, {"user", "list"}, {"user", "show"}, {"user", "disable"}, {"user", "enable"},
	{"user", "delete"}, {"user", "reset-2fa"}, {"user", "send-reset"},
	{"client", "create"}, {"client", "list"}, {"client", "delete"}, {"client", "rotate-secret"},
	{"org", "create"}, {"org", "list"}, {"org", "delete"},
	{"keys", "rotate"}, {"audit", "list"}, {"policy", "explain"}, {"config", "print"},
}

// TestCLIHelp: --help on every command exits 0 and lists its flags, and
// the top-level usage names every one of them.
func TestCLIHelp(t *testing.T) {
	t.Parallel()
	env := cliEnviron(t)
	code, top, _ := cli(t, env, "", "help")
	if code != exitOK {
		t.Fatalf("help: exit %d", code)
	}
	flagLine := regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`)
	for _, line := range commandLines {
		args := append(append([]string{}, line...), "--help")
		code, out, errOut := cli(t, env, "", args...)
		if code != exitOK || !strings.Contains(out, "Usage: latchkey "+strings.Join(line, " ")) {
			t.Errorf("%v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errOut)
			continue
		}
		flags := flagLine.FindAllStringSubmatch(out, -1)
		if len(flags) < 2 { // -v and --config at least
			t.Errorf("%v: flags not listed:\n%s", args, out)
		}
		for _, f := range flags {
			name := f[1]
			if name == "v" {
				if !strings.Contains(top, " -v") {
					t.Errorf("top-level help does not mention -v")
				}
				continue
			}
			if !strings.Contains(top, "--"+name) {
				t.Errorf("top-level help misses --%s of %v", name, line)
			}
		}
	}
	for _, group := range []string{"user", "client", "org", "keys", "audit", "policy", "config"} {
		if code, out, _ := cli(t, env, "", group, "--help"); code != exitOK || !strings.Contains(out, "latchkey "+group) {
			t.Errorf("%s --help: exit %d %s", group, code, out)
		}
	}
}

// TestCLISupportDesk: user show, reset-2fa, send-reset, delete and audit
// list's filters, with their exit codes.
func TestCLISupportDesk(t *testing.T) {
	t.Parallel()
	env := cliEnviron(t)
	run := func(stdin string, want int, args ...string) (string, string) {
		t.Helper()
		code, out, errOut := cli(t, env, stdin, args...)
		if code != want {
			t.Fatalf("%v: exit %d, want %d\nstdout: %s\nstderr: %s", args, code, want, out, errOut)
		}
		return out, errOut
	}
	run("", exitOK, "migrate")
	run("a long enough password\n", exitOK, "user", "create", "--email", "ada@example.com", "--name", "Ada", "--password-stdin")
	// Ada has an authenticator app and a backup code.
	a, err := openApp(&cmdEnv{ctx: context.Background(), stderr: &strings.Builder{}, environ: env}, "", false)
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	ctx := context.Background()
	u, _ := a.store.GetUserByEmail(ctx, "ada@example.com")
	totp, err := a.store.CreateTOTP(ctx, storage.TOTPCredential{UserID: u.ID, SeedSealed: []byte("x"), Status: storage.TOTPPending, CreatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.store.ActivateTOTP(ctx, u.ID, totp.ID, 0, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := a.store.SetBackupCode(ctx, storage.BackupCode{UserID: u.ID, CodeHash: []byte("h"), CreatedAt: time.Now()}, storage.BackupCodeShow{}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.store.CreateSession(ctx, storage.Session{UserID: u.ID, TokenHash: []byte("session-cookie-digest"), CreatedAt: time.Now(), IP: "192.0.2.7"}); err != nil {
		t.Fatal(err)
	}

	out, _ := run("", exitOK, "user", "show", "--email", "ADA@example.com")
	for _, want := range []string{"user:        ada@example.com", "authenticator app yes", "backup code yes", "sessions (1)", "192.0.2.7", "last sign-in: never"} {
		if !strings.Contains(out, want) {
			t.Fatalf("user show lacks %q:\n%s", want, out)
		}
	}
	out, _ = run("", exitOK, "user", "show", "--email", "ada@example.com", "--json")
	var detail map[string]any
	if err := json.Unmarshal([]byte(out), &detail); err != nil || detail["email"] != "ada@example.com" {
		t.Fatalf("user show --json: %v\n%s", err, out)
	}
	out, _ = run("", exitOK, "user", "reset-2fa", "--email", "ada@example.com")
	if !strings.Contains(out, "next sign-in uses email codes") || !strings.Contains(out, "notified ada@example.com") {
		t.Fatalf("reset-2fa: %s", out)
	}
	if ts, _ := a.store.ListTOTP(ctx, u.ID); len(ts) != 0 {
		t.Fatal("the authenticator survived the reset")
	}
	if _, err := a.store.GetBackupCode(ctx, u.ID); err == nil {
		t.Fatal("the backup code survived the reset")
	}
	if ss, _ := a.store.ListSessions(ctx, u.ID); len(ss) != 0 {
		t.Fatal("sessions survived the reset")
	}
	out, _ = run("", exitOK, "user", "send-reset", "--email", "ada@example.com")
	if !strings.Contains(out, "mailed ada@example.com") || strings.Contains(out, "token=") {
		t.Fatalf("send-reset printed the link or nothing: %s", out)
	}
	run("", exitOK, "user", "create", "--email", "bob@example.com", "--send-link")

	for _, sub := range []string{"show", "reset-2fa", "send-reset", "delete"} {
		run("", exitNotFound, "user", sub, "--email", "nobody@example.com")
		run("", exitUsage, "user", sub)
	}
	out, _ = run("", exitOK, "user", "delete", "--email", "ada@example.com")
	if !strings.Contains(out, "deleted user ada@example.com") {
		t.Fatalf("delete: %s", out)
	}
	run("", exitNotFound, "user", "show", "--email", "ada@example.com")

	out, _ = run("", exitOK, "audit", "list", "--json", "--type", "user.deleted,user.second_step_reset")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"type":"user.deleted"`) || !strings.Contains(lines[1], `"type":"user.second_step_reset"`) {
		t.Fatalf("audit list --json --type:\n%s", out)
	}
	if out, _ = run("", exitOK, "audit", "list", "--since", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)); strings.Count(out, "\n") != 1 {
		t.Fatalf("audit list --since the future:\n%s", out)
	}
	if out, _ = run("", exitOK, "audit", "list", "--until", "2001-01-01", "--json"); out != "" {
		t.Fatalf("audit list --until the past:\n%s", out)
	}
	run("", exitUsage, "audit", "list", "--since", "yesterday")
	run("", exitUsage, "audit", "list", "--limit", "0")

	// Clients for the admin API.
	out, _ = run("", exitOK, "client", "create", "--id", "ops", "--admin")
	if !strings.Contains(out, "scope latchkey:admin") || !strings.Contains(out, "client secret") {
		t.Fatalf("client create --admin: %s", out)
	}
	run("", exitUsage, "client", "create", "--id", "ops2", "--admin", "--admin-read")
	run("", exitUsage, "client", "create", "--id", "pub", "--public", "--admin", "--redirect-uri", "http://127.0.0.1/cb")
	out, _ = run("", exitOK, "client", "rotate-secret", "--id", "ops")
	if !strings.Contains(out, "new secret of client ops") {
		t.Fatalf("rotate-secret: %s", out)
	}
	run("", exitNotFound, "client", "rotate-secret", "--id", "nope")
}

// TestCLIFindsTheDatabase: -v names the database; a command against a
// database that does not exist fails and creates nothing; warnings are
// for serve and -v only.
func TestCLIFindsTheDatabase(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := []string{"HOME=" + dir, "LATCHKEY_LOG_LEVEL=warn"} // no SMTP, the default data_dir under HOME
	want := filepath.Join(dir, ".local", "share", "latchkey")
	code, out, errOut := cli(t, env, "", "user", "list", "-v")
	if code != exitFailure || !strings.Contains(errOut, "no database at "+filepath.Join(want, "latchkey.db")) ||
		!strings.Contains(errOut, "database: sqlite:"+want+"/latchkey.db") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if _, err := os.Stat(want); !os.IsNotExist(err) {
		t.Fatalf("the failed command created %s (%v)", want, err)
	}
	if code, _, errOut = cli(t, env, "", "migrate"); code != exitOK || strings.Contains(errOut, "smtp_url") || strings.Contains(errOut, "secret key") {
		t.Fatalf("migrate: exit %d, stderr: %s", code, errOut)
	}
	// From another directory, with the same environment: the same database.
	if code, _, errOut = cli(t, env, "a long enough password\n", "user", "create", "--email", "x@example.com", "--password-stdin"); code != exitOK || errOut != "" {
		t.Fatalf("user create: exit %d, stderr %q (warnings are serve's)", code, errOut)
	}
	code, out, errOut = cli(t, env, "", "user", "list", "-v")
	if code != exitOK || !strings.Contains(out, "x@example.com") || !strings.Contains(errOut, "smtp_url: not set") {
		t.Fatalf("user list -v: exit %d\n%s\n%s", code, out, errOut)
	}
}

// TestCLIWarnsOfDatabaseMaintenance: with -v (as at serve's start) a
// PostgreSQL table whose autovacuum is turned off is named, and the
// server-wide setting is reported as the server has it; SQLite has
// nothing to report, and without -v nothing is printed.
func TestCLIWarnsOfDatabaseMaintenance(t *testing.T) {
	t.Parallel()
	for _, d := range storagetest.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			u := d.URL(t)
			var env []string
			for _, kv := range cliEnviron(t) {
				if !strings.HasPrefix(kv, "LATCHKEY_DATABASE_URL=") && !strings.HasPrefix(kv, "LATCHKEY_LOG_LEVEL=") {
					env = append(env, kv)
				}
			}
			env = append(env, "LATCHKEY_DATABASE_URL="+u, "LATCHKEY_LOG_LEVEL=warn")
			if code, _, errOut := cli(t, env, "", "migrate"); code != exitOK {
				t.Fatalf("migrate: exit %d %s", code, errOut)
			}
			pg := d.Name == storage.DialectPostgres
			serverOff := false
			if pg {
				db, err := sql.Open("pgx", u)
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				if _, err := db.ExecContext(t.Context(), "ALTER TABLE access_tokens SET (autovacuum_enabled = false)"); err != nil {
					t.Fatal(err)
				}
				var setting string
				if err := db.QueryRowContext(t.Context(), "SHOW autovacuum").Scan(&setting); err != nil {
					t.Fatal(err)
				}
				serverOff = setting == "off"
			}
			code, _, errOut := cli(t, env, "", "user", "list", "-v")
			if code != exitOK || strings.Contains(errOut, "autovacuum is turned off for access_tokens (") != pg ||
				strings.Contains(errOut, "autovacuum is off (autovacuum = off)") != serverOff {
				t.Fatalf("user list -v: exit %d (PostgreSQL %v, server-wide off %v)\n%s", code, pg, serverOff, errOut)
			}
			if _, _, errOut := cli(t, env, "", "user", "list"); strings.Contains(errOut, "autovacuum") {
				t.Fatalf("without -v: %s", errOut)
			}
		})
	}
}

// TestCLIHealthAndBackup: health exits 0 against a ready server and 1
// otherwise; backup writes a copy that opens, refuses to overwrite, and
// wants its file.
func TestCLIHealthAndBackup(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, storagetest.Dialects(t)[0])
	env := cliEnviron(t)
	if code, _, errOut := cli(t, env, "", "health", "--url", e.issuer+"/ready"); code != exitOK {
		t.Fatalf("health: exit %d %s", code, errOut)
	}
	down := httptest.NewServer(nil)
	down.Close()
	if code, _, errOut := cli(t, env, "", "health", "--url", down.URL+"/ready"); code != exitFailure || !strings.Contains(errOut, "not ready") {
		t.Fatalf("health of a stopped server: exit %d %s", code, errOut)
	}
	// The default URL is this machine's addr.
	port := strings.TrimPrefix(down.URL, "http://127.0.0.1:")
	if code, _, _ := cli(t, append(env, "LATCHKEY_ADDR=:"+port), "", "health"); code != exitFailure {
		t.Fatalf("health on the configured addr of a stopped server: exit %d", code)
	}

	if code, _, _ := cli(t, env, "", "migrate"); code != exitOK {
		t.Fatal("migrate")
	}
	if code, _, _ := cli(t, env, "a long enough password\n", "user", "create", "--email", "kept@example.com", "--password-stdin"); code != exitOK {
		t.Fatal("user create")
	}
	file := filepath.Join(t.TempDir(), "backup.db")
	code, out, errOut := cli(t, env, "", "backup", file)
	if code != exitOK || !strings.Contains(out, "keep the secret key") {
		t.Fatalf("backup: exit %d %s %s", code, out, errOut)
	}
	b, err := storage.Open(context.Background(), "sqlite:"+file, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.GetUserByEmail(context.Background(), "kept@example.com"); err != nil {
		t.Fatalf("the backup lacks the user: %v", err)
	}
	if code, _, _ := cli(t, env, "", "backup", file); code != exitFailure {
		t.Fatalf("backup over an existing file: exit %d", code)
	}
	if code, _, _ := cli(t, env, "", "backup"); code != exitUsage {
		t.Fatalf("backup without a file: exit %d", code)
	}
}
