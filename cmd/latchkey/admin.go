package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/latchkey/latchkey/config"
	"github.com/latchkey/latchkey/login/factor"
	"github.com/latchkey/latchkey/op"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
)

// multiFlag collects a repeated (or comma-separated) string flag.
type multiFlag []string

func (m *multiFlag) String() string { return strings.Join(*m, ",") }

func (m *multiFlag) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*m = append(*m, p)
		}
	}
	return nil
}

// readSecret reads all of stdin and drops one trailing newline.
func readSecret(r io.Reader) (string, error) {
	b, err := io.ReadAll(io.LimitReader(r, 64<<10))
	if err != nil {
		return "", err
	}
	s := string(b)
	s = strings.TrimSuffix(s, "\n")
	s = strings.TrimSuffix(s, "\r")
	return s, nil
}

func cmdMigrate(env *cmdEnv, args []string) error {
	fs := newFlags("migrate", env)
	configPath := fs.String("config", "", "configuration file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	a, err := openApp(env, *configPath, false)
	if err != nil {
		return err
	}
	defer a.close()
	fmt.Fprintln(env.stdout, "database is up to date")
	return nil
}

func cmdConfig(env *cmdEnv, args []string) error {
	if len(args) == 0 || args[0] != "print" {
		return usageErr("config: expected 'print'")
	}
	fs := newFlags("config print", env)
	configPath := fs.String("config", "", "configuration file")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	cfg, _, err := loadConfig(env, *configPath, false)
	if err != nil {
		return err
	}
	b, err := cfg.Redacted()
	if err != nil {
		return err
	}
	_, err = env.stdout.Write(b)
	return err
}

// --- users ---

func cmdUser(env *cmdEnv, args []string) error {
	if len(args) == 0 {
		return usageErr("user: expected create, list, disable or enable")
	}
	sub, args := args[0], args[1:]
	fs := newFlags("user "+sub, env)
	configPath := fs.String("config", "", "configuration file")
	switch sub {
	case "create":
		email := fs.String("email", "", "email address (required)")
		name := fs.String("name", "", "display name")
		region := fs.String("region", "", "region (e.g. EU, APAC) for the rollout of the email code")
		pwStdin := fs.Bool("password-stdin", false, "read the password from standard input")
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		if *email == "" {
			return usageErr("user create: --email is required")
		}
		a, err := openApp(env, *configPath, false)
		if err != nil {
			return err
		}
		defer a.close()
		return a.createUser(env, *email, *name, *region, *pwStdin)
	case "list":
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		a, err := openApp(env, *configPath, false)
		if err != nil {
			return err
		}
		defer a.close()
		users, err := a.store.ListUsers(env.ctx, storage.ListOptions{Limit: 100000})
		if err != nil {
			return err
		}
		tw := newTable(env.stdout)
		fmt.Fprintln(tw, "ID\tEMAIL\tNAME\tREGION\tSTATUS\tCREATED")
		for _, u := range users {
			status := "active"
			switch {
			case u.Disabled:
				status = "disabled"
			case u.OrgID != "":
				status = "sso"
			case u.PasswordHash == "":
				status = "no-password"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", u.ID, u.Email, u.Name, u.Region, status, u.CreatedAt.UTC().Format(time.RFC3339))
		}
		return tw.Flush()
	case "disable", "enable":
		email := fs.String("email", "", "email address (required)")
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		if *email == "" {
			return usageErr("user %s: --email is required", sub)
		}
		a, err := openApp(env, *configPath, false)
		if err != nil {
			return err
		}
		defer a.close()
		u, err := a.userByEmail(env.ctx, *email)
		if err != nil {
			return err
		}
		disable := sub == "disable"
		now := time.Now()
		set := func(x *storage.User) error {
			x.Disabled, x.UpdatedAt = disable, now
			return nil
		}
		if disable {
			// A disabled user's sessions, grants and trusted browsers end
			// with the change, in one transaction.
			_, err = a.store.RevokeUserGrants(env.ctx, u.ID, storage.Revocation{Cause: storage.RevokeUserDisabled, User: set}, now)
		} else {
			_, err = a.store.UpdateUser(env.ctx, u.ID, set)
		}
		if err != nil {
			return err
		}
		_ = a.store.CreateAuditEvent(env.ctx, storage.AuditEvent{At: now, UserID: u.ID, Email: u.Email, Event: "user." + sub + "d", Reason: "command line"})
		fmt.Fprintf(env.stdout, "user %s %sd\n", u.Email, sub)
		return nil
	}
	return usageErr("user: unknown subcommand %q", sub)
}

func (a *app) createUser(env *cmdEnv, email, name, region string, pwStdin bool) error {
	// The same rule as the sign-up and sign-in forms: an address goes into
	// mail headers, pages and logs as it is.
	email, ok := factor.NormalizeEmail(email)
	if !ok {
		return usageErr("user create: --email must be a plain address such as ada@example.com")
	}
	now := time.Now()
	u := storage.User{Email: email, Name: name, Region: region, NeedsBackupCode: true, CreatedAt: now, UpdatedAt: now}
	if pwStdin {
		pw, err := readSecret(env.stdin)
		if err != nil {
			return err
		}
		if err := factor.CheckNewPassword(pw, email); err != nil {
			return usageErr("user create: password refused: %v", err)
		}
		if u.PasswordHash, err = factor.NewPasswordHasher(factor.DefaultPasswordParams).Hash(pw); err != nil {
			return err
		}
		u.PasswordChangedAt = now
	}
	u, err := a.store.CreateUser(env.ctx, u)
	if errors.Is(err, storage.ErrConflict) {
		return conflictErr("a user with email %s exists already", email)
	} else if err != nil {
		return err
	}
	_ = a.store.CreateAuditEvent(env.ctx, storage.AuditEvent{At: now, UserID: u.ID, Email: u.Email, Event: "user.created", Reason: "command line"})
	fmt.Fprintf(env.stdout, "created user %s (id %s)\n", u.Email, u.ID)
	if !pwStdin {
		link, err := a.setPasswordLink(env, u, now)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "the user sets a password with this one-time link (valid 7 days):\n%s\n", link)
	}
	return nil
}

// setPasswordLink makes a one-time link to the set-password page.
func (a *app) setPasswordLink(env *cmdEnv, u storage.User, now time.Time) (string, error) {
	tok := keyring.NewToken()
	if _, err := a.store.CreateActionToken(env.ctx, storage.ActionToken{
		TokenHash: a.kr.MACString(keyring.PurposeAction, tok), UserID: u.ID, Purpose: "set-password",
		CreatedAt: now, ExpiresAt: now.Add(7 * 24 * time.Hour),
	}); err != nil {
		return "", err
	}
	return a.cfg.Issuer + "/account/set-password?token=" + url.QueryEscape(tok), nil
}

// --- clients ---

func cmdClient(env *cmdEnv, args []string) error {
	if len(args) == 0 {
		return usageErr("client: expected create, list or delete")
	}
	sub, args := args[0], args[1:]
	fs := newFlags("client "+sub, env)
	configPath := fs.String("config", "", "configuration file")
	switch sub {
	case "create":
		id := fs.String("id", "", "client id (required)")
		name := fs.String("name", "", "display name (default: the id)")
		public := fs.Bool("public", false, "public client (native or single-page app: no secret, PKCE required)")
		secretStdin := fs.Bool("secret-stdin", false, "read the client secret from standard input (else one is generated)")
		typ := fs.String("type", "", "web, native or user-agent (default web; native when --public)")
		format := fs.String("access-token-format", "", "opaque or jwt (default: tokens.access_token_format)")
		defaultACR := fs.String("default-acr", "", "acr required when the product asks for none (e.g. urn:latchkey:acr:mfa:fresh)")
		var redirects, postLogout, grants multiFlag
		fs.Var(&redirects, "redirect-uri", "redirect URI (repeat)")
		fs.Var(&postLogout, "post-logout-redirect-uri", "post-logout redirect URI (repeat)")
		fs.Var(&grants, "grant", "grant type (repeat or comma-separate): authorization_code, refresh_token, client_credentials, device_code")
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		a, err := openApp(env, *configPath, false)
		if err != nil {
			return err
		}
		defer a.close()
		return a.createClient(env, clientSpec{id: *id, name: *name, public: *public, secretStdin: *secretStdin, typ: *typ,
			format: *format, defaultACR: *defaultACR, redirects: redirects, postLogout: postLogout, grants: grants})
	case "list":
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		a, err := openApp(env, *configPath, false)
		if err != nil {
			return err
		}
		defer a.close()
		cs, err := a.store.ListClients(env.ctx)
		if err != nil {
			return err
		}
		tw := newTable(env.stdout)
		fmt.Fprintln(tw, "ID\tTYPE\tPUBLIC\tGRANTS\tREDIRECT URIS\tSOURCE")
		for _, c := range cs {
			fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\t%s\n", c.ID, c.AppType, c.Public, strings.Join(c.GrantTypes, ","), strings.Join(c.RedirectURIs, " "), c.Source)
		}
		return tw.Flush()
	case "delete":
		id := fs.String("id", "", "client id (required)")
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		if *id == "" {
			return usageErr("client delete: --id is required")
		}
		a, err := openApp(env, *configPath, false)
		if err != nil {
			return err
		}
		defer a.close()
		if err := a.store.DeleteClient(env.ctx, *id); errors.Is(err, storage.ErrNotFound) {
			return notFoundErr("no client %s", *id)
		} else if err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "deleted client %s\n", *id)
		return nil
	}
	return usageErr("client: unknown subcommand %q", sub)
}

