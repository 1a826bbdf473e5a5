package login

// Single sign-on (SPEC 4): home-realm discovery, the round trip to an
// organisation's identity provider (/federation/start and
// /federation/callback), linking the upstream identity to a user, and the
// upstream sign-out offer. The protocol itself is in package federation;
// the decision (StepUpstream, acr sso, amr fed) in login/flow.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/federation"
	"github.com/latchkey/latchkey/login/factor"
	"github.com/latchkey/latchkey/login/flow"
	"github.com/latchkey/latchkey/login/i18n"
	"github.com/latchkey/latchkey/login/internal/web"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
)

// Federation opens organisations' upstream connectors
// (*federation.Registry satisfies it).
type Federation interface {
	Connector(ctx context.Context, org storage.Organization) (federation.Connector, error)
}

const (
	// upstreamStateTTL bounds one round trip to the organisation's IdP.
	upstreamStateTTL = 10 * time.Minute
	// upstreamClockSkew is the leeway between our clock and the
	// upstream's when its auth_time is compared with our request.
	upstreamClockSkew = time.Minute
	// maxUpstreamAMR caps what we copy from the upstream.
	maxUpstreamAMR = 10
	// maxUpstreamCookie keeps the cookie under the browsers' 4 KB limit
	// with the others; a bigger upstream ID token is not kept (the link
	// then carries client_id only).
	maxUpstreamCookie = 3000
)

// What the user reads when single sign-on fails. The real cause goes to
// the log and the audit trail (sso.failure).
var (
	msgSSOAccessDenied  = i18n.M("sso.access_denied")
	msgSSOUpstreamError = i18n.M("sso.upstream_error")
	msgSSOUnreachable   = i18n.M("sso.unreachable")
	msgSSOInvalid       = i18n.M("sso.invalid")
	msgSSOStateBad      = i18n.M("sso.state_bad")
	msgSSOReplay        = i18n.M("sso.replay")
	msgSSOWrongDomain   = i18n.M("sso.wrong_domain")
	msgSSONoEmail       = i18n.M("sso.no_email")
	msgSSOUnverified    = i18n.M("sso.unverified")
	msgSSONoAccess      = i18n.M("sso.no_access")
	msgSSOOtherOrg      = i18n.M("sso.other_org")
	msgSSOReauth        = i18n.M("sso.reauth")
	msgSSONotConfigured = i18n.M("sso.not_configured")
	msgSSOChanged       = i18n.M("sso.changed")
)

// emailDomain is the lower-cased domain of an address ("" if none).
func emailDomain(email string) string {
	i := strings.LastIndexByte(email, '@')
	if i < 0 || i == len(email)-1 {
		return ""
	}
	return strings.TrimSuffix(strings.ToLower(email[i+1:]), ".")
}

// homeRealm is home-realm discovery, run by load after the decision: when
// the policy would ask a local user (or an email with no account) for a
// password or a code, and an organisation owns the email's domain, the
// sign-in goes to that organisation instead — the user is then treated as
// the organisation's (flow.User.OrgID), so the policy says StepUpstream.
// No user is created here: an unknown email keeps its stand-in id until
// the upstream has vouched for it (just-in-time creation at the callback).
// The lookup runs only on those steps, never on a session reuse.
func (h *Handler) homeRealm(c echo.Context, s *signin, now time.Time) error {
	var email string
	switch {
	case s.hasUser:
		if s.user.OrgID != "" || (s.req.Step != flow.StepPassword && s.req.Step != flow.StepSecondFactor) {
			return nil
		}
		email = s.user.Email
	case strings.HasPrefix(s.ar.UserID, "~") && s.req.Step == flow.StepPassword:
		email = s.ar.LoginHint
	default:
		return nil
	}
	domain := emailDomain(email)
	if domain == "" {
		return nil
	}
	org, err := h.store.GetOrganizationByDomain(c.Request().Context(), domain)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	s.org, s.realm = org, true
	s.req = flow.Decide(h.cfg.Policy, h.facts(s, now))
	return nil
}

// upstreamOrg is the organisation this sign-in goes to: the SSO user's
// own, or the one that owns the email's domain.
func (h *Handler) upstreamOrg(s *signin) (storage.Organization, error) {
	switch {
	case s.hasUser && s.user.OrgID != "":
		if s.org.ID != s.user.OrgID {
			return storage.Organization{}, fmt.Errorf("user %s: organisation %s is gone", s.user.ID, s.user.OrgID)
		}
		return s.org, nil
	case s.realm:
		return s.org, nil
	}
	return storage.Organization{}, errors.New("no organisation for this sign-in")
}

