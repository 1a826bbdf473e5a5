package login

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/login/flow"
	"github.com/latchkey/latchkey/login/i18n"
	"github.com/latchkey/latchkey/login/internal/creds"
	"github.com/latchkey/latchkey/login/internal/web"
	"github.com/latchkey/latchkey/login/mail"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
)

// The second step (SPEC 1.3–1.6): email code, authenticator app or backup
// code; then "Trust this device" / "Stay signed in", and a new backup
// code shown once. What is checked, and the budgets that guard it, are in
// login/internal/creds; this file parses and renders.

type codeData struct {
	ID, Email, MaskedEmail, Method string
	// Reasons say why a second step is asked (SPEC 1.5); TTL how long an
	// email code is valid.
	Reasons []i18n.Msg
	TTL     time.Duration
	HasTOTP bool
	// HasPasskey: "Use a passkey" is offered; Passkey is its ceremony's
	// options (JSON) on the passkey page; PasskeyOnly: the product asked
	// for a passkey, nothing else is offered.
	HasPasskey, PasskeyOnly bool
	Passkey                 string
	// Delivery is how the mail of the live email code is doing
	// (creds.Delivery…): the page says "we sent" only when one is on its
	// way or arrived, and says so when it could not be delivered.
	Delivery string
}

// codePage is the second step. With the email method, the first visit of a
// sign-in sends the code; later visits do not (use "Get code by email").
func (h *Handler) codePage(c echo.Context) error {
	s, ok, err := h.step(c, flow.StepSecondFactor)
	if !ok {
		return err
	}
	method := h.pickMethod(s, c.QueryParam("method"))
	if status, errMsg, notice, ok := h.web.TakeFlash(c); ok {
		// Back from a POST (redirect after POST): what it said.
		return h.renderCode(c, s, method, status, errMsg, notice)
	}
	var errMsg i18n.Msg
	if method == flow.MethodEmail {
		sent, err := h.creds.HasCode(c.Request().Context(), s.user.ID, creds.PurposeSignin, s.ar.ID)
		if err != nil {
			return err
		}
		if !sent {
			if errMsg, err = h.sendSigninCode(c, s); err != nil {
				return err
			}
		}
	}
	return h.renderCode(c, s, method, http.StatusOK, errMsg, i18n.Msg{})
}

func (h *Handler) pickMethod(s *signin, asked string) flow.Method {
	if s.req.PasskeyRequired {
		return flow.MethodPasskey
	}
	switch flow.Method(asked) {
	case flow.MethodPasskey:
		if s.hasPasskey {
			return flow.MethodPasskey
		}
	case flow.MethodBackup:
		return flow.MethodBackup
	case flow.MethodTOTP:
		if s.hasTOTP {
			return flow.MethodTOTP
		}
	case flow.MethodEmail:
		return flow.MethodEmail
	}
	return s.req.Method
}

func (h *Handler) renderCode(c echo.Context, s *signin, m flow.Method, status int, errMsg, notice i18n.Msg) error {
	kind := askCode
	if m == flow.MethodPasskey {
		kind = askPasskey
	}
	d := codeData{
		ID: s.ar.ID, Email: s.user.Email, MaskedEmail: maskEmail(s.user.Email), Method: string(m),
		Reasons: h.reasonsFor(kind, s), TTL: h.creds.EmailCodeTTL(), HasTOTP: s.hasTOTP,
		HasPasskey: s.hasPasskey, PasskeyOnly: s.req.PasskeyRequired,
	}
	page := web.Page{Title: i18n.M("code.title"), Error: errMsg, Notice: notice, Data: &d}
	switch m {
	case flow.MethodPasskey:
		if err := h.offerPasskey(c, s, creds.PasskeySecondStep, &d.Passkey, &page); err != nil {
			return err
		}
	case flow.MethodEmail:
		var err error
		if d.Delivery, err = h.creds.CodeDelivery(c.Request().Context(), s.user.ID, creds.PurposeSignin, s.ar.ID); err != nil {
			return err
		}
	}
	return h.render(c, status, "code", page)
}

// codeBack ends a POST of the code page: back to its GET with the
// method in use, saying errMsg or notice (redirect after POST,
// web.SeeOther).
func (h *Handler) codeBack(c echo.Context, s *signin, m flow.Method, status int, errMsg, notice i18n.Msg) error {
	return h.web.SeeOther(c, "/login/code?id="+url.QueryEscape(s.ar.ID)+"&method="+url.QueryEscape(string(m)), status, errMsg, notice,
		func() error { return h.renderCode(c, s, m, status, errMsg, notice) })
}

// codeSend is "Get code by email": always available, also when the
// authenticator app is the primary method (the lost-phone fallback).
func (h *Handler) codeSend(c echo.Context) error {
	if err := h.web.CheckCSRF(c); err != nil {
		return err
	}
	s, ok, err := h.step(c, flow.StepSecondFactor)
	if !ok {
		return err
	}
	if s.req.PasskeyRequired {
		return h.toDispatcher(c, s.ar.ID) // a code cannot meet this sign-in
	}
	msg, err := h.sendSigninCode(c, s)
	if err != nil {
		return err
	}
	if !msg.IsZero() {
		return h.codeBack(c, s, flow.MethodEmail, http.StatusTooManyRequests, msg, i18n.Msg{})
	}
	return h.codeBack(c, s, flow.MethodEmail, http.StatusOK, i18n.Msg{}, i18n.M("code.sending_new"))
}

