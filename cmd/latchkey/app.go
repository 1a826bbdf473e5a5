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

	"github.com/latchkey/latchkey/cmd/latchkey/internal/access"
	"github.com/latchkey/latchkey/cmd/latchkey/internal/admin"
	"github.com/latchkey/latchkey/cmd/latchkey/internal/ratelog"
	"github.com/latchkey/latchkey/config"
	"github.com/latchkey/latchkey/login/account"
	"github.com/latchkey/latchkey/login/flow"
	"github.com/latchkey/latchkey/login/i18n"
	"github.com/latchkey/latchkey/login/theme"
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

	// verbose (-v): say which configuration and database are used, and
	// print the configuration's warnings.
	verbose *bool
	// createDB: the command may create the database (serve, migrate);
	// every other command needs an existing one.
	createDB bool
	// serving: the command is serve, whose start-up warnings are printed
	// (once); other commands print them only with -v.
	serving bool
}

// app is what most commands need: configuration, logger, store, keyring.
type app struct {
	cfg    *config.Config
	log    *slog.Logger
	store  *storage.Store
	kr     *keyring.Keyring
	demo   bool
	closer func()
	// theme is the operator's branding (theme.*): loaded, its mail
	// templates parsed, before anything else starts.
	theme *theme.Theme
}

// newFlags makes a flag set that reports errors instead of exiting, with
// the flag every command has: -v.
func newFlags(name string, env *cmdEnv) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(helpOutput{Writer: env.stderr, out: env.stdout})
	fs.Usage = func() {} // parseFlags prints the help
	env.verbose = fs.Bool("v", false, "say which configuration file and database the command uses, and print the configuration's warnings")
	return fs
}

// errHelp: --help was asked for and printed; the command exits 0.
var errHelp = errors.New("help shown")

