package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/latchkey/latchkey/login/flow"
	"github.com/latchkey/latchkey/storage"
)

// cmdPolicy is "latchkey policy explain": what a sign-in of this user
// would require now (or at --at), and why — computed by the same pure
// function the sign-in pages use, for a browser that has no session and
// no trust (the common support question: "why was I asked for a code?").
func cmdPolicy(env *cmdEnv, args []string) error {
	sub, args, err := subcommand(env, "policy", args, "explain")
	if err != nil {
		return err
	}
	if sub != "explain" {
		return usageErr("policy: expected 'explain'")
	}
	fs := newFlags("policy explain", env)
	configPath := fs.String("config", "", "configuration file")
	email := fs.String("email", "", "the user (required)")
	clientID := fs.String("client", "", "the product signing in (its default acr applies)")
	acr := fs.String("acr", "", "acr_values the product sends (space-separated)")
	at := fs.String("at", "", "when (RFC 3339 or YYYY-MM-DD; default now)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *email == "" {
		return usageErr("policy explain: --email is required")
	}
	now := time.Now().UTC()
	if *at != "" {
		t, err := parseWhen(*at)
		if err != nil {
			return usageErr("policy explain: --at: %v", err)
		}
		now = t
	}
	a, err := openApp(env, *configPath, false)
	if err != nil {
		return err
	}
	defer a.close()
	ctx := env.ctx
	u, err := a.userByEmail(ctx, *email)
	if err != nil {
		return err
	}
	totps, err := a.store.ListTOTP(ctx, u.ID)
	if err != nil {
		return err
	}
	hasTOTP := false
	for _, t := range totps {
		hasTOTP = hasTOTP || t.Status == storage.TOTPActive
	}
	pks, err := a.store.ListPasskeys(ctx, u.ID)
	if err != nil {
		return err
	}
	var org storage.Organization
	if u.OrgID != "" {
		if org, err = a.store.GetOrganization(ctx, u.OrgID); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
	}
	req := flow.Request{ACRValues: strings.Fields(*acr)}
	clientLine := "any product without a default acr"
	if *clientID != "" {
		c, err := a.store.GetClient(ctx, *clientID)
		if errors.Is(err, storage.ErrNotFound) {
			return notFoundErr("no client %s", *clientID)
		} else if err != nil {
			return err
		}
		req.ClientDefaultACR = c.DefaultACR
		clientLine = c.ID
		if c.DefaultACR != "" {
			clientLine += " (default acr " + c.DefaultACR + ")"
		}
	}
	p := policyFromConfig(a)
	fu := flow.User{ID: u.ID, Region: u.Region, HasPassword: u.PasswordHash != "", HasTOTP: hasTOTP,
		NeedsBackupCode: u.NeedsBackupCode, Disabled: u.Disabled, OrgID: u.OrgID, TrustUpstreamMFA: org.TrustUpstreamMFA,
		HasPasskey: len(pks) > 0}

	w := env.stdout
	region := u.Region
	if region == "" {
		region = "(default)"
	}
	method := "email code"
	if hasTOTP {
		method = "authenticator app"
	}
	if len(pks) > 0 {
		method = "passkey, then " + method
	}
	fmt.Fprintf(w, "user:     %s (region %s, method %s)\n", u.Email, region, method)
	fmt.Fprintf(w, "product:  %s\n", clientLine)
	fmt.Fprintf(w, "at:       %s\n", now.Format(time.RFC3339))
	if u.OrgID == "" {
		rollout := p.RolloutDate(u.Region)
		state := "reached: the email code is mandatory"
		if now.Before(rollout) {
			state = "not reached: without an authenticator app the password alone is enough"
		}
		fmt.Fprintf(w, "rollout:  %s for this region (%s)\n", rollout.Format("2006-01-02"), state)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "A sign-in from a new browser (no session, not trusted):")

	// Walk the steps the way the dispatcher would, answering each one.
	pr := flow.Progress{UserID: u.ID}
	for i := 0; i < 8; i++ {
		r := flow.Decide(p, flow.Facts{Now: now, Request: req, Progress: pr, User: fu})
		why := ""
		if len(r.Reasons) > 0 {
			parts := make([]string, len(r.Reasons))
			for i, x := range r.Reasons {
				parts[i] = fmt.Sprintf("%s [%s]", x.Text(p), x)
			}
			why = " — because " + strings.Join(parts, "; ")
		}
		switch r.Step {
		case flow.StepPassword:
			fmt.Fprintf(w, "  %d. password%s\n", i+1, why)
			pr.PasswordAt = now
		case flow.StepUpstream:
			fmt.Fprintf(w, "  %d. sign in at the organisation's identity provider%s\n", i+1, why)
			pr.FederatedAt, pr.UpstreamAuthTime = now, now
		case flow.StepSecondFactor:
			fmt.Fprintf(w, "  %d. second step: %s%s\n", i+1, map[flow.Method]string{flow.MethodEmail: "email code", flow.MethodTOTP: "authenticator code", flow.MethodPasskey: "passkey"}[r.Method], why)
			pr.SecondFactorAt, pr.SecondFactorMethod = now, r.Method
		case flow.StepRemember:
			fmt.Fprintf(w, "  %d. offer \"Trust this device\" / \"Stay signed in\"\n", i+1)
			pr.RememberChosen = true
		case flow.StepShowBackupCode:
			fmt.Fprintf(w, "  %d. show a backup code once%s\n", i+1, why)
			pr.BackupCodeShown = true
		case flow.StepDone:
			fmt.Fprintf(w, "  → signed in: acr=%s amr=%v\n", r.ACR, r.AMR)
			return nil
		case flow.StepFail:
			fmt.Fprintf(w, "  → refused: %s%s\n", r.Error, why)
			return nil
		default:
			fmt.Fprintf(w, "  %d. %s%s\n", i+1, r.Step, why)
			return nil
		}
	}
	return nil
}

func parseWhen(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return time.Time{}, errors.New("want RFC 3339 (2025-04-09T12:00:00Z) or a date (2025-04-09)")
	}
	return t.UTC(), nil
}
