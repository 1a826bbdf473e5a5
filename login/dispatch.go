package login

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/login/factor"
	"github.com/latchkey/latchkey/login/flow"
	"github.com/latchkey/latchkey/login/i18n"
	"github.com/latchkey/latchkey/login/internal/creds"
	"github.com/latchkey/latchkey/login/internal/web"
	"github.com/latchkey/latchkey/login/mail"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
)

// signin is everything the dispatcher and the steps know about one
// sign-in attempt, loaded from storage.
type signin struct {
	ar      storage.AuthRequest
	client  storage.Client
	user    storage.User // zero until identified
	hasUser bool
	hasTOTP bool
	session storage.Session // this browser's session (any user); zero if none
	device  storage.TrustedDevice
	org     storage.Organization // the user's organisation (SSO users)
	seen    bool                 // the browser carries a device cookie
	req     flow.Requirement

	// realm: org owns the email's domain though the user is not (yet) an
	// SSO user: home-realm discovery sends the sign-in there (federated.go).
	realm bool

	// hasPasskey: the user can sign in with a passkey (passkey.go).
	hasPasskey bool
}

// dispatch is GET /login?authRequestID=…: it decides the next step and
// redirects there, or finishes the sign-in.
func (h *Handler) dispatch(c echo.Context) error {
	id := c.QueryParam("authRequestID")
	if id == "" {
		id = c.QueryParam("id")
	}
	return h.dispatchID(c, id)
}

// advanceSignin continues a sign-in after a step succeeded, with the
// dispatcher's own decision taken in this request: the browser goes
// straight to the next step (or back to the product) instead of making
// an extra round trip through /login. The step still does not choose what
// comes next.
func (h *Handler) advanceSignin(c echo.Context, id string) error { return h.dispatchID(c, id) }

func (h *Handler) dispatchID(c echo.Context, id string) error {
	s, err := h.load(c, id, true)
	if err != nil {
		return err
	}
	if s.ar.Done && isDeviceRequest(s.ar) {
		return c.Redirect(http.StatusSeeOther, deviceConfirmURL(s.ar.ID))
	}
	if s.ar.Done {
		// Finished already (back button, double submit): the code was
		// issued once and will not be issued again.
		return web.BadRequest(web.MsgSigninDone, nil)
	}
	if to := h.entered(c, s); to != "" {
		return c.Redirect(http.StatusSeeOther, to)
	}
	// login_hint names the account: skip the identifier page (OIDC Core
	// 3.1.2.1), unless the product asked to pick an account.
	if s.req.Step == flow.StepIdentify && s.ar.UserID == "" && !slices.Contains(s.ar.Prompt, "select_account") {
		if email, ok := factor.NormalizeEmail(s.ar.LoginHint); ok {
			if err := h.identify(c, s, email); err != nil {
				return err
			}
			if s, err = h.load(c, s.ar.ID, false); err != nil {
				return err
			}
		}
	}
	return h.next(c, s)
}

// next acts on a decision: redirect to a step, fail to the client, or finish.
func (h *Handler) next(c echo.Context, s *signin) error {
	q := "?id=" + url.QueryEscape(s.ar.ID)
	switch s.req.Step {
	case flow.StepIdentify:
		return c.Redirect(http.StatusSeeOther, "/login/identify"+q)
	case flow.StepPassword:
		return c.Redirect(http.StatusSeeOther, "/login/password"+q)
	case flow.StepSecondFactor:
		return c.Redirect(http.StatusSeeOther, "/login/code"+q)
	case flow.StepRemember:
		return c.Redirect(http.StatusSeeOther, "/login/remember"+q)
	case flow.StepShowBackupCode:
		return c.Redirect(http.StatusSeeOther, "/login/backup-code"+q)
	case flow.StepUpstream:
		return c.Redirect(http.StatusSeeOther, "/federation/start"+q)
	case flow.StepFail:
		h.audit(c, storage.AuditEvent{UserID: s.req.UserID, ClientID: s.ar.ClientID, Event: "signin.failure",
			Reason: s.req.Error + reasonsSuffix(s.req.Reasons)})
		if isDeviceRequest(s.ar) {
			return web.Forbidden(i18n.M("device.cannot_complete", "Reason", failReason(s.req.Error)), errors.New(s.req.Error))
		}
		h.op.RespondError(c.Response(), c.Request(), s.ar, s.req.Error, failDescription(s.req.Error))
		return nil
	case flow.StepDone:
		if asked, err := h.consentStep(c, s); asked || err != nil {
			return err
		}
		return h.finish(c, s)
	}
	return errors.New("login: unknown step " + string(s.req.Step))
}