// ssoFail audits a failed SSO sign-in (sso.failure with the reason) and
// returns the page for the user; the cause goes to the log with it.
func (h *Handler) ssoFail(c echo.Context, s *signin, org storage.Organization, status int, msg i18n.Msg, reason string, cause error) error {
	e := storage.AuditEvent{Event: "sso.failure", Reason: reason, Details: map[string]string{}}
	if s != nil {
		e.ClientID = s.ar.ClientID
		e.Email = s.ar.LoginHint
		if s.hasUser {
			e.UserID, e.Email = s.user.ID, s.user.Email
		}
	}
	if org.ID != "" {
		e.Details["org"] = org.Name
	}
	h.audit(c, e)
	if cause == nil {
		cause = errors.New(reason)
	} else {
		cause = fmt.Errorf("%s: %w", reason, cause)
	}
	return &web.UserError{Status: status, Message: msg, Cause: cause}
}

// connectorFor opens org's connector, turning failures into pages.
func (h *Handler) connectorFor(c echo.Context, s *signin, org storage.Organization) (federation.Connector, error) {
	if h.fed == nil {
		return nil, h.ssoFail(c, s, org, http.StatusServiceUnavailable, msgSSONotConfigured, "federation not configured", nil)
	}
	conn, err := h.fed.Connector(c.Request().Context(), org)
	if err != nil {
		if federation.KindOf(err) == federation.KindUnreachable {
			return nil, h.ssoFail(c, s, org, http.StatusBadGateway, msgSSOUnreachable, "upstream unreachable", err)
		}
		return nil, h.ssoFail(c, s, org, http.StatusBadGateway, msgSSONotConfigured, "upstream misconfigured", err)
	}
	return conn, nil
}

// federationStart is GET /federation/start?id=…: one round trip to the
// organisation's IdP with state, nonce and PKCE S256, bound to this auth
// request and this browser. Our product's prompt=login and max_age are
// passed on, and the email as login_hint.
func (h *Handler) federationStart(c echo.Context) error {
	s, ok, err := h.step(c, flow.StepUpstream)
	if !ok {
		return err
	}
	org, err := h.upstreamOrg(s)
	if err != nil {
		return h.ssoFail(c, s, org, http.StatusServiceUnavailable, msgSSONotConfigured, "organisation missing", err)
	}
	conn, err := h.connectorFor(c, s, org)
	if err != nil {
		return err
	}
	now := h.now()
	state, nonce, verifier := keyring.NewToken(), keyring.NewToken(), federation.NewVerifier()
	id := storage.NewID()
	if _, err := h.store.CreateUpstreamState(c.Request().Context(), storage.UpstreamState{
		ID: id, StateHash: h.kr.MACString(keyring.PurposeUpstream, state), AuthRequestID: s.ar.ID,
		BrowserHash: s.ar.BrowserHash, OrgID: org.ID, Nonce: nonce,
		VerifierSealed: h.kr.Seal([]byte(verifier), verifierAD(id)),
		CreatedAt:      now, ExpiresAt: now.Add(upstreamStateTTL),
	}); err != nil {
		return err
	}
	opts := federation.AuthOptions{LoginHint: s.ar.LoginHint}
	if s.hasUser {
		opts.LoginHint = s.user.Email
	}
	if slices.Contains(s.ar.Prompt, "login") {
		opts.Prompt = "login"
	}
	if s.ar.MaxAge != nil {
		v := int(*s.ar.MaxAge)
		opts.MaxAge = &v
	}
	h.redirectAway(c, conn.AuthURL(state, nonce, verifier, opts))
	return nil
}

func verifierAD(stateID string) []byte { return []byte("upstream-verifier:" + stateID) }

