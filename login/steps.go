package login

import (
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/login/factor"
	"github.com/latchkey/latchkey/login/flow"
	"github.com/latchkey/latchkey/login/i18n"
	"github.com/latchkey/latchkey/login/internal/creds"
	"github.com/latchkey/latchkey/login/internal/web"
	"github.com/latchkey/latchkey/storage"
)

// Generic failure messages: the same text whatever went wrong, so that
// nobody learns which accounts exist.
var (
	msgBadCredentials = i18n.M("password.wrong")
	msgBadCode        = i18n.M("code.wrong")
	msgDisabled       = i18n.M("password.disabled")
)

// step loads a sign-in for a step handler and checks it is at want; if
// not (back button, another tab moved on), the browser goes back to the
// dispatcher, which knows where it is.
func (h *Handler) step(c echo.Context, want flow.Step) (*signin, bool, error) {
	s, err := h.load(c, requestID(c), false)
	if err != nil {
		return nil, false, err
	}
	if s.ar.Done || s.req.Step != want {
		return s, false, h.toDispatcher(c, s.ar.ID)
	}
	return s, true, nil
}

// requestID is the auth request id a page or form is about: a form
// carries it in its body, a page in its query.
func requestID(c echo.Context) string {
	if c.Request().Method == http.MethodPost {
		return c.FormValue("id")
	}
	return c.QueryParam("id")
}

func (h *Handler) toDispatcher(c echo.Context, id string) error {
	return c.Redirect(http.StatusSeeOther, "/login?authRequestID="+url.QueryEscape(id))
}

// loadOpen loads the sign-in that a sign-up or a password reset
// continues, which must not be finished; a POST's CSRF token is checked
// first.
func (h *Handler) loadOpen(c echo.Context) (*signin, error) {
	if c.Request().Method == http.MethodPost {
		if err := h.web.CheckCSRF(c); err != nil {
			return nil, err
		}
	}
	s, err := h.load(c, requestID(c), false)
	if err != nil {
		return nil, err
	}
	if s.ar.Done {
		return nil, web.BadRequest(web.MsgSigninDone, nil)
	}
	return s, nil
}

// --- identifier ---

type identifyData struct {
	ID, Email, SessionEmail string
	// Client is the product's name ("" or an i18n.Msg for a built-in
	// one; clientName) and ClientLogo its logo's URL ("" for none).
	Client     any
	ClientLogo string
	Signup     bool
	// Passkey is the passwordless ceremony's options (JSON) when this
	// issuer has passkeys.
	Passkey string
}

func (h *Handler) identifyPage(c echo.Context) error {
	s, ok, err := h.step(c, flow.StepIdentify)
	if !ok {
		return err
	}
	return h.renderIdentify(c, s, http.StatusOK, i18n.Msg{}, s.ar.LoginHint)
}

func (h *Handler) renderIdentify(c echo.Context, s *signin, status int, msg i18n.Msg, email string) error {
	d := identifyData{ID: s.ar.ID, Client: h.clientName(s.client, false), Email: email, Signup: h.cfg.SignupEnabled}
	page := web.Page{Title: i18n.M("identify.title"), Error: msg, Data: &d}
	if d.Client != "" {
		d.ClientLogo = clientLogo(s.client, &page)
	}
	if s.session.ID != "" && s.session.UserID != "" {
		// prompt=select_account: offer the signed-in account first.
		if u, err := h.store.GetUser(c.Request().Context(), s.session.UserID); err == nil {
			d.SessionEmail = u.Email
		}
	}
	if err := h.offerPasskey(c, s, creds.PasskeyPasswordless, &d.Passkey, &page); err != nil {
		return err
	}
	return h.render(c, status, "identify", page)
}

// identifySubmit records who is signing in. An unknown email goes on to
// the password page all the same (no user enumeration); the password step
// then fails with the generic message.
func (h *Handler) identifySubmit(c echo.Context) error {
	if err := h.web.CheckCSRF(c); err != nil {
		return err
	}
	s, ok, err := h.step(c, flow.StepIdentify)
	if !ok {
		return err
	}
	email, valid := factor.NormalizeEmail(c.FormValue("email"))
	if !valid {
		return h.renderIdentify(c, s, http.StatusUnprocessableEntity, i18n.M("identify.invalid_email"), c.FormValue("email"))
	}
	if err := h.identify(c, s, email); err != nil {
		return err
	}
	return h.advanceSignin(c, s.ar.ID)
}

// identify records who is signing in: the user of that email, or a
// stand-in for an email with no account (no enumeration).
func (h *Handler) identify(c echo.Context, s *signin, email string) error {
	ctx := c.Request().Context()
	u, err := h.store.GetUserByEmail(ctx, email)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	_, uerr := h.store.UpdateAuthRequest(ctx, s.ar.ID, func(a *storage.AuthRequest) error {
		a.LoginHint = email
		if err == nil {
			a.UserID = u.ID
		} else {
			a.UserID = h.creds.StandIn("", email)
		}
		a.PasswordAt, a.SecondFactorAt, a.SecondFactorMethod = time.Time{}, time.Time{}, ""
		a.PasskeyAt, a.PasskeyUserVerified, a.PasskeyBackupEligible = time.Time{}, false, false
		// An upstream sign-in vouches for the user it linked, nobody else.
		a.FederatedAt, a.UpstreamAuthTime, a.UpstreamAMR = time.Time{}, time.Time{}, nil
		return nil
	})
	return uerr
}