// failReason is failDescription for the user, in their language.
func failReason(code string) i18n.Msg {
	switch code {
	case flow.ErrLoginRequired:
		return i18n.M("device.must_sign_in")
	case flow.ErrInteractionRequired:
		return i18n.M("device.must_confirm")
	}
	return i18n.M("device.cannot_meet")
}

// failDescription is the error_description of a sign-in that cannot meet
// the request (for the product's developers, in English).
func failDescription(code string) string {
	switch code {
	case flow.ErrLoginRequired:
		return "the user must sign in"
	case flow.ErrInteractionRequired:
		return "the user must confirm their sign-in"
	}
	return "the sign-in cannot meet the request"
}

func reasonsSuffix(rs []flow.Reason) string {
	if len(rs) == 0 {
		return ""
	}
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = string(r)
	}
	return ": " + strings.Join(parts, ",")
}

// load reads the auth request and everything the policy needs, checks the
// browser binding, and computes the decision. bind: bind an unbound
// request to this browser (the dispatcher's first visit).
func (h *Handler) load(c echo.Context, id string, bind bool) (*signin, error) {
	ctx := c.Request().Context()
	if id == "" || len(id) > 64 {
		return nil, web.BadRequest(web.MsgRequestGone, errors.New("missing or oversized auth request id"))
	}
	now := h.now()
	ar, err := h.store.GetAuthRequest(ctx, id)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil, web.BadRequest(web.MsgRequestGone, err)
		}
		return nil, err
	}
	if now.After(ar.ExpiresAt) {
		return nil, web.BadRequest(web.MsgRequestGone, errors.New("auth request expired"))
	}
	bh := h.web.BrowserHash(c)
	switch {
	case len(ar.BrowserHash) == 0 && bind:
		bh = h.web.BoundBrowserHash(c)
		if ar, err = h.store.UpdateAuthRequest(ctx, id, func(a *storage.AuthRequest) error {
			if len(a.BrowserHash) == 0 {
				a.BrowserHash = bh
			}
			return nil
		}); err != nil {
			return nil, err
		}
		if !web.Equal(ar.BrowserHash, bh) {
			return nil, web.Forbidden(web.MsgOtherBrowser, errors.New("auth request bound by a concurrent browser"))
		}
	case len(ar.BrowserHash) > 0 && web.Equal(ar.BrowserHash, bh):
	case len(ar.BrowserHash) > 0 && bh != nil && h.web.HeldBrowser(c, ar.BrowserHash):
		// Bound to a handle this browser held before a rotation (a sign-in
		// in another tab moved on): it moves to the current handle.
		prev := ar.BrowserHash
		if ar, err = h.store.UpdateAuthRequest(ctx, id, func(a *storage.AuthRequest) error {
			if !web.Equal(a.BrowserHash, prev) {
				return web.Forbidden(web.MsgOtherBrowser, errors.New("auth request rebound meanwhile"))
			}
			a.BrowserHash = bh
			return nil
		}); err != nil {
			return nil, err
		}
	default:
		return nil, web.Forbidden(web.MsgOtherBrowser, errors.New("auth request bound to another browser"))
	}
	s := &signin{ar: ar}
	h.web.SetUILocales(c, ar.UILocales)
	if s.client, err = h.store.GetClient(ctx, ar.ClientID); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil, web.BadRequest(web.MsgRequestGone, err)
		}
		return nil, err
	}
	if s.session, err = h.currentSession(c); err != nil {
		return nil, err
	}
	userID := ar.UserID
	if userID == "" && h.sessionUsable(s.session, now) {
		userID = s.session.UserID
	}
	if userID != "" && !creds.IsStandIn(userID) {
		if err := h.loadUser(c, s, userID); err != nil {
			return nil, err
		}
	}
	if s.hasUser && h.proven(s, now) {
		h.web.SetAccountLanguage(c, s.user.Language)
	}
	s.req = flow.Decide(h.cfg.Policy, h.facts(s, now))
	if err := h.homeRealm(c, s, now); err != nil {
		return nil, err
	}
	return s, nil
}