// federationCallback is GET /federation/callback: the organisation's IdP
// sends the browser back with a code (or an error). The state is redeemed
// once, must belong to this browser and to a sign-in still waiting for
// this organisation; the ID token is verified; its auth_time must meet our
// product's max_age / prompt=login; its email must be in one of the
// organisation's domains. Then the identity is linked to a user (created
// just in time, or a local account of the domain converted) and recorded
// on the auth request, and the dispatcher finishes. Any failure creates
// no user.
func (h *Handler) federationCallback(c echo.Context) error {
	ctx := c.Request().Context()
	now := h.now()
	q := c.QueryParams()
	state := q.Get("state")
	if state == "" || len(state) > 512 {
		return h.ssoFail(c, nil, storage.Organization{}, http.StatusBadRequest, msgSSOStateBad, "callback without state", nil)
	}
	st, err := h.store.RedeemUpstreamState(ctx, h.kr.MACString(keyring.PurposeUpstream, state), now)
	switch {
	case errors.Is(err, storage.ErrConflict):
		return h.ssoFail(c, nil, storage.Organization{}, http.StatusBadRequest, msgSSOReplay, "replayed callback (state already used)", nil)
	case errors.Is(err, storage.ErrNotFound):
		return h.ssoFail(c, nil, storage.Organization{}, http.StatusBadRequest, msgSSOStateBad, "unknown or expired state", nil)
	case err != nil:
		return err
	}
	if !h.web.HeldBrowser(c, st.BrowserHash) {
		return h.ssoFail(c, nil, storage.Organization{}, http.StatusForbidden, web.MsgOtherBrowser, "callback in another browser", nil)
	}
	s, err := h.load(c, st.AuthRequestID, false)
	if err != nil {
		return err
	}
	// The organisation was deleted during the round trip: say so, whatever
	// the sign-in would do next (a new user's domain is local again, an
	// SSO user has no organisation).
	if _, err := h.store.GetOrganization(ctx, st.OrgID); errors.Is(err, storage.ErrNotFound) {
		return h.ssoFail(c, s, storage.Organization{}, http.StatusServiceUnavailable, msgSSONotConfigured, "organisation missing", err)
	} else if err != nil {
		return err
	}
	if s.ar.Done || s.req.Step != flow.StepUpstream {
		return h.toDispatcher(c, s.ar.ID)
	}
	org, err := h.upstreamOrg(s)
	if err != nil || org.ID != st.OrgID {
		return h.ssoFail(c, s, org, http.StatusBadRequest, msgSSOChanged, "organisation of the sign-in changed", err)
	}

	if e := q.Get("error"); e != "" {
		desc := web.Truncate(web.CleanText(q.Get("error_description")), 300)
		reason := "upstream error: " + web.Truncate(web.CleanText(e), 64)
		if desc != "" {
			reason += ": " + desc
		}
		if e == "access_denied" {
			return h.ssoFail(c, s, org, http.StatusForbidden, msgSSOAccessDenied, reason, nil)
		}
		return h.ssoFail(c, s, org, http.StatusBadGateway, msgSSOUpstreamError, reason, nil)
	}
	conn, err := h.connectorFor(c, s, org)
	if err != nil {
		return err
	}
	verifier, err := h.kr.Open(st.VerifierSealed, verifierAD(st.ID))
	if err != nil {
		return h.ssoFail(c, s, org, http.StatusBadRequest, msgSSOStateBad, "unreadable PKCE verifier", err)
	}
	ident, err := conn.Exchange(ctx, q.Get("code"), string(verifier), st.Nonce)
	if err != nil {
		switch federation.KindOf(err) {
		case federation.KindUnreachable:
			return h.ssoFail(c, s, org, http.StatusBadGateway, msgSSOUnreachable, "upstream unreachable", err)
		case federation.KindRejected:
			return h.ssoFail(c, s, org, http.StatusBadGateway, msgSSOUpstreamError, "upstream refused the code", err)
		case federation.KindConfig:
			return h.ssoFail(c, s, org, http.StatusBadGateway, msgSSONotConfigured, "upstream misconfigured", err)
		default:
			return h.ssoFail(c, s, org, http.StatusForbidden, msgSSOInvalid, "invalid id token", err)
		}
	}
	if !storage.ValidText(ident.Subject) || !storage.ValidText(ident.Email) {
		// An identity we could neither store nor look up again (NUL,
		// invalid UTF-8): not an answer we can verify.
		return h.ssoFail(c, s, org, http.StatusForbidden, msgSSOInvalid, "upstream sub or email is not valid text", nil)
	}
	if reason := checkUpstreamAuthTime(s.ar, ident, now); reason != "" {
		return h.ssoFail(c, s, org, http.StatusForbidden, msgSSOReauth, reason, nil)
	}
	if ident.Email == "" {
		return h.ssoFail(c, s, org, http.StatusForbidden, msgSSONoEmail, "no email claim ("+org.ClaimEmail+")", nil)
	}
	if _, ok := factor.NormalizeEmail(ident.Email); !ok || !slices.Contains(org.Domains, emailDomain(ident.Email)) {
		// An upstream identity is never linked to an account outside the
		// organisation's domains, whatever email it claims.
		return h.ssoFail(c, s, org, http.StatusForbidden, msgSSOWrongDomain,
			"email outside the organisation's domains: "+web.Truncate(web.CleanText(ident.Email), 254), nil)
	}
	if !ident.EmailVerified {
		return h.ssoFail(c, s, org, http.StatusForbidden, msgSSOUnverified, "upstream says email_verified=false", nil)
	}
	u, err := h.linkUpstream(c, s, org, ident, now)
	if err != nil {
		return err
	}
	if u.Disabled {
		return h.ssoFail(c, s, org, http.StatusForbidden, msgDisabled, "account disabled", nil)
	}

	authTime := ident.AuthTime
	if authTime.After(now) {
		authTime = now // within the skew: never a session from the future
	}
	amr := ident.AMR
	if len(amr) > maxUpstreamAMR {
		amr = amr[:maxUpstreamAMR]
	}
	before := s.ar.UserID
	if _, err := h.progress(c, s, func(a *storage.AuthRequest) error {
		if a.Done {
			return web.BadRequest(web.MsgSigninDone, nil)
		}
		if a.UserID != before {
			return web.BadRequest(msgSSOChanged, errors.New("auth request identified someone else meanwhile"))
		}
		a.UserID = u.ID
		a.FederatedAt, a.UpstreamAuthTime, a.UpstreamAMR = now, authTime, amr
		a.PasswordAt, a.SecondFactorAt, a.SecondFactorMethod = time.Time{}, time.Time{}, ""
		a.PasskeyAt, a.PasskeyUserVerified, a.PasskeyBackupEligible = time.Time{}, false, false
		return nil
	}); err != nil {
		return err
	}
	h.setUpstreamLogout(c, u, org, conn, ident.RawIDToken)
	return h.toDispatcher(c, s.ar.ID)
}

