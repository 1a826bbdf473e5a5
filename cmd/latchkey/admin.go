package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/latchkey/latchkey/cmd/latchkey/internal/admin"
	"github.com/latchkey/latchkey/config"
	"github.com/latchkey/latchkey/login/mail/outbox"
	"github.com/latchkey/latchkey/op"
	"github.com/latchkey/latchkey/storage"
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

// adminErr maps the administrative actions' errors onto exit codes.
func adminErr(err error) error {
	var ie *admin.InvalidError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ie):
		return usageErr("%s", ie.Msg)
	case errors.Is(err, admin.ErrNotFound):
		return notFoundErr("%s", strings.TrimSuffix(err.Error(), ": "+admin.ErrNotFound.Error()))
	case errors.Is(err, admin.ErrConflict):
		return conflictErr("%s", strings.TrimSuffix(err.Error(), ": "+admin.ErrConflict.Error()))
	}
	return err
}

// subcommand splits "group sub args…"; "group", "group --help" and
// "group help" print the group's usage (exit 0 for help).
func subcommand(env *cmdEnv, group string, args []string, subs string) (string, []string, error) {
	if len(args) == 0 {
		return "", nil, usageErr("%s: expected %s", group, subs)
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprintf(env.stdout, "Usage: latchkey %s %s [flags]; latchkey %s SUBCOMMAND --help lists a subcommand's flags.\n", group, subs, group)
		return "", nil, errHelp
	}
	return args[0], args[1:], nil
}

func cmdMigrate(env *cmdEnv, args []string) error {
	fs := newFlags("migrate", env)
	configPath := fs.String("config", "", "configuration file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	env.createDB = true
	a, err := openApp(env, *configPath, false)
	if err != nil {
		return err
	}
	defer a.close()
	fmt.Fprintln(env.stdout, "database is up to date")
	return nil
}

func cmdConfig(env *cmdEnv, args []string) error {
	sub, args, err := subcommand(env, "config", args, "print")
	if err != nil {
		return err
	}
	if sub != "print" {
		return usageErr("config: expected 'print'")
	}
	fs := newFlags("config print", env)
	configPath := fs.String("config", "", "configuration file")
	if err := parseFlags(fs, args); err != nil {
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
	sub, args, err := subcommand(env, "user", args, "create|list|show|disable|enable|delete|reset-2fa|send-reset")
	if err != nil {
		return err
	}
	fs := newFlags("user "+sub, env)
	configPath := fs.String("config", "", "configuration file")
	// open loads the app and the administrative actions (with a mailer
	// when the action mails).
	open := func(withMail bool) (*app, *admin.Service, error) {
		a, err := openApp(env, *configPath, false)
		if err != nil {
			return nil, nil, err
		}
		var svc *admin.Service
		if withMail {
			m, merr := newMailer(a)
			if merr != nil {
				a.close()
				return nil, nil, merr
			}
			// The mail goes through the outbox like any other, and this
			// command delivers it at once (a running server retries it if
			// the mail server is down).
			w, werr := outbox.New(outbox.Config{}, outbox.Deps{Store: a.store, Keyring: a.kr, Mailer: m, Now: time.Now, Logger: a.log})
			if werr != nil {
				a.close()
				return nil, nil, werr
			}
			svc, err = a.service(time.Now, outbox.Queue{Store: a.store, Keyring: a.kr, Worker: deliverNow{env.ctx, w, a.log}, Now: time.Now}, nil)
		} else {
			svc, err = a.service(time.Now, nil, nil)
		}
		if err != nil {
			a.close()
			return nil, nil, err
		}
		return a, svc, nil
	}
	switch sub {
	case "create":
		email := fs.String("email", "", "email address (required)")
		name := fs.String("name", "", "display name")
		region := fs.String("region", "", "region (e.g. EU, APAC) for the rollout of the email code")
		pwStdin := fs.Bool("password-stdin", false, "read the password from standard input")
		sendLink := fs.Bool("send-link", false, "without --password-stdin: mail the set-password link to the user instead of printing it")
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		if *email == "" {
			return usageErr("user create: --email is required")
		}
		pw := ""
		if *pwStdin {
			if pw, err = readSecret(env.stdin); err != nil {
				return err
			}
			if pw == "" {
				return usageErr("user create: --password-stdin: standard input is empty")
			}
		}
		a, svc, err := open(*sendLink)
		if err != nil {
			return err
		}
		defer a.close()
		u, err := svc.CreateUser(env.ctx, admin.CommandLine, admin.NewUser{Email: *email, Name: *name, Region: *region, Password: pw})
		if err != nil {
			return adminErr(err)
		}
		fmt.Fprintf(env.stdout, "created user %s (id %s)\n", u.Email, u.ID)
		switch {
		case *pwStdin:
		case *sendLink:
			if _, err := svc.SendSetPasswordLink(env.ctx, admin.CommandLine, u.ID); err != nil {
				return adminErr(err)
			}
			fmt.Fprintf(env.stdout, "mailed %s a one-time link to set a password (valid 7 days)\n", u.Email)
		default:
			link, err := svc.SetPasswordLink(env.ctx, u)
			if err != nil {
				return err
			}
			fmt.Fprintf(env.stdout, "the user sets a password with this one-time link (valid 7 days):\n%s\n", link)
		}
		return nil
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
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", u.ID, u.Email, u.Name, u.Region, userStatus(u), u.CreatedAt.UTC().Format(time.RFC3339))
		}
		return tw.Flush()
	case "show":
		email := fs.String("email", "", "email address (required)")
		asJSON := fs.Bool("json", false, "print JSON (as the admin API's GET /admin/v1/users/{id})")
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		if *email == "" {
			return usageErr("user show: --email is required")
		}
		a, svc, err := open(false)
		if err != nil {
			return err
		}
		defer a.close()
		u, err := svc.UserByEmail(env.ctx, *email)
		if err != nil {
			return adminErr(err)
		}
		d, err := svc.Detail(env.ctx, u)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(env.stdout, admin.DetailJSON(d))
		}
		printUser(env.stdout, d)
		return nil
	case "disable", "enable", "delete", "reset-2fa", "send-reset":
		email := fs.String("email", "", "email address (required)")
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		if *email == "" {
			return usageErr("user %s: --email is required", sub)
		}
		a, svc, err := open(sub == "reset-2fa" || sub == "send-reset")
		if err != nil {
			return err
		}
		defer a.close()
		u, err := svc.UserByEmail(env.ctx, *email)
		if err != nil {
			return adminErr(err)
		}
		return adminErr(userAction(env, svc, sub, u))
	}
	return usageErr("user: unknown subcommand %q", sub)
}

