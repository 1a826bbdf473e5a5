package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/latchkey/latchkey/clientip"
	"github.com/latchkey/latchkey/cmd/latchkey/internal/access"
	"github.com/latchkey/latchkey/cmd/latchkey/internal/admin"
	"github.com/latchkey/latchkey/cmd/latchkey/internal/metrics"
	"github.com/latchkey/latchkey/cmd/latchkey/internal/webhook"
	"github.com/latchkey/latchkey/federation"
	"github.com/latchkey/latchkey/login"
	"github.com/latchkey/latchkey/login/account"
	"github.com/latchkey/latchkey/login/factor"
	"github.com/latchkey/latchkey/login/flow"
	"github.com/latchkey/latchkey/login/i18n"
	"github.com/latchkey/latchkey/login/mail"
	"github.com/latchkey/latchkey/login/mail/outbox"
	"github.com/latchkey/latchkey/op"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
)

// The soft memory limit serve sets unless the environment sets GOMEMLIMIT
// (soft: the heap may pass it, the GC works harder). GOGC stays Go's
// default, 100 (measured, issue 16: see the README's Performance section).
const defaultMemoryLimit = 48 << 20

func hasEnv(environ []string, name string) bool {
	return slices.ContainsFunc(environ, func(kv string) bool { return strings.HasPrefix(kv, name+"=") })
}

// demoEmail is the account --demo creates (with a fresh password each start).
const demoEmail = "demo@example.com"