// checkUpstreamAuthTime checks the upstream's auth_time against our
// product's request (OIDC Core 3.1.2.1): within max_age, and after our
// request was made when it said prompt=login (or max_age=0). It returns
// the reason of a refusal, or "".
func checkUpstreamAuthTime(ar storage.AuthRequest, id federation.Identity, now time.Time) string {
	at := id.AuthTime
	if at.After(now.Add(upstreamClockSkew)) {
		return "upstream auth_time is in the future"
	}
	fresh := slices.Contains(ar.Prompt, "login")
	if ar.MaxAge != nil {
		if id.AuthTimeAbsent {
			// OIDC Core 2: auth_time is REQUIRED when max_age was sent.
			return "upstream sent no auth_time although max_age was requested"
		}
		if *ar.MaxAge <= 0 {
			fresh = true
		} else if now.Sub(at) > time.Duration(*ar.MaxAge)*time.Second+upstreamClockSkew {
			return fmt.Sprintf("upstream auth_time %s is older than max_age=%d", at.UTC().Format(time.RFC3339), *ar.MaxAge)
		}
	}
	if fresh && !id.AuthTimeAbsent && at.Before(ar.CreatedAt.Add(-upstreamClockSkew)) {
		return fmt.Sprintf("upstream did not sign the user in again (auth_time %s before the request)", at.UTC().Format(time.RFC3339))
	}
	return ""
}