// userAction runs one of the support desk's actions on u and says what
// it did.
func userAction(env *cmdEnv, svc *admin.Service, sub string, u storage.User) error {
	ctx, w := env.ctx, env.stdout
	switch sub {
	case "disable", "enable":
		if _, err := svc.SetDisabled(ctx, admin.CommandLine, u.ID, sub == "disable"); err != nil {
			return err
		}
		fmt.Fprintf(w, "user %s %sd\n", u.Email, sub)
	case "delete":
		if _, err := svc.DeleteUser(ctx, admin.CommandLine, u.ID); err != nil {
			return err
		}
		fmt.Fprintf(w, "deleted user %s and everything that was theirs (their audit trail stays)\n", u.Email)
	case "reset-2fa":
		_, mailed, err := svc.ResetSecondStep(ctx, admin.CommandLine, u.ID)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "reset 2-step verification of %s: authenticator app and backup code removed, sessions, product grants and trusted browsers ended; the next sign-in uses email codes\n", u.Email)
		if mailed {
			fmt.Fprintf(w, "notified %s by mail\n", u.Email)
		} else {
			fmt.Fprintf(env.stderr, "latchkey: warning: the notification mail to %s could not be sent\n", u.Email)
		}
	case "send-reset":
		if _, err := svc.SendSetPasswordLink(ctx, admin.CommandLine, u.ID); err != nil {
			return err
		}
		fmt.Fprintf(w, "mailed %s a one-time link to set a new password (valid 7 days)\n", u.Email)
	}
	return nil
}

func userStatus(u storage.User) string {
	switch {
	case u.Disabled:
		return "disabled"
	case u.OrgID != "":
		return "sso"
	case u.PasswordHash == "":
		return "no-password"
	}
	return "active"
}