// progress records a step's result on the sign-in and, in the same update,
// moves the sign-in to a new handle of this browser (web.MoveBrowser):
// whoever else holds the handle it was bound to (a handle planted in this
// browser by an attacker who kept a copy) can no longer continue it, and
// in particular cannot finish what this browser's user proved. The update
// refuses if the sign-in was rebound meanwhile (compare and set), unless
// it already is where this step moves it: the same browser's double submit
// of the same step, which won the race (its result stands; fn is not
// applied twice).
func (h *Handler) progress(c echo.Context, s *signin, fn func(*storage.AuthRequest) error) (storage.AuthRequest, error) {
	bound := s.ar.BrowserHash
	_, next := h.web.MoveBrowser(c, s.ar.ID+"\x00"+string(s.req.Step))
	return h.store.UpdateAuthRequest(c.Request().Context(), s.ar.ID, func(a *storage.AuthRequest) error {
		switch {
		case web.Equal(a.BrowserHash, next) && !web.Equal(bound, next):
			if a.Done && !isDeviceRequest(*a) {
				// The twin finished the sign-in: its code was issued
				// once and is not issued again (nor audited twice).
				return web.BadRequest(web.MsgSigninDone, nil)
			}
			return nil
		case !web.Equal(a.BrowserHash, bound):
			return web.Forbidden(web.MsgOtherBrowser, errors.New("auth request rebound meanwhile"))
		}
		if err := fn(a); err != nil {
			return err
		}
		a.BrowserHash = next
		return nil
	})
}

// keep is progress without a new handle: the update still refuses if the
// sign-in was rebound meanwhile.
func (h *Handler) keep(c echo.Context, s *signin, fn func(*storage.AuthRequest) error) (storage.AuthRequest, error) {
	bound := s.ar.BrowserHash
	return h.store.UpdateAuthRequest(c.Request().Context(), s.ar.ID, func(a *storage.AuthRequest) error {
		if !web.Equal(a.BrowserHash, bound) {
			return web.Forbidden(web.MsgOtherBrowser, errors.New("auth request rebound meanwhile"))
		}
		return fn(a)
	})
}

// proven: the person in this browser has shown they are s.user (a
// verified step of this sign-in, or this browser's session), so the pages
// may speak the account's language. Before that, the language must not
// change with the email typed: it would tell who has an account.
func (h *Handler) proven(s *signin, now time.Time) bool {
	ar := s.ar
	if ar.UserID != s.user.ID {
		return s.session.UserID == s.user.ID && h.sessionUsable(s.session, now)
	}
	return !ar.PasswordAt.IsZero() || !ar.PasskeyAt.IsZero() || !ar.FederatedAt.IsZero() ||
		(s.session.UserID == s.user.ID && h.sessionUsable(s.session, now))
}

// sessionUsable is a cheap pre-check used only to pick whose facts to load;
// the policy makes the real decision.
func (h *Handler) sessionUsable(s storage.Session, now time.Time) bool {
	return s.ID != "" && !s.LastSeenAt.After(now)
}

func (h *Handler) loadUser(c echo.Context, s *signin, userID string) error {
	ctx := c.Request().Context()
	u, err := h.store.GetUser(ctx, userID)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil // deleted meanwhile: the policy fails closed
		}
		return err
	}
	s.user, s.hasUser = u, true
	totp, err := h.creds.ActiveTOTP(ctx, u.ID)
	if err != nil {
		return err
	}
	s.hasTOTP = totp.ID != ""
	if s.hasPasskey, err = h.creds.HasPasskey(ctx, u.ID); err != nil {
		return err
	}
	if mac := h.web.DeviceCookieMAC(c); mac != nil {
		s.seen = true
		d, err := h.store.GetTrustedDevice(ctx, u.ID, mac)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		s.device = d
	}
	if u.OrgID != "" {
		o, err := h.store.GetOrganization(ctx, u.OrgID)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		s.org = o
	}
	return nil
}