// linkUpstream finds or creates the user of a verified upstream identity
// whose email is in org's domains (checked by the caller). Users are keyed
// by (organisation, upstream subject). A first sign-in links:
//   - the organisation's own user of that email (created by an operator,
//     or by an earlier upstream account of the same person);
//   - a local account of that email, converted to SSO: the organisation
//     owns the domain (its password and 2-step methods are removed, its
//     sessions, trusted devices and refresh tokens end; audited);
//   - otherwise a new user, when the organisation creates users just in
//     time.
func (h *Handler) linkUpstream(c echo.Context, s *signin, org storage.Organization, id federation.Identity, now time.Time) (storage.User, error) {
	ctx := c.Request().Context()
	fi, err := h.store.GetFederatedIdentity(ctx, org.ID, id.Subject)
	switch {
	case err == nil:
		return h.linkedUser(c, s, org, fi, id, now)
	case !errors.Is(err, storage.ErrNotFound):
		return storage.User{}, err
	}

	u, err := h.store.GetUserByEmail(ctx, id.Email)
	switch {
	case err == nil && u.OrgID == org.ID:
		// An operator's user of the organisation, or the same person
		// with a new upstream account: the organisation owns the email.
	case err == nil && u.OrgID != "":
		return storage.User{}, h.ssoFail(c, s, org, http.StatusForbidden, msgSSOOtherOrg, "email belongs to a user of another organisation", nil)
	case err == nil:
		if u, err = h.convertToSSO(c, u, org, now); err != nil {
			return storage.User{}, err
		}
	case !errors.Is(err, storage.ErrNotFound):
		return storage.User{}, err
	case !org.JITProvisioning:
		return storage.User{}, h.ssoFail(c, s, org, http.StatusForbidden, msgSSONoAccess, "no user and just-in-time creation is off", nil)
	default:
		u, err = h.store.CreateUser(ctx, storage.User{
			Email: id.Email, EmailVerified: true, Name: web.Truncate(web.CleanText(id.Name), 200), OrgID: org.ID,
			CreatedAt: now, UpdatedAt: now,
		})
		if errors.Is(err, storage.ErrConflict) {
			// A parallel first sign-in of the same person won: use theirs.
			if u, err = h.store.GetUserByEmail(ctx, id.Email); err == nil && u.OrgID != org.ID {
				return storage.User{}, h.ssoFail(c, s, org, http.StatusForbidden, msgSSOOtherOrg, "email taken meanwhile", nil)
			}
		}
		if err != nil {
			return storage.User{}, err
		}
		h.audit(c, storage.AuditEvent{UserID: u.ID, Email: u.Email, ClientID: s.ar.ClientID, Event: "user.created",
			Reason: "single sign-on (just in time)", Details: map[string]string{"org": org.Name}})
	}
	err = h.store.CreateFederatedIdentity(ctx, storage.FederatedIdentity{
		OrgID: org.ID, Subject: id.Subject, UserID: u.ID, CreatedAt: now, LastLoginAt: now,
	})
	if errors.Is(err, storage.ErrConflict) {
		// The same upstream subject was linked in a parallel callback.
		if fi, err = h.store.GetFederatedIdentity(ctx, org.ID, id.Subject); err != nil {
			return storage.User{}, err
		}
		return h.linkedUser(c, s, org, fi, id, now)
	}
	if err != nil {
		return storage.User{}, err
	}
	h.audit(c, storage.AuditEvent{UserID: u.ID, Email: u.Email, ClientID: s.ar.ClientID, Event: "sso.linked",
		Details: map[string]string{"org": org.Name, "issuer": id.Issuer}})
	return u, nil
}

// linkedUser is the user of an existing link; the upstream's name and
// email (still within the organisation's domains) are kept current.
func (h *Handler) linkedUser(c echo.Context, s *signin, org storage.Organization, fi storage.FederatedIdentity, id federation.Identity, now time.Time) (storage.User, error) {
	ctx := c.Request().Context()
	u, err := h.store.GetUser(ctx, fi.UserID)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.User{}, h.ssoFail(c, s, org, http.StatusForbidden, msgSSONoAccess, "linked user no longer exists", nil)
	}
	if err != nil {
		return storage.User{}, err
	}
	if u.OrgID != org.ID {
		return storage.User{}, h.ssoFail(c, s, org, http.StatusForbidden, msgSSOOtherOrg, "linked user belongs to another organisation", nil)
	}
	name := web.Truncate(web.CleanText(id.Name), 200)
	if (name != "" && name != u.Name) || !strings.EqualFold(id.Email, u.Email) {
		nu, err := h.store.UpdateUser(ctx, u.ID, func(x *storage.User) error {
			if name != "" {
				x.Name = name
			}
			x.Email = id.Email
			x.UpdatedAt = now
			return nil
		})
		switch {
		case err == nil:
			u = nu
		case errors.Is(err, storage.ErrConflict):
			// The new address is another account's: keep ours.
			h.log.Warn("sso: upstream email change refused (address in use)", "user", u.ID, "org", org.Name)
		default:
			return storage.User{}, err
		}
	}
	if err := h.store.TouchFederatedIdentity(ctx, org.ID, id.Subject, now); err != nil && !errors.Is(err, storage.ErrNotFound) {
		h.log.Warn("sso: touch federated identity", "err", err)
	}
	return u, nil
}