func cmdServe(env *cmdEnv, args []string) error {
	fs := newFlags("serve", env)
	configPath := fs.String("config", "", "configuration file (YAML)")
	demo := fs.Bool("demo", false, "create the demo account and client and serve /demo")
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof on this loopback address (e.g. 127.0.0.1:6060)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	// A bad --pprof is a usage error: say so before opening the database
	// and resetting the demo account.
	if *pprofAddr != "" {
		if err := checkPprofAddr(*pprofAddr); err != nil {
			return err
		}
	}
	env.serving, env.createDB = true, true
	a, err := openApp(env, *configPath, *demo)
	if err != nil {
		return err
	}
	defer a.close()
	// zitadel/oidc logs through slog's default logger only.
	slog.SetDefault(a.log)
	// On one CPU Go runs one P, which polls the network only when its run
	// queue drains: under load, finished requests wait on their
	// connection's background read and tail latency reaches seconds. Two
	// Ps keep it in milliseconds (and cost less CPU per request, measured:
	// refresh p99 1.1 s → 60 ms, 0.58 → 0.47 ms CPU). An explicit
	// GOMAXPROCS is respected.
	if !hasEnv(env.environ, "GOMAXPROCS") && runtime.GOMAXPROCS(0) < 2 {
		runtime.GOMAXPROCS(2)
	}
	// Runtime settings, measured on one core (README, Performance): the
	// argon2id block is now reused per slot, so the sign-in no longer
	// churns 19 MiB per check, and GOGC 30 (the old default here) kept
	// the same sign-in peak RSS as GOGC 100 (79 MiB either way) while
	// costing refresh a third of its rate per core (SQLite 1.32–1.85k →
	// 1.90k, PostgreSQL 1.42–1.56k → 2.20–2.29k with GOGC 100). So GOGC
	// stays Go's default; the soft limit keeps a burst of sign-ins from
	// growing the heap past it. GOGC/GOMEMLIMIT in the environment win.
	if !hasEnv(env.environ, "GOMEMLIMIT") {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	srv, err := newServer(env.ctx, a, time.Now)
	if err != nil {
		return err
	}
	if *demo {
		if err := a.seedDemo(env, srv); err != nil {
			return err
		}
	}
	if *pprofAddr != "" {
		if err := startPprof(a, *pprofAddr); err != nil {
			return err
		}
	}
	return srv.run(env.ctx)
}

// server is one running Latchkey: the OP, the login pages and the
// background jobs, behind one http.Server.
type server struct {
	app     *app
	op      *op.OP
	handler http.Handler
	now     func() time.Time
	// fed opens organisations' identity providers (single sign-on).
	fed *federation.Registry
	// watching, if set, is called when the change listener is attached
	// (tests wait for it).
	watching func()
	// metrics are always recorded; served only on metrics.addr.
	metrics *metrics.Metrics
	// workers run in the background loop next to the key refresh and the
	// sweep (each a Run(ctx) that returns when ctx ends).
	workers []func(context.Context)
	// webhook delivers security events (nil without events.webhook_url).
	webhook *webhook.Deliverer
	// clientIP is the one rule for "which address is this request from"
	// (trusted_proxies): echo's IPExtractor, hence the throttle, the audit
	// log and the mails; request logs use it too.
	clientIP func(*http.Request) string
	// mail delivers the outbox (every instance runs one).
	mail *outbox.Worker
}

// newServer wires everything. now is the clock (tests pass their own).
func newServer(ctx context.Context, a *app, now func() time.Time) (*server, error) {
	cfg := a.cfg
	if err := a.syncClients(ctx, now()); err != nil {
		return nil, err
	}
	if err := a.syncOrganizations(ctx, now()); err != nil {
		return nil, err
	}
	fed := federation.NewRegistry(federation.Options{
		Keyring: a.kr, RedirectURL: cfg.Issuer + "/federation/callback", Now: now, Logger: a.log,
	})
	mailer, err := newMailer(a)
	if err != nil {
		return nil, err
	}
	m := metrics.New()
	mw, err := outbox.New(outbox.Config{}, outbox.Deps{Store: a.store, Keyring: a.kr, Mailer: mailer, Now: now, Logger: a.log, Metrics: m})
	if err != nil {
		return nil, err
	}
	lcfg := login.Config{
		Issuer:            cfg.Issuer,
		SiteName:          cfg.SiteName,
		Policy:            policyFromConfig(a),
		EmailCodeTTL:      cfg.Policy.EmailCodeTTL.Std(),
		SignupEnabled:     cfg.Signup.Enabled,
		NewSignInMail:     cfg.Notifications.NewSignIn,
		TOTPIssuer:        cfg.TOTP.Issuer,
		ReconfirmClientID: account.ClientID,
		Demo:              a.demo,
		DefaultLanguage:   cfg.DefaultLanguage,
		PseudoLocale:      cfg.PseudoLocale,
		// The built-in clients, named in the user's language.
		ClientNames: map[string]i18n.Msg{account.ClientID: i18n.M("client.account"), account.DemoClientID: i18n.M("client.demo")},
		Theme:       a.theme,
	}
	opts := a.opOptions(now)
	opts.Metrics = m
	if opts.ErrorPage, err = login.ErrorPages(lcfg, a.kr, a.log); err != nil {
		return nil, err
	}
	if opts.PageWords, err = login.PageWords(lcfg); err != nil {
		return nil, err
	}
	provider, err := op.New(ctx, opts, a.store, a.kr)
	if err != nil {
		return nil, err
	}
	// One argon2id run per CPU: more would add 19 MiB each, not speed.
	hasher := &factor.PasswordHasher{Params: factor.DefaultPasswordParams, Slots: runtime.NumCPU(), Observe: m.PasswordHash}
	lh, err := login.New(lcfg, login.Deps{
		Store: a.store, Keyring: a.kr, OP: provider, Outbox: mw, Hasher: hasher, Now: now, Logger: a.log,
		Federation: fed, Metrics: m,
	})
	if err != nil {
		return nil, err
	}
	ah, err := account.New(account.Config{
		Issuer:              cfg.Issuer,
		SiteName:            cfg.SiteName,
		Policy:              lcfg.Policy,
		EmailCodeTTL:        lcfg.EmailCodeTTL,
		Reconfirm:           cfg.Policy.Reconfirm.Std(),
		TOTPIssuer:          cfg.TOTP.Issuer,
		Demo:                a.demo,
		DemoClientSecret:    a.builtinSecret(account.DemoClientID),
		AccountClientSecret: a.builtinSecret(account.ClientID),
		DefaultLanguage:     cfg.DefaultLanguage,
		PseudoLocale:        cfg.PseudoLocale,
		Theme:               a.theme,
	}, account.Deps{
		Store: a.store, Keyring: a.kr, OP: provider, Outbox: mw, Hasher: hasher, Now: now, Logger: a.log, Metrics: m,
	})
	if err != nil {
		return nil, err
	}
	// Every page and mail is parsed: a file of theme.dir none took is a
	// misspelt name.
	if err := a.theme.Unused(); err != nil {
		return nil, err
	}
	m.WatchSigningKey(provider.SigningKey, now)
	m.WatchDatabase(a.store.PoolStats)
	// The mail outbox's depth and the age of its oldest message.
	m.WatchOutbox("mail", mw, now)
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	// The peer address, or behind a trusted proxy the rightmost address
	// it did not add itself: throttling must not trust a header the
	// client writes.
	clientIP := clientip.New(cfg.TrustedProxyPrefixes())
	e.IPExtractor = clientIP
	e.Use(middleware.BodyLimit("64K"))
	e.Use(middleware.Recover())
	lh.Register(e)
	ah.Register(e)
	svc, err := a.service(now, outbox.Queue{Store: a.store, Keyring: a.kr, Worker: mw, Now: now}, provider)
	if err != nil {
		return nil, err
	}
	admin.NewAPI(svc, provider).Register(e)
	s := &server{app: a, op: provider, now: now, fed: fed, metrics: m, clientIP: clientIP, mail: mw}
	s.workers = append(s.workers, func(ctx context.Context) { _ = mw.Run(ctx) })
	if cfg.Events.WebhookURL != "" {
		d, err := webhook.New(webhook.Options{URL: cfg.Events.WebhookURL, Secret: cfg.Events.WebhookSecret, Store: a.store,
			Now: now, Logger: a.log, Metrics: m})
		if err != nil {
			return nil, err
		}
		s.webhook = d
		s.workers = append(s.workers, d.Run)
		m.WatchOutbox("events", d, now)
	}
	// The access log and the latency histogram name echo's route
	// patterns; a path no route matched stays "unmatched".
	routes := map[string]bool{}
	for _, rt := range e.Routes() {
		routes[rt.Path] = true
	}
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if routes[c.Path()] {
				access.SetRoute(c.Request(), c.Path())
			}
			return next(c)
		}
	})
	s.handler = access.Middleware(access.Options{
		Logger: a.log,
		// X-Request-Id is believed only from a trusted proxy
		// (trusted_proxies), and the logged client address is the one
		// rule's (clientip).
		Trusted:    clientip.TrustedPeer(cfg.TrustedProxyPrefixes()),
		ClientAddr: clientIP,
		Observe:    m.ObserveRequest,
		Quiet:      map[string]bool{"/healthz": true, "/ready": true},
	}, rootHandler(provider.Handler(), s.healthHandler(), e))
	return s, nil
}