// sendSigninCode mails the code of a sign-in, bound to this browser. A
// reconfirmation of the account pages (prompt=login for mfa:fresh) is
// worded as one.
func (h *Handler) sendSigninCode(c echo.Context, s *signin) (i18n.Msg, error) {
	wording := creds.PurposeSignin
	if h.reconfirming(s) {
		wording = creds.PurposeReconfirm
	}
	return h.sendCode(c, creds.RecipientOf(s.user), creds.PurposeSignin, s.ar.ID, wording)
}

// codeSubmit verifies the second step.
func (h *Handler) codeSubmit(c echo.Context) error {
	if err := h.web.CheckCSRF(c); err != nil {
		return err
	}
	s, ok, err := h.step(c, flow.StepSecondFactor)
	if !ok {
		return err
	}
	ctx := c.Request().Context()
	method := h.pickMethod(s, c.FormValue("method"))
	if method == flow.MethodPasskey {
		// A passkey answers at /login/passkey; no code is checked here.
		return c.Redirect(http.StatusSeeOther, "/login/code?id="+url.QueryEscape(s.ar.ID)+"&method=passkey")
	}
	try, wait, err := h.creds.Try(ctx, creds.CodeLimits(s.user.ID, web.ClientIP(c))...)
	if err != nil {
		return err
	} else if wait > 0 {
		h.metrics.SignIn("throttled", string(method), "")
		return h.codeBack(c, s, method, http.StatusTooManyRequests, web.TooMany(wait), i18n.Msg{})
	}
	input := c.FormValue("code")
	var valid bool
	switch method {
	case flow.MethodEmail:
		valid, err = h.creds.VerifyEmailCode(ctx, s.user.ID, creds.PurposeSignin, s.ar.ID, input, h.web.BrowserHash(c))
	case flow.MethodTOTP:
		valid, err = h.creds.VerifyTOTP(ctx, s.user.ID, input)
	case flow.MethodBackup:
		// The new code is written with its display copy on this sign-in.
		valid, err = h.creds.UseBackupCode(ctx, s.user.ID, input, s.ar.ID)
	}
	if err != nil {
		return err
	}
	if !valid {
		if try.Locks() {
			h.audit(c, storage.AuditEvent{UserID: s.user.ID, Email: s.user.Email, ClientID: s.ar.ClientID, Event: "signin.locked",
				Reason: "too many wrong codes: further attempts wait"})
		}
		h.metrics.SignIn("wrong_code", string(method), "")
		h.audit(c, storage.AuditEvent{UserID: s.user.ID, Email: s.user.Email, ClientID: s.ar.ClientID,
			Event: "secondfactor.failure", Reason: string(method)})
		return h.codeBack(c, s, method, http.StatusUnauthorized, msgBadCode, i18n.Msg{})
	}
	try.Succeeded(ctx)
	// The browser has now completed a second step: later sign-ins say
	// "not trusted" rather than "new".
	h.deviceCookie(c)
	now := h.now()
	if _, err := h.progress(c, s, func(a *storage.AuthRequest) error {
		a.SecondFactorAt = now
		a.SecondFactorMethod = string(method)
		return nil
	}); err != nil {
		return err
	}
	if method == flow.MethodEmail && !s.user.EmailVerified {
		if _, err := h.store.UpdateUser(ctx, s.user.ID, func(u *storage.User) error { u.EmailVerified = true; return nil }); err != nil {
			return err
		}
	}
	h.audit(c, storage.AuditEvent{UserID: s.user.ID, Email: s.user.Email, ClientID: s.ar.ClientID,
		Event: "secondfactor.success", Reason: string(method) + reasonsSuffix(s.req.Reasons)})
	if method == flow.MethodBackup {
		h.audit(c, storage.AuditEvent{UserID: s.user.ID, Email: s.user.Email, Event: "backupcode.used"})
		// Its owner hears of it: the code is spent and a new one was made.
		h.creds.NotifySignIn(ctx, s.user, mail.SignInBackupCode, h.web.From(c))
	}
	return h.advanceSignin(c, s.ar.ID)
}

// --- remember this browser ---

type rememberData struct {
	ID                string
	Trust             bool
	TrustFor, StayFor time.Duration
}

func (h *Handler) rememberPage(c echo.Context) error {
	s, ok, err := h.step(c, flow.StepRemember)
	if !ok {
		return err
	}
	d := rememberData{ID: s.ar.ID, Trust: s.req.TrustOffered,
		TrustFor: h.cfg.Policy.TrustedDevice, StayFor: h.cfg.Policy.StaySignedIn}
	title := i18n.M("remember.trust.title")
	if !d.Trust {
		title = i18n.M("remember.stay.title")
	}
	return h.render(c, http.StatusOK, "remember", web.Page{Title: title, Data: d})
}