// facts turns the loaded records into the policy's input.
func (h *Handler) facts(s *signin, now time.Time) flow.Facts {
	ar := s.ar
	f := flow.Facts{
		Now: now,
		Request: flow.Request{
			Prompt:             ar.Prompt,
			ACRValues:          ar.ACRValues,
			ClientDefaultACR:   s.client.DefaultACR,
			IDTokenHintSubject: ar.IDTokenHintSubject,
		},
		Progress: flow.Progress{
			UserID:             ar.UserID,
			PasswordAt:         ar.PasswordAt,
			SecondFactorAt:     ar.SecondFactorAt,
			SecondFactorMethod: flow.Method(ar.SecondFactorMethod),
			FederatedAt:        ar.FederatedAt,
			UpstreamAuthTime:   ar.UpstreamAuthTime,
			UpstreamAMR:        ar.UpstreamAMR,
			RememberChosen:     ar.RememberChosen,
			BackupCodeShown:    ar.BackupCodeShown,
			Passkey: flow.Passkey{At: ar.PasskeyAt, UserVerified: ar.PasskeyUserVerified,
				BackupEligible: ar.PasskeyBackupEligible},
		},
	}
	if ar.MaxAge != nil {
		d := time.Duration(*ar.MaxAge) * time.Second
		f.Request.MaxAge = &d
	}
	if s.hasUser {
		f.User = flow.User{
			ID: s.user.ID, Region: s.user.Region, HasPassword: s.user.PasswordHash != "", HasTOTP: s.hasTOTP,
			HasPasskey:      s.hasPasskey,
			NeedsBackupCode: s.user.NeedsBackupCode, Disabled: s.user.Disabled, OrgID: s.user.OrgID,
			TrustUpstreamMFA: s.org.TrustUpstreamMFA,
		}
	}
	if !s.hasUser && creds.IsStandIn(ar.UserID) {
		// An email with no account: ask for a password like for anyone
		// (the password step then fails with the generic message).
		f.User = flow.User{ID: ar.UserID, HasPassword: true}
	}
	if s.realm {
		// Home-realm discovery: the organisation that owns the email's
		// domain signs this user in (SPEC 1.1, 4).
		f.User.OrgID, f.User.TrustUpstreamMFA, f.User.HasPassword = s.org.ID, s.org.TrustUpstreamMFA, false
	}
	if s.session.ID != "" {
		f.Session = flow.Session{
			ID: s.session.ID, UserID: s.session.UserID, CreatedAt: s.session.CreatedAt, LastSeenAt: s.session.LastSeenAt,
			AuthTime: s.session.AuthTime, SecondFactorAt: s.session.SecondFactorAt, AMR: s.session.AMR,
			StaySignedIn: s.session.StaySignedIn, Federated: s.session.Federated,
		}
	}
	f.Device.Seen = s.seen
	if s.device.ID != "" {
		f.Device = flow.Device{Seen: s.seen, UserID: s.device.UserID, CreatedAt: s.device.CreatedAt, ExpiresAt: s.device.ExpiresAt,
			LastSecondFactorAt: s.device.LastSecondFactorAt}
	}
	return f
}