// restart forgets who was signing in ("Use another account").
func (h *Handler) restart(c echo.Context) error {
	if err := h.web.CheckCSRF(c); err != nil {
		return err
	}
	s, err := h.load(c, c.FormValue("id"), false)
	if err != nil {
		return err
	}
	if s.ar.Done {
		return h.toDispatcher(c, s.ar.ID)
	}
	if _, err := h.store.UpdateAuthRequest(c.Request().Context(), s.ar.ID, func(a *storage.AuthRequest) error {
		a.UserID, a.PasswordAt, a.SecondFactorAt, a.SecondFactorMethod = "", time.Time{}, time.Time{}, ""
		a.PasskeyAt, a.PasskeyUserVerified, a.PasskeyBackupEligible = time.Time{}, false, false
		a.RememberChosen, a.StaySignedIn, a.BackupCodeShown = false, false, false
		a.FederatedAt, a.UpstreamAuthTime, a.UpstreamAMR = time.Time{}, time.Time{}, nil
		a.Prompt = appendOnce(a.Prompt, "select_account")
		return nil
	}); err != nil {
		return err
	}
	return h.toDispatcher(c, s.ar.ID)
}

func appendOnce(xs []string, v string) []string {
	for _, x := range xs {
		if x == v {
			return xs
		}
	}
	return append(xs, v)
}

// --- password ---

type passwordData struct {
	ID, Email string
	// Reason says why the password is asked again (idle, prompt=login).
	Reason i18n.Msg
}

func (h *Handler) passwordPage(c echo.Context) error {
	s, ok, err := h.step(c, flow.StepPassword)
	if !ok {
		return err
	}
	if status, errMsg, _, ok := h.web.TakeFlash(c); ok {
		return h.renderPassword(c, s, status, errMsg)
	}
	return h.renderPassword(c, s, http.StatusOK, i18n.Msg{})
}

// passwordBack ends a password POST that failed: back to the page's GET
// with the error (redirect after POST, web.SeeOther).
func (h *Handler) passwordBack(c echo.Context, s *signin, status int, msg i18n.Msg) error {
	return h.web.SeeOther(c, "/login/password?id="+url.QueryEscape(s.ar.ID), status, msg, i18n.Msg{},
		func() error { return h.renderPassword(c, s, status, msg) })
}

func (h *Handler) renderPassword(c echo.Context, s *signin, status int, msg i18n.Msg) error {
	email := s.ar.LoginHint
	if s.hasUser {
		email = s.user.Email
	}
	d := passwordData{ID: s.ar.ID, Email: email}
	if rs := h.reasonsFor(askPassword, s); len(rs) > 0 {
		d.Reason = rs[len(rs)-1]
	}
	return h.render(c, status, "password", web.Page{Title: i18n.M("password.title"), Error: msg, Data: d})
}

func (h *Handler) passwordSubmit(c echo.Context) error {
	if err := h.web.CheckCSRF(c); err != nil {
		return err
	}
	s, ok, err := h.step(c, flow.StepPassword)
	if !ok {
		return err
	}
	ctx := c.Request().Context()
	email := s.ar.LoginHint
	if s.hasUser {
		email = s.user.Email
	}
	// Throttle by the typed account (known or not: no enumeration) and by
	// the client address — or, for a browser that has signed in as this
	// user before, by this browser alone: failures from elsewhere never
	// delay it.
	browser, err := h.creds.Known(ctx, s.ar.UserID, h.web.DeviceCookieMAC(c))
	if err != nil {
		return err
	}
	try, wait, err := h.creds.Try(ctx, h.creds.PasswordLimits(email, web.ClientIP(c), browser)...)
	if err != nil {
		return err
	} else if wait > 0 {
		h.metrics.SignIn("throttled", "", "")
		return h.passwordBack(c, s, http.StatusTooManyRequests, web.TooMany(wait))
	}
	var u *storage.User
	if s.hasUser {
		u = &s.user
	}
	if !h.creds.CheckPassword(ctx, u, c.FormValue("password")) {
		locked := try.Locks()
		h.metrics.SignIn("wrong_password", "", "")
		if s.hasUser {
			h.audit(c, storage.AuditEvent{UserID: s.user.ID, Email: s.user.Email, ClientID: s.ar.ClientID, Event: "signin.failure", Reason: "wrong password"})
			if locked {
				// The start of a lockout (the throttle's waits begin), once.
				h.audit(c, storage.AuditEvent{UserID: s.user.ID, Email: s.user.Email, ClientID: s.ar.ClientID, Event: "signin.locked",
					Reason: "too many wrong passwords: further attempts wait"})
			}
		}
		return h.passwordBack(c, s, http.StatusUnauthorized, msgBadCredentials)
	}
	try.Succeeded(ctx)
	if s.user.Disabled {
		h.metrics.SignIn("disabled", "", "")
		h.audit(c, storage.AuditEvent{UserID: s.user.ID, Email: s.user.Email, ClientID: s.ar.ClientID, Event: "signin.failure", Reason: "account disabled"})
		return h.passwordBack(c, s, http.StatusForbidden, msgDisabled)
	}
	now := h.now()
	if _, err := h.progress(c, s, func(a *storage.AuthRequest) error {
		a.UserID = s.user.ID
		a.PasswordAt = now
		return nil
	}); err != nil {
		return err
	}
	return h.advanceSignin(c, s.ar.ID)
}
