package main

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/latchkey/latchkey/cmd/latchkey/internal/admin"
	"github.com/latchkey/latchkey/config"
	"github.com/latchkey/latchkey/storage"
)

// --- organisations (single sign-on, SPEC 4) ---

func cmdOrg(env *cmdEnv, args []string) error {
	sub, args, err := subcommand(env, "org", args, "create|list|delete")
	if err != nil {
		return err
	}
	fs := newFlags("org "+sub, env)
	configPath := fs.String("config", "", "configuration file")
	switch sub {
	case "create":
		name := fs.String("name", "", "organisation name (required, unique)")
		issuer := fs.String("issuer", "", "the organisation's OpenID provider (issuer URL, required)")
		clientID := fs.String("client-id", "", "our client id at that provider (required)")
		secretStdin := fs.Bool("client-secret-stdin", false, "read our client secret at that provider from standard input (required)")
		claimEmail := fs.String("claim-email", "", "upstream claim holding the email (default email)")
		claimName := fs.String("claim-name", "", "upstream claim holding the display name (default name)")
		claimGroups := fs.String("claim-groups", "", "upstream claim holding the groups (optional)")
		trustMFA := fs.Bool("trust-upstream-mfa", false, "carry the upstream's amr (mfa, otp, hwk…) into our tokens")
		noJIT := fs.Bool("no-jit", false, "do not create users on their first sign-in (operators create them)")
		var domains, scopes multiFlag
		fs.Var(&domains, "domain", "email domain the organisation owns (repeat or comma-separate; at least one)")
		fs.Var(&scopes, "scope", "scope to request upstream (repeat; default openid email profile)")
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		if *name == "" || *issuer == "" || *clientID == "" || len(domains) == 0 {
			return usageErr("org create: --name, --domain, --issuer and --client-id are required")
		}
		if !*secretStdin {
			return usageErr("org create: --client-secret-stdin is required (the secret never goes on the command line)")
		}
		secret, err := readSecret(env.stdin)
		if err != nil {
			return err
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
		jit := !*noJIT
		o, err := svc.CreateOrg(env.ctx, admin.CommandLine, config.Organization{
			Name: *name, Domains: domains, Issuer: *issuer, ClientID: *clientID, ClientSecret: secret,
			Scopes: scopes, Claims: config.Claims{Email: *claimEmail, Name: *claimName, Groups: *claimGroups},
			TrustUpstreamMFA: *trustMFA, JIT: &jit,
		})
		if err != nil {
			return adminErr(err)
		}
		fmt.Fprintf(env.stdout, "created organisation %s (domains %s, issuer %s)\n", o.Name, strings.Join(o.Domains, ","), o.Issuer)
		fmt.Fprintf(env.stdout, "register this redirect URI at the organisation's provider: %s/federation/callback\n", a.cfg.Issuer)
		fmt.Fprintf(env.stdout, "and, for signing out there too, this post-logout redirect URI: %s/logout/done\n", a.cfg.Issuer)
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
		orgs, err := a.store.ListOrganizations(env.ctx)
		if err != nil {
			return err
		}
		tw := newTable(env.stdout)
		fmt.Fprintln(tw, "NAME\tDOMAINS\tISSUER\tCLIENT ID\tJIT\tTRUST UPSTREAM MFA\tSOURCE")
		for _, o := range orgs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%v\t%s\n", o.Name, strings.Join(o.Domains, ","), o.Issuer, o.ClientID,
				o.JITProvisioning, o.TrustUpstreamMFA, o.Source)
		}
		return tw.Flush()
	case "delete":
		name := fs.String("name", "", "organisation name (required)")
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		if *name == "" {
			return usageErr("org delete: --name is required")
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
		o, err := svc.DeleteOrg(env.ctx, admin.CommandLine, *name)
		if err != nil {
			if errors.Is(err, admin.ErrNotFound) {
				return notFoundErr("no organisation %s", *name)
			}
			return adminErr(err)
		}
		fmt.Fprintf(env.stdout, "deleted organisation %s; its users keep their accounts but cannot sign in until it is created again\n", o.Name)
		if o.Source == "config" {
			fmt.Fprintln(env.stdout, "note: it comes from the configuration file and returns at the next start unless you remove it there")
		}
		return nil
	}
	return usageErr("org: unknown subcommand %q", sub)
}

// configOrgID is the id a new organisation from the config file gets: a
// pure function of its name, so that instances starting together seal
// its client secret under the same id (the sync keeps an existing
// organisation's id, and the secret is sealed with the id).
func configOrgID(name string) string {
	sum := sha256.Sum256([]byte("latchkey config organisation\x00" + name))
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:16]))
}

// syncOrganizations makes the database's config-file organisations
// exactly the file's (SPEC 4: managed declaratively, synced at start-up).
// Organisations created with the CLI are left alone, unless the file now
// declares one of the same name: the file then manages it.
func (a *app) syncOrganizations(ctx context.Context, now time.Time) error {
	existing, err := a.store.ListOrganizations(ctx)
	if err != nil {
		return fmt.Errorf("sync organisations from the config file: %w", err)
	}
	ids := make(map[string]string, len(existing))
	for _, o := range existing {
		ids[o.Name] = o.ID
	}
	orgs := make([]storage.Organization, 0, len(a.cfg.Organizations))
	for _, co := range a.cfg.Organizations {
		id, ok := ids[co.Name]
		if !ok {
			id = configOrgID(co.Name)
		}
		orgs = append(orgs, admin.OrgFromConfig(a.kr, co, id, now))
	}
	if err := a.store.SyncOrganizations(ctx, "config", orgs); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return fmt.Errorf("sync organisations from the config file: a domain is owned by an organisation created with the command line (see latchkey org list): %w", err)
		}
		return fmt.Errorf("sync organisations from the config file: %w", err)
	}
	return nil
}