// finish completes a sign-in the policy says is done: it starts or
// refreshes the browser session, marks the auth request done with the
// achieved acr/amr/auth_time, and hands it to the OP.
func (h *Handler) finish(c echo.Context, s *signin) error {
	ctx := c.Request().Context()
	now := h.now()
	r := s.req
	sess := s.session
	var err error
	switch {
	case r.NewSession:
		// A fresh sign-in replaces whatever session this browser had.
		if sess.ID != "" {
			if err := h.store.DeleteSession(ctx, sess.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return err
			}
		}
		tok := keyring.NewToken()
		sess, err = h.store.CreateSession(ctx, storage.Session{
			UserID: s.user.ID, TokenHash: h.kr.MACString(keyring.PurposeSession, tok),
			CreatedAt: now, LastSeenAt: now, AuthTime: r.AuthTime, SecondFactorAt: r.SecondFactorAt,
			AMR: r.AMR, Federated: s.user.OrgID != "", StaySignedIn: s.ar.StaySignedIn,
			UserAgent: web.UserAgent(c), IP: web.ClientIP(c),
		})
		if err != nil {
			return err
		}
		h.creds.SessionReplaced(ctx, s.session, sess)
		h.web.SetSessionCookie(c, tok, sess.StaySignedIn)
	default:
		sess, err = h.store.UpdateSession(ctx, sess.ID, func(x *storage.Session) error {
			x.LastSeenAt = now
			if !s.ar.SecondFactorAt.IsZero() {
				x.SecondFactorAt = s.ar.SecondFactorAt // a step-up refreshes the session's factor
			}
			if s.ar.StaySignedIn {
				x.StaySignedIn = true
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if s.device.ID != "" && (r.DeviceTrusted || !s.ar.SecondFactorAt.IsZero()) {
		if _, err := h.store.UpdateTrustedDevice(ctx, s.device.ID, func(d *storage.TrustedDevice) error {
			d.LastUsedAt = now
			if !s.ar.SecondFactorAt.IsZero() {
				d.LastSecondFactorAt = s.ar.SecondFactorAt
			}
			return nil
		}); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
	}
	// This browser has now signed in as the user: failures from elsewhere
	// will not delay it (creds.Known). A browser new to the account is
	// told to its owner (not on the first sign-in of an account made in
	// this very sign-in: its sign-up).
	newBrowser, err := h.creds.RememberBrowser(ctx, s.user.ID, h.deviceCookie(c))
	if err != nil {
		return err
	}
	if newBrowser && h.cfg.NewSignInMail && s.user.CreatedAt.Before(s.ar.CreatedAt) {
		h.creds.NotifySignIn(ctx, s.user, mail.SignInNewBrowser, h.web.From(c))
	}
	// Completing a sign-in that verified something (a new session, a
	// password, a second step, an upstream sign-in) is a privilege change:
	// the browser gets a new handle and the request follows it (progress).
	// A silent sign-in, answered by the session this browser already has,
	// changes nothing and keeps the handle (and the forms open in other
	// tabs); it still must come from the browser the request is bound to.
	record := h.progress
	if !r.NewSession && s.ar.PasswordAt.IsZero() && s.ar.SecondFactorAt.IsZero() && s.ar.FederatedAt.IsZero() {
		record = h.keep
	}
	ar, err := record(c, s, func(a *storage.AuthRequest) error {
		if a.Done {
			return web.BadRequest(web.MsgSigninDone, nil)
		}
		a.Done = true
		a.UserID = s.user.ID
		a.AMR = r.AMR
		a.ACR = r.ACR
		a.AuthTime = r.AuthTime
		a.SessionID = sess.ID
		// From here on SecondFactorAt is the factor behind the grant (the
		// refresh grant re-verifies against it), fresh or not.
		a.SecondFactorAt = r.SecondFactorAt
		return nil
	})
	if err != nil {
		return err
	}
	h.audit(c, storage.AuditEvent{UserID: s.user.ID, Email: s.user.Email, ClientID: ar.ClientID, Event: "signin.success",
		Reason: r.ACR + reasonsSuffix(r.Reasons), Details: map[string]string{"amr": strings.Join(r.AMR, " "), "sid": sess.ID}})
	h.metrics.SignIn("success", secondStepLabel(ar, r), r.ACR)
	if isDeviceRequest(ar) {
		return c.Redirect(http.StatusSeeOther, deviceConfirmURL(ar.ID))
	}
	h.op.Respond(c.Response(), c.Request(), ar)
	return nil
}

// secondStepLabel names the second step behind a finished sign-in, for
// metrics.
func secondStepLabel(ar storage.AuthRequest, r flow.Requirement) string {
	switch {
	case !ar.FederatedAt.IsZero():
		return "sso"
	case ar.SecondFactorMethod != "":
		return ar.SecondFactorMethod
	case r.DeviceTrusted:
		return "trusted_device"
	case !r.SecondFactorAt.IsZero():
		return "session" // a factor presented earlier in this browser session
	}
	return "none"
}

// deviceCookie is the digest of this browser's device cookie, made now if
// the browser has none. The cookie alone trusts nothing: trust is a
// trusted-device row ("Trust this device"), being known a known-browser
// row.
func (h *Handler) deviceCookie(c echo.Context) []byte {
	if len(h.web.CookieValue(c, web.CookieDevice)) < 32 {
		tok := keyring.NewToken()
		h.web.SetCookie(c, web.CookieDevice, tok, web.LongLived)
		return h.kr.MACString(keyring.PurposeDevice, tok)
	}
	return h.web.DeviceCookieMAC(c)
}