// printUser is "user show": what the support desk needs on one screen.
func printUser(w io.Writer, d admin.UserDetail) {
	u := d.User
	yes := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	when := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	region := u.Region
	if region == "" {
		region = "(default)"
	}
	fmt.Fprintf(w, "user:        %s (id %s)\nname:        %s\nregion:      %s\nstatus:      %s\ncreated:     %s\n",
		u.Email, u.ID, u.Name, region, userStatus(u), when(u.CreatedAt))
	last := "never"
	if d.LastSignIn != nil {
		last = when(d.LastSignIn.At)
		if d.LastSignIn.ClientID != "" {
			last += " (" + d.LastSignIn.ClientID + ")"
		}
	}
	fmt.Fprintf(w, "last sign-in: %s\n", last)
	second := "email code"
	if d.Authenticator {
		second = "authenticator app (email code as the fallback)"
	}
	if u.OrgID != "" {
		second = "none here: the organisation's identity provider"
	}
	fmt.Fprintf(w, "methods:     password %s, authenticator app %s, backup code %s; second step: %s\n",
		yes(d.Password), yes(d.Authenticator), yes(d.BackupCode), second)
	fmt.Fprintf(w, "\nsessions (%d):\n", len(d.Sessions))
	for _, s := range d.Sessions {
		fmt.Fprintf(w, "  %s  last seen %s  from %s  %s\n", s.ID, when(s.LastSeenAt), s.IP, s.UserAgent)
	}
	fmt.Fprintf(w, "trusted browsers (%d):\n", len(d.TrustedBrowsers))
	for _, b := range d.TrustedBrowsers {
		fmt.Fprintf(w, "  %s  until %s  last used %s  %s\n", b.ID, when(b.ExpiresAt), when(b.LastUsedAt), b.UserAgent)
	}
	fmt.Fprintf(w, "product grants (%d):\n", len(d.Grants))
	for _, g := range d.Grants {
		fmt.Fprintf(w, "  %s  %s  last used %s\n", g.FamilyID, g.ClientID, when(g.LastUsedAt))
	}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// --- clients ---

func cmdClient(env *cmdEnv, args []string) error {
	sub, args, err := subcommand(env, "client", args, "create|list|delete|rotate-secret")
	if err != nil {
		return err
	}
	fs := newFlags("client "+sub, env)
	configPath := fs.String("config", "", "configuration file")
	switch sub {
	case "create":
		id := fs.String("id", "", "client id (required)")
		name := fs.String("name", "", "display name, shown on the sign-in pages (default: the id)")
		public := fs.Bool("public", false, "public client (native or single-page app: no secret, PKCE required)")
		secretStdin := fs.Bool("secret-stdin", false, "read the client secret from standard input (else one is generated)")
		typ := fs.String("type", "", "web, native or user-agent (default web; native when --public)")
		format := fs.String("access-token-format", "", "opaque or jwt (default: tokens.access_token_format)")
		defaultACR := fs.String("default-acr", "", "acr required when the product asks for none (e.g. urn:latchkey:acr:mfa:fresh)")
		adminFull := fs.Bool("admin", false, "grant the admin API (scope latchkey:admin) to the client's client_credentials tokens")
		adminRead := fs.Bool("admin-read", false, "grant the read-only admin API (scope latchkey:admin:read)")
		jwksFile := fs.String("jwks-file", "", "JWK set file of the client's public keys (private_key_jwt; no secret is generated)")
		jwksURI := fs.String("jwks-uri", "", "URL of the client's JWK set (private_key_jwt; no secret is generated)")
		bclURI := fs.String("backchannel-logout-uri", "", "where logout tokens are posted when a session ends (OIDC Back-Channel Logout)")
		bclSID := fs.Bool("backchannel-logout-session-required", false, "logout tokens must carry sid")
		thirdParty := fs.Bool("third-party", false, "show a consent page (first-party clients never ask)")
		requirePAR := fs.Bool("require-par", false, "authorization requests only through /par (RFC 9126)")
		dpopBound := fs.Bool("dpop", false, "every token request must carry a DPoP proof (RFC 9449)")
		logoURI := fs.String("logo-uri", "", "the client's logo, shown with --name on the sign-in pages (https URL)")
		idTokenAlg := fs.String("id-token-alg", "", "the client's id_token_signed_response_alg: RS256 or ES256 (default: keys.algorithm)")
		var redirects, postLogout, grants, scopes multiFlag
		fs.Var(&redirects, "redirect-uri", "redirect URI (repeat)")
		fs.Var(&postLogout, "post-logout-redirect-uri", "post-logout redirect URI (repeat)")
		fs.Var(&grants, "grant", "grant type (repeat or comma-separate): authorization_code, refresh_token, client_credentials, device_code")
		fs.Var(&scopes, "scope", "a scope client_credentials may grant (repeat or comma-separate)")
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		access := ""
		switch {
		case *adminFull && *adminRead:
			return usageErr("client create: --admin or --admin-read, not both")
		case *adminFull:
			access = config.AdminFull
		case *adminRead:
			access = config.AdminRead
		}
		if access != "" && len(grants) == 0 {
			grants = multiFlag{config.GrantClientCredentials} // the admin API takes client_credentials tokens
		}
		secret := ""
		if *secretStdin {
			if *public {
				return usageErr("client create: a public client has no secret")
			}
			if secret, err = readSecret(env.stdin); err != nil {
				return err
			}
			if secret == "" {
				return usageErr("client create: --secret-stdin: standard input is empty")
			}
		}
		var jwks string
		if *jwksFile != "" {
			b, err := os.ReadFile(*jwksFile)
			if err != nil {
				return usageErr("client create: --jwks-file: %v", err)
			}
			jwks = strings.TrimSpace(string(b))
		}
		a, err := openApp(env, *configPath, false)
		if err != nil {
			return err
		}
		defer a.close()
		svc, err := a.service(time.Now, nil, nil)
		if err != nil {
			return err
		}
		c, generated, err := svc.CreateClient(env.ctx, admin.CommandLine, config.Client{ID: *id, Name: *name, LogoURI: *logoURI, Secret: secret,
			Public: *public, Type: *typ, RedirectURIs: redirects, PostLogoutRedirectURIs: postLogout, GrantTypes: grants,
			AccessTokenFormat: *format, DefaultACR: *defaultACR, Admin: access,
			Scopes: scopes, JWKS: config.JWKS(jwks), JWKSURI: *jwksURI, BackchannelLogoutURI: *bclURI,
			BackchannelLogoutSessionRequired: *bclSID, ThirdParty: *thirdParty,
			RequirePushedAuthorizationRequests: *requirePAR, DPoPBoundAccessTokens: *dpopBound,
			IDTokenSignedResponseAlg: *idTokenAlg})
		if err != nil {
			return adminErr(err)
		}
		fmt.Fprintf(env.stdout, "created client %s (%s, grants %s)\n", c.ID, c.AppType, strings.Join(c.GrantTypes, ","))
		if c.AdminAccess != "" {
			scope := op.ScopeAdminRead
			if c.AdminAccess == config.AdminFull {
				scope = op.ScopeAdmin
			}
			fmt.Fprintf(env.stdout, "admin API: ask for a client_credentials token with scope %s\n", scope)
		}
		if generated != "" {
			fmt.Fprintf(env.stdout, "client secret (shown once, store it now): %s\n", generated)
		}
		return nil
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
		fmt.Fprintln(tw, "ID\tTYPE\tPUBLIC\tGRANTS\tREDIRECT URIS\tADMIN\tSOURCE")
		for _, c := range cs {
			access := c.AdminAccess
			if access == "" {
				access = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\t%s\t%s\n", c.ID, c.AppType, c.Public, strings.Join(c.GrantTypes, ","),
				strings.Join(c.RedirectURIs, " "), access, c.Source)
		}
		return tw.Flush()
	case "delete", "rotate-secret":
		id := fs.String("id", "", "client id (required)")
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		if *id == "" {
			return usageErr("client %s: --id is required", sub)
		}
		a, err := openApp(env, *configPath, false)
		if err != nil {
			return err
		}
		defer a.close()
		svc, err := a.service(time.Now, nil, nil)
		if err != nil {
			return err
		}
		if sub == "rotate-secret" {
			secret, err := svc.RotateClientSecret(env.ctx, admin.CommandLine, *id)
			if err != nil {
				return adminErr(err)
			}
			fmt.Fprintf(env.stdout, "new secret of client %s (shown once; the old one no longer works): %s\n", *id, secret)
			return nil
		}
		c, err := svc.DeleteClient(env.ctx, admin.CommandLine, *id)
		if err != nil {
			return adminErr(err)
		}
		fmt.Fprintf(env.stdout, "deleted client %s\n", *id)
		if c.Source == "config" {
			fmt.Fprintln(env.stdout, "note: it comes from the configuration file and returns at the next start unless you remove it there")
		}
		return nil
	}
	return usageErr("client: unknown subcommand %q", sub)
}

// --- keys ---

func cmdKeys(env *cmdEnv, args []string) error {
	sub, args, err := subcommand(env, "keys", args, "rotate")
	if err != nil {
		return err
	}
	if sub != "rotate" {
		return usageErr("keys: expected 'rotate'")
	}
	fs := newFlags("keys rotate", env)
	configPath := fs.String("config", "", "configuration file")
	now := fs.Bool("now", false, "emergency: the new key signs at once and every other key is withdrawn from JWKS (a compromised key)")
	if err := parseFlags(fs, args); err != nil {
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
	svc, err := a.service(time.Now, nil, provider)
	if err != nil {
		return err
	}
	if err := svc.RotateKeys(env.ctx, admin.CommandLine, *now); err != nil {
		return err
	}
	keys, err := a.store.ListSigningKeys(env.ctx)
	if err != nil {
		return err
	}
	slices.SortFunc(keys, func(x, y storage.SigningKey) int {
		if c := y.CreatedAt.Compare(x.CreatedAt); c != 0 {
			return c
		}
		return y.NotBefore.Compare(x.NotBefore)
	})
	k := keys[0]
	// The new generation: one key per published algorithm, made together.
	var names []string
	for _, g := range keys {
		if g.CreatedAt.Equal(k.CreatedAt) && g.NotBefore.Equal(k.NotBefore) {
			names = append(names, fmt.Sprintf("%s (%s)", g.ID, g.Algorithm))
		}
	}
	newKeys := strings.Join(names, ", ")
	reach := "at once (PostgreSQL change notification)"
	if a.store.Dialect() != storage.DialectPostgres {
		reach = fmt.Sprintf("within %s (their periodic reload)", op.KeyReloadInterval)
	}
	if *now {
		fmt.Fprintf(env.stdout, `emergency rotation: new signing keys %s sign now; every other key was withdrawn from JWKS.
Running servers switch %s.
What relying parties see: tokens signed by the withdrawn keys no longer verify — users and services
must sign in or fetch tokens again (refresh tokens still work: they are not signed); a relying party
that cached JWKS sees an unknown key id and must fetch JWKS again (most libraries do so on an unknown kid).
`, newKeys, reach)
		return nil
	}
	fmt.Fprintf(env.stdout, "rotated: new signing keys %s are published now; running servers serve them in JWKS %s;\nthey sign from %s (after a publish lead of %s), the current keys until then.\n",
		newKeys, reach, k.NotBefore.UTC().Format("2006-01-02 15:04:05 UTC"), provider.PublishLead())
	return nil
}

// --- audit ---

func cmdAudit(env *cmdEnv, args []string) error {
	sub, args, err := subcommand(env, "audit", args, "list")
	if err != nil {
		return err
	}
	if sub != "list" {
		return usageErr("audit: expected 'list'")
	}
	fs := newFlags("audit list", env)
	configPath := fs.String("config", "", "configuration file")
	email := fs.String("user", "", "only this user's events (email)")
	limit := fs.Int("limit", 100, "at most this many events, newest first")
	types := fs.String("type", "", "only these event types, comma-separated (e.g. signin.failure,refresh.reused)")
	since := fs.String("since", "", "from this time on (RFC 3339 or YYYY-MM-DD)")
	until := fs.String("until", "", "up to this time (RFC 3339 or YYYY-MM-DD)")
	asJSON := fs.Bool("json", false, "one JSON object per line (as the admin API's audit events)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *limit < 1 {
		return usageErr("audit list: --limit must be at least 1")
	}
	f, err := admin.AuditQuery("", *types, *since, *until, "", *limit)
	if err != nil {
		return usageErr("audit list: %v", err)
	}
	a, err := openApp(env, *configPath, false)
	if err != nil {
		return err
	}
	defer a.close()
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
	if *asJSON {
		enc := json.NewEncoder(env.stdout)
		for _, e := range events {
			if err := enc.Encode(admin.ViewAudit(e)); err != nil {
				return err
			}
		}
		return nil
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
			ua = cutText(ua, 57) + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.At.UTC().Format(time.RFC3339), e.Event, who, e.ClientID, e.IP,
			e.Reason, ua, strings.Join(details, " "))
	}
	return tw.Flush()
}

// cutText cuts s to at most n bytes between characters (a cut in the
// middle of one would print invalid UTF-8).
func cutText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// deliverNow is a command's outbox worker: a kick delivers what is due
// at once.
type deliverNow struct {
	ctx context.Context
	w   *outbox.Worker
	log *slog.Logger
}

func (d deliverNow) Kick() {
	if _, err := d.w.DeliverDue(d.ctx); err != nil {
		d.log.Error("deliver the outbox", "err", err)
	}
}