func (h *Handler) rememberSubmit(c echo.Context) error {
	if err := h.web.CheckCSRF(c); err != nil {
		return err
	}
	s, ok, err := h.step(c, flow.StepRemember)
	if !ok {
		return err
	}
	ctx := c.Request().Context()
	now := h.now()
	choice := c.FormValue("choice")
	stay := false
	switch {
	case choice == "trust" && s.req.TrustOffered:
		tok := h.web.CookieValue(c, web.CookieDevice)
		if len(tok) < 32 {
			tok = keyring.NewToken()
		}
		// Trust runs from the verification, not from this click, and does
		// not slide (SPEC 2).
		verified := s.ar.SecondFactorAt
		if _, err := h.store.CreateTrustedDevice(ctx, storage.TrustedDevice{
			UserID: s.user.ID, TokenHash: h.kr.MACString(keyring.PurposeDevice, tok),
			CreatedAt: verified, ExpiresAt: verified.Add(h.cfg.Policy.TrustedDevice),
			LastSecondFactorAt: verified, LastUsedAt: now, UserAgent: web.UserAgent(c), IP: web.ClientIP(c),
		}); err != nil {
			return err
		}
		h.web.SetCookie(c, web.CookieDevice, tok, web.LongLived)
		h.audit(c, storage.AuditEvent{UserID: s.user.ID, Email: s.user.Email, Event: "device.trusted"})
	case choice == "stay" && s.req.StaySignedInOffered:
		stay = true
	case choice == "no":
	default:
		return web.BadRequest(i18n.M("error.choose_option"), errors.New("bad remember choice"))
	}
	if _, err := h.progress(c, s, func(a *storage.AuthRequest) error {
		a.RememberChosen = true
		a.StaySignedIn = stay
		return nil
	}); err != nil {
		return err
	}
	return h.advanceSignin(c, s.ar.ID)
}

// --- backup code display ---

// backupCodePage shows a new backup code once: the replacement of a used
// one, or the first one after the account was created. The code's sealed
// display copy waits on the auth request (written with the code itself)
// until the user confirms, so a reload shows the same code.
func (h *Handler) backupCodePage(c echo.Context) error {
	s, ok, err := h.step(c, flow.StepShowBackupCode)
	if !ok {
		return err
	}
	if s.ar.BackupCodeSealed == nil {
		// The first backup code: make it now, with its display copy here.
		ctx := c.Request().Context()
		if err := h.creds.FirstBackupCode(ctx, s.user.ID, s.ar.ID); err != nil {
			return err
		}
		h.audit(c, storage.AuditEvent{UserID: s.user.ID, Email: s.user.Email, Event: "backupcode.generated", Reason: "first sign-in"})
		if s.ar, err = h.store.GetAuthRequest(ctx, s.ar.ID); err != nil {
			return err
		}
	}
	canon, err := h.creds.OpenShownBackupCode(s.user.ID, s.ar.BackupCodeSealed)
	if err != nil {
		return err
	}
	return h.renderBackupCode(c, s, canon, http.StatusOK, i18n.Msg{})
}

func (h *Handler) renderBackupCode(c echo.Context, s *signin, canon string, status int, errMsg i18n.Msg) error {
	return h.render(c, status, "backupcode", web.Page{Title: i18n.M("backup.title"), Error: errMsg,
		Data: h.web.BackupCode(s.ar.ID, canon, "/login/backup-code", s.ar.SecondFactorMethod == string(flow.MethodBackup))})
}

func (h *Handler) backupCodeSubmit(c echo.Context) error {
	if err := h.web.CheckCSRF(c); err != nil {
		return err
	}
	s, ok, err := h.step(c, flow.StepShowBackupCode)
	if !ok {
		return err
	}
	if c.FormValue("saved") != "yes" {
		canon, err := h.creds.OpenShownBackupCode(s.user.ID, s.ar.BackupCodeSealed)
		if err != nil {
			return h.toDispatcher(c, s.ar.ID)
		}
		return h.renderBackupCode(c, s, canon, http.StatusUnprocessableEntity, i18n.M("backup.tick_saved"))
	}
	ctx := c.Request().Context()
	if _, err := h.progress(c, s, func(a *storage.AuthRequest) error {
		a.BackupCodeShown = true
		a.BackupCodeSealed = nil
		return nil
	}); err != nil {
		return err
	}
	if s.user.NeedsBackupCode {
		if _, err := h.store.UpdateUser(ctx, s.user.ID, func(u *storage.User) error { u.NeedsBackupCode = false; return nil }); err != nil {
			return err
		}
	}
	return h.advanceSignin(c, s.ar.ID)
}

// maskEmail shows enough of an address to recognise it.
func maskEmail(e string) string {
	at := strings.LastIndexByte(e, '@')
	if at <= 0 {
		return e
	}
	// Cut by characters, not bytes: an address may have a non-ASCII
	// local part (RFC 6532).
	local := []rune(e[:at])
	if len(local) <= 2 {
		return string(local[:1]) + "…" + e[at:]
	}
	return string(local[:2]) + "…" + e[at:]
}