// opPaths are served by the OpenID provider; everything else by echo.
var opPaths = map[string]bool{
	"/.well-known/openid-configuration": true, "/keys": true, "/authorize": true, "/authorize/callback": true,
	"/oauth/token": true, "/oauth/introspect": true, "/userinfo": true, "/revoke": true,
	"/end_session": true, "/device_authorization": true,
	"/par": true, "/.well-known/oauth-authorization-server": true,
}

func rootHandler(opHandler, health, pages http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case opPaths[r.URL.Path]:
			access.SetRoute(r, r.URL.Path)
			opHandler.ServeHTTP(w, r)
		case r.URL.Path == "/healthz" || r.URL.Path == "/ready":
			access.SetRoute(r, r.URL.Path)
			health.ServeHTTP(w, r)
		default:
			pages.ServeHTTP(w, r)
		}
	})
}

func policyFromConfig(a *app) flow.Policy {
	p := a.cfg.Policy
	regions := map[string]time.Time{}
	for k, v := range p.Rollout.Regions {
		regions[k] = v.Time()
	}
	return flow.Policy{
		SessionIdle: p.SessionIdle.Std(), StaySignedIn: p.StaySignedIn.Std(), TrustedDevice: p.TrustedDevice.Std(),
		Reverify: p.Reverify.Std(), RolloutDefault: p.Rollout.Default.Time(), RolloutRegions: regions,
	}
}

func newMailer(a *app) (mail.Mailer, error) {
	u := a.cfg.SMTPURL
	if u == "" {
		u = "log:"
	}
	// One attempt per delivery: the outbox retries, with back-off.
	return mail.NewWithOptions(u, a.cfg.MailFrom, a.log, mail.Options{Attempts: 1})
}

// run serves on the configured address until ctx ends, then shuts down
// gracefully.
func (s *server) run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.app.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.app.cfg.Addr, err)
	}
	return s.serve(ctx, ln)
}

// serve serves on ln: https with HTTP/2 when tls.cert_file is set (the
// certificate reloaded when its files change), else plain http.
func (s *server) serve(ctx context.Context, ln net.Listener) error {
	a := s.app
	var certs *certReloader
	if a.cfg.TLS.Enabled() {
		var err error
		if certs, err = newCertReloader(a.cfg.TLS.CertFile, a.cfg.TLS.KeyFile, a.log); err != nil {
			ln.Close()
			return err
		}
	}
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
	}
	bg, cancel := context.WithCancel(ctx)
	defer cancel()
	go s.background(bg)
	if addr := a.cfg.Metrics.Addr; addr != "" {
		stop, err := serveMetrics(a, addr, s.metrics.Handler())
		if err != nil {
			return err
		}
		defer stop()
	}
	go s.op.BackchannelWorker().Run(bg) // back-channel logout deliveries (op/backchannel.go)
	errc := make(chan error, 1)
	if certs != nil {
		hs.TLSConfig = certs.tlsConfig()
		// ServeTLS with the certificate from GetCertificate; it sets up
		// HTTP/2 itself.
		go func() { errc <- hs.ServeTLS(ln, "", "") }()
	} else {
		go func() { errc <- hs.Serve(ln) }()
	}
	a.log.Info("Latchkey is running", "issuer", a.cfg.Issuer, "listen", ln.Addr().String(), "tls", certs != nil,
		"discovery", a.cfg.Issuer+"/.well-known/openid-configuration")
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	a.log.Info("shutting down")
	sctx, scancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer scancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// background re-reads signing keys (rotating on schedule), sweeps
