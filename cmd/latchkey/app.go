package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/latchkey/latchkey/config"
	"github.com/latchkey/latchkey/login/account"
	"github.com/latchkey/latchkey/login/flow"
	"github.com/latchkey/latchkey/op"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
)

// cmdEnv is the process environment of one command, passed explicitly.
type cmdEnv struct {
	ctx     context.Context
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
	environ []string
}

// app is what most commands need: configuration, logger, store, keyring.
type app struct {
	cfg    *config.Config
	log    *slog.Logger
	store  *storage.Store
	kr     *keyring.Keyring
	demo   bool
	closer func()
}

// newFlags makes a flag set that reports errors instead of exiting.
func newFlags(name string, env *cmdEnv) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return usageErr("%s: %v", fs.Name(), err)
	}
	if fs.NArg() > 0 {
		return usageErr("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}

// loadConfig reads the configuration and prints its warnings.
func loadConfig(env *cmdEnv, path string, demo bool) (*config.Config, *slog.Logger, error) {
	cfg, warnings, err := config.Load(path, env.environ)
	if err != nil {
		return nil, nil, fmt.Errorf("configuration:\n%w", err)
	}
	logger := newLogger(env.stderr, cfg.Log)
	for _, w := range warnings {
		if demo && w == config.WarnNoSMTP {
			continue // --demo prints codes to the log on purpose
		}
		logger.Warn(w)
	}
	return cfg, logger, nil
}

func newLogger(w io.Writer, c config.Log) *slog.Logger {
	var level slog.Level
	switch c.Level {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// openApp loads the configuration, the secret key and the database
// (migrated). Every command but version goes through it.
func openApp(env *cmdEnv, configPath string, demo bool) (*app, error) {
	cfg, logger, err := loadConfig(env, configPath, demo)
	if err != nil {
		return nil, err
	}
	if err := cfg.EnsureSecretKey(logger); err != nil {
		return nil, err
	}
	kr, err := keyring.New(cfg.SecretKey.Bytes())
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(cfg.DatabaseURL, "sqlite:") {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("data folder: %w", err)
		}
	}
	store, err := storage.Open(env.ctx, cfg.DatabaseURL, storage.Options{Logger: logger})
	if err != nil {
		return nil, err
	}
	if err := store.Migrate(env.ctx); err != nil {
		store.Close()
		return nil, err
	}
	return &app{cfg: cfg, log: logger, store: store, kr: kr, demo: demo, closer: func() { store.Close() }}, nil
}

func (a *app) close() { a.closer() }

// userByEmail looks a user up for a command, mapping a missing one to
// exit code 3.
func (a *app) userByEmail(ctx context.Context, email string) (storage.User, error) {
	u, err := a.store.GetUserByEmail(ctx, email)
	if errors.Is(err, storage.ErrNotFound) {
		return u, notFoundErr("no user with email %s", email)
	}
	return u, err
}

// newTable is the aligned-columns writer of the list commands.
func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

// opOptions maps the configuration onto the OP's options.
func (a *app) opOptions(now func() time.Time) op.Options {
	c := a.cfg
	return op.Options{
		Issuer:               c.Issuer,
		Algorithm:            c.Keys.Algorithm,
		KeyRotation:          c.Keys.RotationPeriod.Std(),
		AccessTokenLifetime:  c.Tokens.AccessTokenLifetime.Std(),
		IDTokenLifetime:      c.Tokens.IDTokenLifetime.Std(),
		RefreshTokenLifetime: c.Tokens.RefreshTokenLifetime.Std(),
		AuthCodeLifetime:     c.Tokens.AuthCodeLifetime.Std(),
		AuthRequestLifetime:  c.Tokens.AuthRequestLifetime.Std(),
		AccessTokenFormat:    c.Tokens.AccessTokenFormat,
		RefreshIdle:          c.Policy.RefreshIdle.Std(),
		LoginPath:            "/login",
		LogoutPath:           "/logout",
		DevicePath:           "/device",
		Now:                  now,
		Logger:               a.log,
		// The sign-in policy's rules, injected: op never imports login.
		ReverifyDue: func(secondFactorAt, authTime time.Time, amr []string, at time.Time) bool {
			return flow.ReverifyDue(c.Policy.Reverify.Std(), secondFactorAt, authTime, amr, at)
		},
		ACRValues:  flow.SupportedACRs,
		RequirePAR: c.Protocol.RequirePushedAuthorizationRequests,
		// zitadel/oidc stamps and checks token times with time.Now.
		TokenNow: time.Now,
	}
}

// builtinSecret derives a built-in client's secret from the server secret,
// so that every instance of one issuer agrees on it without storing it.
func (a *app) builtinSecret(clientID string) string {
	k := a.kr.Key("builtin-client:" + clientID)
	return hex.EncodeToString(k[:])
}

// clientFromConfig maps a validated config client (its defaults filled
// in by config.Validate) onto the stored one, hashing its secret.
func clientFromConfig(a *app, c config.Client, source string, now time.Time) storage.Client {
	sc := storage.Client{
		ID: c.ID, Name: c.Name, Public: c.Public, AppType: c.Type, RedirectURIs: c.RedirectURIs,
		PostLogoutRedirectURIs: c.PostLogoutRedirectURIs, GrantTypes: c.GrantTypes,
		AccessTokenFormat: c.AccessTokenFormat, AccessTokenLifetime: c.AccessTokenLifetime.Std(),
		IDTokenLifetime: c.IDTokenLifetime.Std(), DefaultACR: c.DefaultACR, Source: source,
		JWKS: string(c.JWKS), JWKSURI: c.JWKSURI, Scopes: c.Scopes,
		BackchannelLogoutURI: c.BackchannelLogoutURI, BackchannelLogoutSessionRequired: c.BackchannelLogoutSessionRequired,
		ThirdParty: c.ThirdParty, RequirePAR: c.RequirePushedAuthorizationRequests, DPoPBound: c.DPoPBoundAccessTokens,
		CreatedAt: now, UpdatedAt: now,
	}
	if !c.Public && c.Secret != "" {
		sc.SecretHash = op.HashClientSecret(a.kr, c.Secret)
	}
	return sc
}

// syncClients makes the database match the config file's clients and the
// built-in ones (demo, account).
func (a *app) syncClients(ctx context.Context, now time.Time) error {
	var cs []storage.Client
	for _, c := range a.cfg.Clients {
		cs = append(cs, clientFromConfig(a, c, "config", now))
	}
	if err := a.store.SyncClients(ctx, "config", cs); err != nil {
		return fmt.Errorf("sync clients from the config file: %w", err)
	}
	// The account pages are a relying party of this OP (always present).
	accountRedirect, accountPostLogout := account.RedirectURIs(a.cfg.Issuer)
	builtin := []storage.Client{{
		ID: account.ClientID, Name: "Your account", AppType: storage.AppTypeWeb,
		SecretHash:   op.HashClientSecret(a.kr, a.builtinSecret(account.ClientID)),
		RedirectURIs: []string{accountRedirect}, PostLogoutRedirectURIs: []string{accountPostLogout},
		GrantTypes: []string{op.GrantAuthorizationCode}, Source: "builtin",
		CreatedAt: now, UpdatedAt: now,
	}}
	if a.demo {
		redirect, postLogout := account.DemoRedirectURIs(a.cfg.Issuer)
		builtin = append(builtin, storage.Client{
			ID: account.DemoClientID, Name: "Latchkey demo", AppType: storage.AppTypeWeb,
			SecretHash:   op.HashClientSecret(a.kr, a.builtinSecret(account.DemoClientID)),
			RedirectURIs: []string{redirect}, PostLogoutRedirectURIs: []string{postLogout},
			GrantTypes: []string{op.GrantAuthorizationCode, op.GrantRefreshToken}, Source: "builtin",
			CreatedAt: now, UpdatedAt: now,
		})
	}
	if err := a.store.SyncClients(ctx, "builtin", builtin); err != nil {
		return fmt.Errorf("sync built-in clients: %w", err)
	}
	return nil
}