// parseFlags parses a command's flags. --help (or -h) prints every flag
// of the command to stdout and ends it with exit code 0.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printFlags(fs)
			return errHelp
		}
		return usageErr("%s: %v", fs.Name(), err)
	}
	if fs.NArg() > 0 {
		return usageErr("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}

// printFlags writes a command's usage and every flag to stdout.
func printFlags(fs *flag.FlagSet) {
	w := fs.Output()
	if o, ok := w.(interface{ stdout() io.Writer }); ok {
		w = o.stdout()
	}
	fmt.Fprintf(w, "Usage: latchkey %s [flags]\n\nFlags:\n", fs.Name())
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// helpOutput is a flag set's output that knows where help goes (stdout)
// while errors go to stderr.
type helpOutput struct {
	io.Writer
	out io.Writer
}

func (h helpOutput) stdout() io.Writer { return h.out }

// loadConfig reads the configuration. Its warnings are printed by serve
// (once, at start-up) and by other commands only with -v: a user list
// need not repeat that mail goes to the log.
func loadConfig(env *cmdEnv, path string, demo bool) (*config.Config, *slog.Logger, error) {
	cfg, warnings, err := config.Load(path, env.environ)
	if err != nil {
		return nil, nil, fmt.Errorf("configuration:\n%w", err)
	}
	logger := newLogger(env.stderr, cfg.Log)
	if !env.serving && !env.isVerbose() {
		return cfg, logger, nil
	}
	for _, w := range warnings {
		if w == config.WarnNoSMTP && (demo || env.serving) {
			// serve's mailer says it once ("log sink in use"); --demo
			// prints codes to the log on purpose.
			continue
		}
		logger.Warn(w)
	}
	return cfg, logger, nil
}

func (env *cmdEnv) isVerbose() bool { return env.verbose != nil && *env.verbose }

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
	// Every line written with a request's context carries its id; a
	// warning or error repeated many times (every request during a
	// database outage) is written once per ratelog.Window, with a count.
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if c.Format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(access.Handler(ratelog.New(h, 0, time.Now)))
}

// openApp loads the configuration, the secret key and the database
// (migrated). Every command that reads or writes the database goes
// through it. Unless env.createDB (serve, migrate), the database must
// exist: a command run with another configuration, or from another
// directory, fails here rather than quietly making a new, empty database
// (and a new development secret key).
func openApp(env *cmdEnv, configPath string, demo bool) (*app, error) {
	cfg, logger, err := loadConfig(env, configPath, demo)
	if err != nil {
		return nil, err
	}
	if env.isVerbose() {
		src := configPath
		if src == "" {
			src = "none (defaults and LATCHKEY_* variables)"
		}
		fmt.Fprintf(env.stderr, "latchkey: configuration file: %s\nlatchkey: database: %s\n", src, config.RedactURL(cfg.DatabaseURL))
	}
	if path, ok := strings.CutPrefix(cfg.DatabaseURL, "sqlite:"); ok && !env.createDB {
		path = strings.TrimPrefix(path, "//")
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("no database at %s: run 'latchkey migrate' (or serve) with this configuration first, "+
				"or give the server's configuration (--config FILE, LATCHKEY_DATA_DIR or LATCHKEY_DATABASE_URL); see -v", path)
		}
	}
	// A broken theme (a missing file, a template that does not parse)
	// stops every command here, naming the file and line.
	th, err := loadTheme(cfg)
	if err != nil {
		return nil, err
	}
	// The development key's warning is serve's to print (or -v's).
	keyLog := logger
	if !env.serving && !env.isVerbose() {
		keyLog = slog.New(slog.DiscardHandler)
	}
	if err := cfg.EnsureSecretKey(keyLog); err != nil {
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
	store, err := storage.Open(env.ctx, cfg.DatabaseURL, storage.Options{Logger: logger, QueueEvent: webhookEvents(cfg)})
	if err != nil {
		return nil, err
	}
	if !env.createDB {
		if v, err := store.SchemaVersion(env.ctx); err != nil || v == "" {
			store.Close()
			if err == nil {
				err = fmt.Errorf("the database at %s has no Latchkey schema: run 'latchkey migrate' (or serve) with this configuration first", config.RedactURL(cfg.DatabaseURL))
			}
			return nil, err
		}
	}
	if err := store.Migrate(env.ctx); err != nil {
		store.Close()
		return nil, err
	}
	// The database's own settings that would slow the service down
	// (PostgreSQL's autovacuum off): serve's start-up warnings, and -v's.
	if env.serving || env.isVerbose() {
		ws, err := store.MaintenanceWarnings(env.ctx)
		if err != nil {
			logger.Warn("could not read the database's maintenance settings", "err", err)
		}
		for _, w := range ws {
			logger.Warn(w)
		}
	}
	return &app{cfg: cfg, log: logger, store: store, kr: kr, demo: demo, theme: th, closer: func() { store.Close() }}, nil
}

func (a *app) close() { a.closer() }

// loadTheme reads the configured theme (theme.*).
func loadTheme(cfg *config.Config) (*theme.Theme, error) {
	return theme.Load(theme.Config{Issuer: cfg.Issuer, Logo: cfg.Theme.Logo, AccentColor: cfg.Theme.AccentColor,
		CSS: cfg.Theme.CSS, Dir: cfg.Theme.Dir})
}

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
		AccessTokenAlgorithm: c.Keys.AccessTokenAlgorithm,
		KeyRotation:          c.Keys.RotationPeriod.Std(),
		AccessTokenLifetime:  c.Tokens.AccessTokenLifetime.Std(),
		IDTokenLifetime:      c.Tokens.IDTokenLifetime.Std(),
		RefreshTokenLifetime: c.Tokens.RefreshTokenLifetime.Std(),
		RefreshReuseGrace:    c.Tokens.RefreshReuseGrace.Std(),
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
		ACRValues: flow.SupportedACRs,
		// The languages of the pages and mails (ui_locales_supported).
		UILocales:  i18n.Languages(),
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

// service is the administrative actions over this app's store (the CLI
// and the admin API share them); mailer nil refuses the actions that mail.
func (a *app) service(now func() time.Time, ob admin.Outbox, keys admin.Keys) (*admin.Service, error) {
	return admin.New(admin.Deps{Store: a.store, Keyring: a.kr, Keys: keys, Outbox: ob, Config: a.cfg, Theme: a.theme, Now: now, Logger: a.log})
}

// syncClients makes the database match the config file's clients and the
// built-in ones (demo, account).
func (a *app) syncClients(ctx context.Context, now time.Time) error {
	var cs []storage.Client
	for _, c := range a.cfg.Clients {
		cs = append(cs, admin.ClientFromConfig(a.kr, c, "config", now))
	}
	if err := a.store.SyncClients(ctx, "config", cs); err != nil {
		return fmt.Errorf("sync clients from the config file: %w", err)
	}
	// The account pages are a relying party of this OP (always present).
	// Both built-in relying parties take the algorithms of discovery, so
	// their ID tokens are ES256, never an RSA signature.
	accountRedirect, accountPostLogout := account.RedirectURIs(a.cfg.Issuer)
	builtin := []storage.Client{{
		ID: account.ClientID, Name: "Your account", AppType: storage.AppTypeWeb,
		SecretHash:   op.HashClientSecret(a.kr, a.builtinSecret(account.ClientID)),
		RedirectURIs: []string{accountRedirect}, PostLogoutRedirectURIs: []string{accountPostLogout},
		GrantTypes: []string{op.GrantAuthorizationCode}, Source: "builtin", IDTokenSigningAlg: op.AlgES256,
		CreatedAt: now, UpdatedAt: now,
	}}
	if a.demo {
		redirect, postLogout := account.DemoRedirectURIs(a.cfg.Issuer)
		builtin = append(builtin, storage.Client{
			ID: account.DemoClientID, Name: "Latchkey demo", AppType: storage.AppTypeWeb,
			SecretHash:   op.HashClientSecret(a.kr, a.builtinSecret(account.DemoClientID)),
			RedirectURIs: []string{redirect}, PostLogoutRedirectURIs: []string{postLogout},
			GrantTypes: []string{op.GrantAuthorizationCode, op.GrantRefreshToken}, Source: "builtin",
			IDTokenSigningAlg: op.AlgES256, CreatedAt: now, UpdatedAt: now,
		})
	}
	if err := a.store.SyncClients(ctx, "builtin", builtin); err != nil {
		return fmt.Errorf("sync built-in clients: %w", err)
	}
	return nil
}
