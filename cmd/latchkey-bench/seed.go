package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/latchkey/latchkey/config"
	"github.com/latchkey/latchkey/login/factor"
	"github.com/latchkey/latchkey/login/flow"
	"github.com/latchkey/latchkey/op"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
)

// cmdEnv is the process environment of one command, passed explicitly.
type cmdEnv struct {
	ctx     context.Context
	stdout  io.Writer
	stderr  io.Writer
	environ []string
}

const seedUsage = `Usage: latchkey-bench seed --users N [--client C --refresh-tokens M --tokens-out F] [flags]

Bulk-loads benchmark users (all sharing one password hash) and refresh
tokens into the database of the configuration (--config, LATCHKEY_*), with
COPY on PostgreSQL. For load testing only.

`

// cmdSeed loads benchmark data quickly: users sharing one password hash,
// and refresh tokens minted as a real sign-in would leave them (email code
// just presented, acr mfa). It writes raw tokens to a file for
// "latchkey-bench bench --scenario refresh --refresh-token-file". For load
// testing only: real users must never share a salt.
func cmdSeed(env *cmdEnv, args []string) error {
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() {
		fmt.Fprint(env.stderr, seedUsage)
		fs.PrintDefaults()
	}
	configPath := fs.String("config", "", "configuration file")
	users := fs.Int("users", 0, "number of users to create")
	pattern := fs.String("user-pattern", "bench%d@example.com", "email pattern (%d is the user number)")
	start := fs.Int("user-start", 0, "first user number")
	password := fs.String("password", "Bench-password-123", "the users' password")
	clientID := fs.String("client", "", "client of the refresh tokens (must exist)")
	tokens := fs.Int("refresh-tokens", 0, "number of refresh tokens (one family each) to mint for the users created")
	out := fs.String("tokens-out", "", "write the raw refresh tokens to this file, one per line")
	outCount := fs.Int("tokens-out-count", 1000, "write at most this many tokens to --tokens-out")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageErr("seed: %v", err)
	}
	if fs.NArg() > 0 {
		return usageErr("seed: unexpected argument %q", fs.Arg(0))
	}
	if *users <= 0 {
		return usageErr("seed: --users is required (> 0)")
	}
	if !strings.Contains(*pattern, "%d") {
		return usageErr("seed: --user-pattern must contain %%d")
	}
	if *tokens > 0 && *clientID == "" {
		return usageErr("seed: --refresh-tokens needs --client")
	}
	store, kr, err := openStore(env, *configPath)
	if err != nil {
		return err
	}
	defer store.Close()
	ctx := env.ctx
	if *tokens > 0 {
		if _, err := store.GetClient(ctx, *clientID); errors.Is(err, storage.ErrNotFound) {
			return &cliError{code: exitNotFound, msg: "no client " + *clientID}
		} else if err != nil {
			return err
		}
	}
	phc, err := factor.NewPasswordHasher(factor.DefaultPasswordParams).Hash(*password)
	if err != nil {
		return err
	}
	began := time.Now()
	now := began.UTC()
	const chunk = 10000
	ids := make([]string, 0, *users)
	for i := 0; i < *users; i += chunk {
		n := min(chunk, *users-i)
		batch := make([]storage.User, n)
		for j := range batch {
			batch[j] = storage.User{Email: fmt.Sprintf(*pattern, *start+i+j), Name: "Bench user", PasswordHash: phc,
				EmailVerified: true, CreatedAt: now, UpdatedAt: now, PasswordChangedAt: now}
		}
		if err := store.BulkCreateUsers(ctx, batch); errors.Is(err, storage.ErrConflict) {
			return &cliError{code: exitConflict, msg: "seed: some of these users exist already (use --user-start)"}
		} else if err != nil {
			return err
		}
		for _, u := range batch {
			ids = append(ids, u.ID)
		}
		if i > 0 && i%200000 == 0 {
			fmt.Fprintf(env.stderr, "  %d users…\n", i)
		}
	}
	fmt.Fprintf(env.stdout, "created %d users (%s … %s) in %s\n", *users,
		fmt.Sprintf(*pattern, *start), fmt.Sprintf(*pattern, *start+*users-1), time.Since(began).Round(time.Millisecond))
	if *tokens <= 0 {
		return vacuumSeeded(env, store)
	}
	var f *os.File
	var w *bufio.Writer
	if *out != "" {
		if f, err = os.Create(*out); err != nil {
			return err
		}
		defer f.Close() // after the explicit Close below, a no-op
		w = bufio.NewWriter(f)
	}
	began = time.Now()
	written := 0
	for i := 0; i < *tokens; i += chunk {
		n := min(chunk, *tokens-i)
		batch := make([]storage.RefreshToken, n)
		for j := range batch {
			family := storage.NewID()
			raw := op.NewRefreshToken(kr, family)
			batch[j] = storage.RefreshToken{
				FamilyID: family, TokenHash: kr.MACString(keyring.PurposeRefresh, raw), ClientID: *clientID, UserID: ids[(i+j)%len(ids)],
				Scopes: []string{"openid", "offline_access"}, GrantedScopes: []string{"openid", "offline_access"},
				Audience: []string{*clientID}, AMR: []string{"pwd", "otp", "mfa"}, ACR: flow.ACRMFA,
				AuthTime: now, SecondFactorAt: now, CreatedAt: now,
			}
			if w != nil && written < *outCount {
				fmt.Fprintln(w, raw)
				written++
			}
		}
		if err := store.BulkCreateRefreshTokens(ctx, batch); err != nil {
			return err
		}
		if i > 0 && i%1000000 == 0 {
			fmt.Fprintf(env.stderr, "  %d refresh tokens…\n", i)
		}
	}
	if w != nil {
		if err := w.Flush(); err != nil {
			return fmt.Errorf("--tokens-out: %w", err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("--tokens-out: %w", err)
		}
	}
	fmt.Fprintf(env.stdout, "minted %d refresh tokens for client %s in %s", *tokens, *clientID, time.Since(began).Round(time.Millisecond))
	if w != nil {
		fmt.Fprintf(env.stdout, "; %d written to %s", written, *out)
	}
	fmt.Fprintln(env.stdout)
	return vacuumSeeded(env, store)
}