// expired rows and runs the workers (the mail outbox, the webhook's
// deliveries). Safe to run on every instance.
func (s *server) background(ctx context.Context) {
	go s.watch(ctx)
	for _, run := range s.workers {
		go run(ctx)
	}
	keys := time.NewTicker(op.KeyReloadInterval)
	sweep := time.NewTicker(10 * time.Minute)
	defer keys.Stop()
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-keys.C:
			if err := s.op.RefreshKeys(ctx); err != nil {
				s.app.log.Error("refresh signing keys", "err", err)
			}
		case <-sweep.C:
			// The longest a session may idle is that of "stay signed in".
			idle := policyFromConfig(s.app).IdleLimit(true)
			sp := storage.SweepPolicy{SessionMaxIdle: idle, RefreshIdle: s.app.cfg.Policy.RefreshIdle.Std(),
				// Used refresh tokens: kept through the reuse grace, then
				// compacted (reuse of older ones is still detected).
				RefreshUsedKeep:    max(s.app.cfg.Tokens.RefreshReuseGrace.Std(), time.Minute),
				AuditRetention:     s.app.cfg.Audit.Retention.Std(),
				TrustedDeviceGrace: login.TrustedDeviceKeep,
				OnAbandoned:        s.metrics.Abandoned}
			if err := s.app.store.Sweep(ctx, s.now(), sp); err != nil {
				s.app.log.Error("sweep expired rows", "err", err)
			}
		}
	}
}

// watch applies other instances' changes at once on PostgreSQL (a new
// signing key, a changed or deleted client); on SQLite the periodic
// reloads do. ready, if set, is called once the listener is attached.
func (s *server) watch(ctx context.Context) {
	err := s.app.store.Listen(ctx, func(topic string) {
		switch topic {
		case storage.TopicKeys:
			if err := s.op.RefreshKeys(ctx); err != nil && ctx.Err() == nil {
				s.app.log.Error("reload signing keys", "err", err)
			}
		case storage.TopicClients:
			s.op.ForgetClients()
		}
	}, s.watching)
	if err != nil && !errors.Is(err, storage.ErrNoNotifications) {
		s.app.log.Error("change notifications", "err", err)
	}
}

// seedDemo creates (or resets) the demo account with a fresh password and
// says, in plain words, where to sign in.
func (a *app) seedDemo(env *cmdEnv, s *server) error {
	ctx := env.ctx
	password := keyring.RandomString(12)
	phc, err := factor.NewPasswordHasher(factor.DefaultPasswordParams).Hash(password)
	if err != nil {
		return err
	}
	now := s.now()
	u, err := a.store.GetUserByEmail(ctx, demoEmail)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		_, err = a.store.CreateUser(ctx, storage.User{Email: demoEmail, Name: "Demo User", PasswordHash: phc,
			EmailVerified: true, NeedsBackupCode: true, CreatedAt: now, UpdatedAt: now, PasswordChangedAt: now})
	case err == nil:
		_, err = a.store.UpdateUser(ctx, u.ID, func(x *storage.User) error {
			x.PasswordHash, x.Disabled, x.UpdatedAt, x.PasswordChangedAt = phc, false, now, now
			return nil
		})
	}
	if err != nil {
		return fmt.Errorf("demo account: %w", err)
	}
	fmt.Fprintf(env.stderr, `
  Latchkey demo is ready.

    Sign in at:  %s/demo
    Email:       %s
    Password:    %s
    Client id:   %s (redirect %s/demo/callback)

  The sign-in confirmation code is sent by email; without smtp_url it is
  printed in this log. Discovery: %s/.well-known/openid-configuration

`, a.cfg.Issuer, demoEmail, password, account.DemoClientID, a.cfg.Issuer, a.cfg.Issuer)
	return nil
}

// serveMetrics serves Prometheus metrics on their own listener (never
// the public one); stop shuts it down.
func serveMetrics(a *app, addr string, h http.Handler) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", h)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	a.log.Info("metrics listening", "addr", ln.Addr().String(), "path", "/metrics")
	return func() { _ = hs.Close() }, nil
}

// checkPprofAddr accepts only a loopback address: the profiler has no
// authentication and shows the command line and every goroutine's stack.
func checkPprofAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return usageErr("--pprof: %v", err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return usageErr("--pprof must listen on a loopback address, not %q", addr)
	}
	return nil
}

// startPprof serves the profiler on a separate address (checked by
// checkPprofAddr).
func startPprof(a *app, addr string) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	go func() { _ = http.Serve(ln, mux) }()
	a.log.Info("pprof listening", "addr", ln.Addr().String())
	return nil
}
