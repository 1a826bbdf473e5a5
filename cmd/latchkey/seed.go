package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/latchkey/latchkey/login/factor"
	"github.com/latchkey/latchkey/login/flow"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
)

// cmdSeed loads benchmark data quickly: users sharing one password hash,
// and refresh tokens minted as a real sign-in would leave them (email code
// just presented, acr mfa). It writes raw tokens to a file for
// `latchkey bench --scenario refresh --refresh-token-file`. For load
// testing only: real users must never share a salt.
func cmdSeed(env *cmdEnv, args []string) error {
	fs := newFlags("seed", env)
	configPath := fs.String("config", "", "configuration file")
	users := fs.Int("users", 0, "number of users to create")
	pattern := fs.String("user-pattern", "bench%d@example.com", "email pattern (%d is the user number)")
	start := fs.Int("user-start", 0, "first user number")
	password := fs.String("password", "Bench-password-123", "the users' password")
	clientID := fs.String("client", "", "client of the refresh tokens (must exist)")
	tokens := fs.Int("refresh-tokens", 0, "number of refresh tokens (one family each) to mint for the users created")
	out := fs.String("tokens-out", "", "write the raw refresh tokens to this file, one per line")
	outCount := fs.Int("tokens-out-count", 1000, "write at most this many tokens to --tokens-out")
	if err := parseFlags(fs, args); err != nil {
		return err
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
	a, err := openApp(env, *configPath, false)
	if err != nil {
		return err
	}
	defer a.close()
	ctx := env.ctx
	if *tokens > 0 {
		if _, err := a.store.GetClient(ctx, *clientID); errors.Is(err, storage.ErrNotFound) {
			return notFoundErr("no client %s", *clientID)
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
		if err := a.store.BulkCreateUsers(ctx, batch); errors.Is(err, storage.ErrConflict) {
			return conflictErr("seed: some of these users exist already (use --user-start)")
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
		return nil
	}
	var w *bufio.Writer
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = bufio.NewWriter(f)
		defer w.Flush()
	}
	began = time.Now()
	written := 0
	for i := 0; i < *tokens; i += chunk {
		n := min(chunk, *tokens-i)
		batch := make([]storage.RefreshToken, n)
		for j := range batch {
			raw := keyring.NewToken()
			batch[j] = storage.RefreshToken{
				TokenHash: a.kr.MACString(keyring.PurposeRefresh, raw), ClientID: *clientID, UserID: ids[(i+j)%len(ids)],
				Scopes: []string{"openid", "offline_access"}, GrantedScopes: []string{"openid", "offline_access"},
				Audience: []string{*clientID}, AMR: []string{"pwd", "otp", "mfa"}, ACR: flow.ACRMFA,
				AuthTime: now, SecondFactorAt: now, CreatedAt: now,
			}
			if w != nil && written < *outCount {
				fmt.Fprintln(w, raw)
				written++
			}
		}
		if err := a.store.BulkCreateRefreshTokens(ctx, batch); err != nil {
			return err
		}
		if i > 0 && i%1000000 == 0 {
			fmt.Fprintf(env.stderr, "  %d refresh tokens…\n", i)
		}
	}
	fmt.Fprintf(env.stdout, "minted %d refresh tokens for client %s in %s", *tokens, *clientID, time.Since(began).Round(time.Millisecond))
	if w != nil {
		fmt.Fprintf(env.stdout, "; %d written to %s", written, *out)
	}
	fmt.Fprintln(env.stdout)
	return nil
}