// vacuumSeeded runs what autovacuum would get to later (storage.Vacuum:
// VACUUM (ANALYZE) on PostgreSQL, nothing on SQLite), so that a benchmark
// right after the seed measures the server, not the first reads of
// millions of freshly copied rows setting their hint bits: at 10 M tokens
// that doubled PostgreSQL's CPU per refresh and put p99 at 200 ms.
func vacuumSeeded(env *cmdEnv, store *storage.Store) error {
	if store.Dialect() != storage.DialectPostgres {
		return nil
	}
	began := time.Now()
	if err := store.Vacuum(env.ctx); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "vacuumed and analyzed in %s\n", time.Since(began).Round(time.Millisecond))
	return nil
}

// openStore is what "latchkey serve" does before it serves, as far as
// seed needs it: config.Load (the same file and LATCHKEY_* variables),
// the secret key (the development one in data_dir on a local issuer),
// the keyring derived from it, and the migrated store.
func openStore(env *cmdEnv, configPath string) (*storage.Store, *keyring.Keyring, error) {
	cfg, warnings, err := config.Load(configPath, env.environ)
	if err != nil {
		return nil, nil, fmt.Errorf("configuration:\n%w", err)
	}
	var level slog.Level // info unless log.level says otherwise (validated by Load)
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	logger := slog.New(slog.NewTextHandler(env.stderr, opts))
	if cfg.Log.Format == "json" {
		logger = slog.New(slog.NewJSONHandler(env.stderr, opts))
	}
	for _, w := range warnings {
		if w != config.WarnNoSMTP { // seed sends no mail
			logger.Warn(w)
		}
	}
	if err := cfg.EnsureSecretKey(logger); err != nil {
		return nil, nil, err
	}
	kr, err := keyring.New(cfg.SecretKey.Bytes())
	if err != nil {
		return nil, nil, err
	}
	if strings.HasPrefix(cfg.DatabaseURL, "sqlite:") {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, nil, fmt.Errorf("data folder: %w", err)
		}
	}
	store, err := storage.Open(env.ctx, cfg.DatabaseURL, storage.Options{Logger: logger})
	if err != nil {
		return nil, nil, err
	}
	if err := store.Migrate(env.ctx); err != nil {
		store.Close()
		return nil, nil, err
	}
	return store, kr, nil
}