type clientSpec struct {
	id, name, typ, format, defaultACR string
	public, secretStdin               bool
	redirects, postLogout, grants     []string
}

// createClient validates like the config file does (same rules, one place:
// config.Validate), then stores the client.
func (a *app) createClient(env *cmdEnv, s clientSpec) error {
	secret := ""
	generated := false
	if !s.public {
		if s.secretStdin {
			var err error
			if secret, err = readSecret(env.stdin); err != nil {
				return err
			}
		} else {
			secret, generated = keyring.NewToken(), true
		}
	} else if s.secretStdin {
		return usageErr("client create: a public client has no secret")
	}
	typ := s.typ
	if typ == "" {
		typ = config.ClientWeb
		if s.public {
			typ = config.ClientNative
		}
	}
	// Validate also fills the defaults (name, grants, token format and
	// lifetimes) and expands the short grant name device_code.
	cc := config.Client{ID: s.id, Name: s.name, Secret: secret, Public: s.public, Type: typ, RedirectURIs: s.redirects,
		PostLogoutRedirectURIs: s.postLogout, GrantTypes: s.grants, AccessTokenFormat: s.format, DefaultACR: s.defaultACR}
	check := *a.cfg
	check.Clients = []config.Client{cc}
	check.Organizations = nil
	if err := check.Validate(); err != nil {
		return usageErr("client create: %v", err)
	}
	c := clientFromConfig(a, check.Clients[0], "cli", time.Now())
	if err := a.store.CreateClient(env.ctx, c); errors.Is(err, storage.ErrConflict) {
		return conflictErr("client %s exists already", c.ID)
	} else if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "created client %s (%s, grants %s)\n", c.ID, c.AppType, strings.Join(c.GrantTypes, ","))
	if generated {
		fmt.Fprintf(env.stdout, "client secret (shown once, store it now): %s\n", secret)
	}
	return nil
}