// convertToSSO makes a local account of an owned domain an SSO account:
// the organisation owns the domain (SPEC 4). Its password, authenticator,
// backup code and trusted devices are removed and its sessions and
// refresh tokens end, in one transaction with the conversion; audited.
func (h *Handler) convertToSSO(c echo.Context, u storage.User, org storage.Organization, now time.Time) (storage.User, error) {
	var converted storage.User
	_, err := h.creds.Revoke(c.Request().Context(), u.ID, storage.Revocation{Cause: storage.RevokeSSOConversion, User: func(x *storage.User) error {
		if x.OrgID != "" && x.OrgID != org.ID {
			return storage.ErrConflict
		}
		x.OrgID, x.PasswordHash, x.NeedsBackupCode, x.EmailVerified, x.UpdatedAt = org.ID, "", false, true, now
		converted = *x
		return nil
	}})
	if err != nil {
		return storage.User{}, err
	}
	h.audit(c, storage.AuditEvent{UserID: converted.ID, Email: converted.Email, Event: "user.converted_to_sso",
		Reason: "first sign-in through the organisation that owns the domain", Details: map[string]string{"org": org.Name}})
	return converted, nil
}

// --- upstream sign-out ---

// upstreamLogout is what the sign-out page offers: RP-initiated logout at
// the organisation's IdP (OpenID Connect RP-Initiated Logout 1.0 §2).
type upstreamLogout struct {
	Org string `json:"o"`
	URL string `json:"u"`
}

func upstreamLogoutAD(userID string) []byte { return []byte("upstream-logout:" + userID) }

// setUpstreamLogout keeps, in a sealed cookie bound to the user, the link
// that signs the user out of the organisation's IdP too: its
// end_session_endpoint with id_token_hint (the upstream ID token),
// client_id and our /logout/done as post_logout_redirect_uri (register it
// at the IdP). No end_session_endpoint: no offer.
func (h *Handler) setUpstreamLogout(c echo.Context, u storage.User, org storage.Organization, conn federation.Connector, rawIDToken string) {
	end := conn.EndSessionURL()
	if end == "" {
		h.web.ClearCookie(c, web.CookieUpstream)
		return
	}
	link := func(hint string) string {
		eu, err := url.Parse(end)
		if err != nil {
			return ""
		}
		q := eu.Query()
		if hint != "" {
			q.Set("id_token_hint", hint)
		}
		q.Set("client_id", org.ClientID)
		q.Set("post_logout_redirect_uri", strings.TrimSuffix(h.cfg.Issuer, "/")+"/logout/done")
		eu.RawQuery = q.Encode()
		return eu.String()
	}
	seal := func(l string) string {
		b, _ := json.Marshal(upstreamLogout{Org: org.Name, URL: l})
		return u.ID + "." + base64.RawURLEncoding.EncodeToString(h.kr.Seal(b, upstreamLogoutAD(u.ID)))
	}
	v := seal(link(rawIDToken))
	if len(v) > maxUpstreamCookie {
		v = seal(link(""))
	}
	if len(v) > maxUpstreamCookie {
		h.web.ClearCookie(c, web.CookieUpstream)
		return
	}
	h.web.SetCookie(c, web.CookieUpstream, v, 0)
}

// readUpstreamLogout opens the cookie; ok is false when absent or not
// readable.
func (h *Handler) readUpstreamLogout(c echo.Context) (userID string, l upstreamLogout, ok bool) {
	ck, err := h.web.Cookie(c, web.CookieUpstream)
	if err != nil || ck.Value == "" || len(ck.Value) > 4096 {
		return "", l, false
	}
	userID, sealed, found := strings.Cut(ck.Value, ".")
	if !found || userID == "" {
		return "", l, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil {
		return "", l, false
	}
	b, err := h.kr.Open(raw, upstreamLogoutAD(userID))
	if err != nil || json.Unmarshal(b, &l) != nil || !strings.HasPrefix(l.URL, "http") {
		return "", upstreamLogout{}, false
	}
	return userID, l, true
}