// --- keys ---

func cmdKeys(env *cmdEnv, args []string) error {
	if len(args) == 0 || args[0] != "rotate" {
		return usageErr("keys: expected 'rotate'")
	}
	fs := newFlags("keys rotate", env)
	configPath := fs.String("config", "", "configuration file")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	a, err := openApp(env, *configPath, false)
	if err != nil {
		return err
	}
	defer a.close()
	provider, err := op.New(env.ctx, a.opOptions(time.Now), a.store, a.kr)
	if err != nil {
		return err
	}
	if err := provider.RotateKeys(env.ctx); err != nil {
		return err
	}
	keys, err := a.store.ListSigningKeys(env.ctx)
	if err != nil {
		return err
	}
	slices.SortFunc(keys, func(x, y storage.SigningKey) int { return y.NotBefore.Compare(x.NotBefore) })
	fmt.Fprintf(env.stdout, "rotated: new signing key %s (%s); running servers pick it up within 5 minutes\n", keys[0].ID, keys[0].Algorithm)
	return nil
}

// --- audit ---

func cmdAudit(env *cmdEnv, args []string) error {
	if len(args) == 0 || args[0] != "list" {
		return usageErr("audit: expected 'list'")
	}
	fs := newFlags("audit list", env)
	configPath := fs.String("config", "", "configuration file")
	email := fs.String("user", "", "only this user's events (email)")
	limit := fs.Int("limit", 100, "at most this many events, newest first")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	a, err := openApp(env, *configPath, false)
	if err != nil {
		return err
	}
	defer a.close()
	f := storage.AuditFilter{Limit: *limit}
	if *email != "" {
		u, err := a.userByEmail(env.ctx, *email)
		if err != nil {
			return err
		}
		f.UserID = u.ID
	}
	events, err := a.store.ListAuditEvents(env.ctx, f)
	if err != nil {
		return err
	}
	tw := newTable(env.stdout)
	fmt.Fprintln(tw, "TIME\tEVENT\tUSER\tCLIENT\tADDRESS\tREASON\tUSER AGENT\tDETAILS")
	for _, e := range events {
		who := e.Email
		if who == "" {
			who = e.UserID
		}
		keys := slices.Sorted(maps.Keys(e.Details))
		details := make([]string, 0, len(keys))
		for _, k := range keys {
			details = append(details, k+"="+e.Details[k])
		}
		ua := e.UserAgent
		if len(ua) > 60 {
			ua = ua[:57] + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.At.UTC().Format(time.RFC3339), e.Event, who, e.ClientID, e.IP,
			e.Reason, ua, strings.Join(details, " "))
	}
	return tw.Flush()
}
