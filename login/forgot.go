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
	"github.com/latchkey/latchkey/storage/keyring"
)

// "Forgot password?" (SPEC 3b), from the password page of a sign-in in
// progress (/forgot?id=<auth request>):
//
//  1. the email address — always the same answer ("if an account exists,
//     we sent a code"), for an unknown address too;
//  2. the email code (purpose "reset");
//  3. for a user with an authenticator app: its code, or the backup code —
//     access to the mailbox alone never takes over such an account;
//  4. a new password. Every session, trusted device and refresh token of
//     the user is revoked, the notification mail is sent, and the sign-in
//     continues from the password step with the new password.
//
// The state of a reset lives on the server: each stage is a single-use
// action token (purpose reset-code → reset-second → reset-password) whose
// HMAC is stored; the browser holds the token in a sealed cookie. Moving
// on redeems the current token (one winner) and issues the next, so a
// stage cannot be replayed, skipped or finished in another browser.

const (
	resetLifetime = 30 * time.Minute

	stageResetCode     = "reset-code"
	stageResetSecond   = "reset-second"
	stageResetPassword = "reset-password"
)

var resetStages = []string{stageResetCode, stageResetSecond, stageResetPassword}

// resetCookie is the content of lk_reset.
type resetCookie struct {
	Token  string    `json:"t"`
	Email  string    `json:"m"`
	AR     string    `json:"a"`
	SentAt time.Time `json:"s"`
}

// resetFlow is a reset in progress: the cookie and its live stage token.
type resetFlow struct {
	ck    resetCookie
	tok   storage.ActionToken
	stage string
}

type forgotData struct {
	ID, Email, Method string
	TTL               time.Duration
}

// readReset finds this browser's reset for the auth request and its stage.
func (h *Handler) readReset(c echo.Context, arID string) (*resetFlow, error) {
	var ck resetCookie
	if err := h.web.OpenSealed(c, web.CookieReset, &ck); err != nil || ck.AR != arID || ck.Token == "" {
		return nil, nil
	}
	hash := h.kr.MACString(keyring.PurposeAction, ck.Token)
	now := h.now()
	for _, st := range resetStages {
		tok, err := h.store.GetActionToken(c.Request().Context(), hash, st, now)
		if err == nil {
			return &resetFlow{ck: ck, tok: tok, stage: st}, nil
		}
		if !errors.Is(err, storage.ErrNotFound) {
			return nil, err
		}
	}
	return nil, nil
}

// forgotPage is GET /forgot?id=…: the page of the current stage, or the
// email form (without id: an entry point, entry.go).
func (h *Handler) forgotPage(c echo.Context) error {
	if requestID(c) == "" {
		return h.enter(c, entryForgot) // opened directly: an entry point
	}
	s, err := h.loadOpen(c)
	if err != nil {
		return err
	}
	if c.QueryParam("restart") != "" {
		h.web.ClearCookie(c, web.CookieReset)
	} else if rf, err := h.readReset(c, s.ar.ID); err != nil {
		return err
	} else if rf != nil {
		if status, errMsg, notice, ok := h.web.TakeFlash(c); ok {
			return h.renderReset(c, rf, status, errMsg, notice) // back from a POST
		}
		return h.renderReset(c, rf, http.StatusOK, i18n.Msg{}, i18n.Msg{})
	}
	email, _ := factor.NormalizeEmail(s.ar.LoginHint)
	return h.render(c, http.StatusOK, "forgot", web.Page{Title: msgForgotTitle, Data: forgotData{ID: s.ar.ID, Email: email}})
}

var msgForgotTitle = i18n.M("forgot.title")

// renderReset renders the page of a stage.
func (h *Handler) renderReset(c echo.Context, rf *resetFlow, status int, errMsg, notice i18n.Msg) error {
	d := forgotData{ID: rf.ck.AR, Email: rf.ck.Email, TTL: h.creds.EmailCodeTTL()}
	switch rf.stage {
	case stageResetSecond:
		d.Method = string(flow.MethodTOTP)
		if c.FormValue("method") == string(flow.MethodBackup) || c.QueryParam("method") == string(flow.MethodBackup) {
			d.Method = string(flow.MethodBackup)
		}
		return h.render(c, status, "forgot_second", web.Page{Title: i18n.M("code.title"), Error: errMsg, Notice: notice, Data: d})
	case stageResetPassword:
		return h.render(c, status, "forgot_password", web.Page{Title: i18n.M("forgot.password.title"), Error: errMsg, Notice: notice, Data: d})
	}
	return h.render(c, status, "forgot_code", web.Page{Title: msgForgotTitle, Error: errMsg, Notice: notice, Data: d})
}

// resetBack ends a POST of a reset stage's page: back to its GET (the
// page of the current stage) saying errMsg or notice (redirect after
// POST, web.SeeOther).
func (h *Handler) resetBack(c echo.Context, rf *resetFlow, status int, errMsg, notice i18n.Msg) error {
	target := "/forgot?id=" + url.QueryEscape(rf.ck.AR)
	if rf.stage == stageResetSecond && c.FormValue("method") == string(flow.MethodBackup) {
		target += "&method=" + string(flow.MethodBackup)
	}
	return h.web.SeeOther(c, target, status, errMsg, notice, func() error { return h.renderReset(c, rf, status, errMsg, notice) })
}

// forgotSubmit is POST /forgot: the email address. The answer is the same
// for every address.
func (h *Handler) forgotSubmit(c echo.Context) error {
	s, err := h.loadOpen(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	now := h.now()
	email, ok := factor.NormalizeEmail(c.FormValue("email"))
	if !ok {
		return h.render(c, http.StatusUnprocessableEntity, "forgot", web.Page{Title: msgForgotTitle,
			Error: i18n.M("identify.invalid_email"), Data: forgotData{ID: s.ar.ID, Email: web.Truncate(c.FormValue("email"), 254)}})
	}
	_, wait, err := h.creds.Try(ctx, creds.ForgotLimits(web.ClientIP(c))...)
	if err != nil {
		return err
	} else if wait > 0 {
		return h.render(c, http.StatusTooManyRequests, "forgot", web.Page{Title: msgForgotTitle,
			Error: web.TooMany(wait), Data: forgotData{ID: s.ar.ID, Email: email}})
	}
	u, err := h.store.GetUserByEmail(ctx, email)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	// SSO users have no password here; disabled users cannot sign in.
	eligible := err == nil && !u.Disabled && u.OrgID == ""
	tok := keyring.NewToken()
	at := storage.ActionToken{TokenHash: h.kr.MACString(keyring.PurposeAction, tok), Purpose: stageResetCode,
		CreatedAt: now, ExpiresAt: now.Add(resetLifetime)}
	if eligible {
		at.UserID = u.ID
	}
	if at, err = h.store.CreateActionToken(ctx, at); err != nil {
		return err
	}
	// Both sides write the same rows (a code, a mail in the outbox — for
	// an address without an eligible account one that never leaves) and
	// an audit event, so neither the answer nor its timing says which.
	// A refusal (resend gap, budget) is not shown — an address's budget
	// may have been spent by its owner — and the page says that only so
	// many codes go out an hour.
	if err := h.sendResetCode(c, rf0(at, email), u, eligible); err != nil {
		return err
	}
	ev := storage.AuditEvent{Email: email, ClientID: s.ar.ClientID, Event: "password.reset_requested", Reason: "no such account"}
	if eligible {
		ev = storage.AuditEvent{UserID: u.ID, Email: u.Email, ClientID: s.ar.ClientID, Event: "password.reset_started"}
	}
	h.audit(c, ev)
	if err := h.web.SetSealed(c, web.CookieReset, resetCookie{Token: tok, Email: email, AR: s.ar.ID, SentAt: now}, resetLifetime); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/forgot?id="+s.ar.ID)
}

// resetStep loads the reset of a stage form; a form of another stage (back
// button, another tab) goes back to the current page.
func (h *Handler) resetStep(c echo.Context, want string) (*signin, *resetFlow, bool, error) {
	s, err := h.loadOpen(c)
	if err != nil {
		return nil, nil, false, err
	}
	rf, err := h.readReset(c, s.ar.ID)
	if err != nil {
		return nil, nil, false, err
	}
	if rf == nil || rf.stage != want {
		return s, rf, false, c.Redirect(http.StatusSeeOther, "/forgot?id="+s.ar.ID)
	}
	return s, rf, true, nil
}

// advance redeems the current stage token and issues the next stage's.
func (h *Handler) advance(c echo.Context, rf *resetFlow, next string) error {
	ctx := c.Request().Context()
	now := h.now()
	if _, err := h.store.RedeemActionToken(ctx, h.kr.MACString(keyring.PurposeAction, rf.ck.Token), rf.stage, now); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return web.BadRequest(i18n.M("forgot.moved_on"), err)
		}
		return err
	}
	tok := keyring.NewToken()
	if _, err := h.store.CreateActionToken(ctx, storage.ActionToken{TokenHash: h.kr.MACString(keyring.PurposeAction, tok),
		UserID: rf.tok.UserID, Purpose: next, CreatedAt: now, ExpiresAt: now.Add(resetLifetime)}); err != nil {
		return err
	}
	ck := rf.ck
	ck.Token = tok
	return h.web.SetSealed(c, web.CookieReset, ck, resetLifetime)
}

// rf0 is the reset a new action token starts.
func rf0(at storage.ActionToken, email string) *resetFlow {
	return &resetFlow{ck: resetCookie{Email: email}, tok: at, stage: stageResetCode}
}

// sendResetCode queues the reset code of rf: to the user when eligible,
// otherwise the same rows for the address's stand-in, which no mail
// carries.
func (h *Handler) sendResetCode(c echo.Context, rf *resetFlow, u storage.User, eligible bool) error {
	var msg i18n.Msg
	var err error
	if eligible {
		msg, err = h.creds.SendCode(c.Request().Context(), creds.RecipientOf(u), creds.PurposeReset, rf.tok.ID, "", h.boundFrom(c))
	} else {
		msg, err = h.creds.SendStandInCode(c.Request().Context(), creds.Recipient{ID: h.creds.StandIn("rs", rf.ck.Email)},
			creds.PurposeReset, rf.tok.ID, h.boundFrom(c))
	}
	if !msg.IsZero() {
		h.log.Info("reset code not queued", "reason", msg.ID)
	}
	return err
}

// resetSubject is the throttle key of a reset: the user, or a stand-in
// for an unknown address.
func (h *Handler) resetSubject(rf *resetFlow) string {
	if rf.tok.UserID != "" {
		return rf.tok.UserID
	}
	return h.creds.StandIn("rs", rf.ck.Email)
}

// forgotCodeSubmit is POST /forgot/code.
func (h *Handler) forgotCodeSubmit(c echo.Context) error {
	s, rf, ok, err := h.resetStep(c, stageResetCode)
	if !ok {
		return err
	}
	ctx := c.Request().Context()
	try, wait, err := h.creds.Try(ctx, creds.CodeLimits(h.resetSubject(rf), web.ClientIP(c))...)
	if err != nil {
		return err
	} else if wait > 0 {
		return h.resetBack(c, rf, http.StatusTooManyRequests, web.TooMany(wait), i18n.Msg{})
	}
	valid := false
	if rf.tok.UserID != "" {
		if valid, err = h.creds.VerifyEmailCode(ctx, rf.tok.UserID, creds.PurposeReset, rf.tok.ID, c.FormValue("code"), h.web.BrowserHash(c)); err != nil {
			return err
		}
	}
	if !valid {
		if rf.tok.UserID != "" {
			h.audit(c, storage.AuditEvent{UserID: rf.tok.UserID, ClientID: s.ar.ClientID, Event: "password.reset_failure", Reason: "email code"})
		}
		return h.resetBack(c, rf, http.StatusUnauthorized, msgBadCode, i18n.Msg{})
	}
	try.Succeeded(ctx)
	active, err := h.creds.ActiveTOTP(c.Request().Context(), rf.tok.UserID)
	if err != nil {
		return err
	}
	next := stageResetPassword
	if active.ID != "" {
		next = stageResetSecond
	}
	if err := h.advance(c, rf, next); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/forgot?id="+s.ar.ID)
}

// forgotCodeSend is POST /forgot/code/send: the same answer whether or not
// a code was really sent.
func (h *Handler) forgotCodeSend(c echo.Context) error {
	_, rf, ok, err := h.resetStep(c, stageResetCode)
	if !ok {
		return err
	}
	now := h.now()
	if gap := now.Sub(rf.ck.SentAt); gap < creds.ResendGap && gap >= 0 {
		return h.resetBack(c, rf, http.StatusTooManyRequests, creds.MsgJustSent(creds.ResendGap-gap), i18n.Msg{})
	}
	var u storage.User
	eligible := false
	if rf.tok.UserID != "" {
		var err error
		u, err = h.store.GetUser(c.Request().Context(), rf.tok.UserID)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		eligible = err == nil
	}
	if err := h.sendResetCode(c, rf, u, eligible); err != nil {
		return err
	}
	rf.ck.SentAt = now
	if err := h.web.SetSealed(c, web.CookieReset, rf.ck, resetLifetime); err != nil {
		return err
	}
	return h.resetBack(c, rf, http.StatusOK, i18n.Msg{}, i18n.M("forgot.sent_new"))
}

// forgotSecondSubmit is POST /forgot/second: the authenticator code or the
// backup code of a user with an authenticator app.
func (h *Handler) forgotSecondSubmit(c echo.Context) error {
	s, rf, ok, err := h.resetStep(c, stageResetSecond)
	if !ok {
		return err
	}
	ctx := c.Request().Context()
	userID := rf.tok.UserID
	try, wait, err := h.creds.Try(ctx, creds.CodeLimits(userID, web.ClientIP(c))...)
	if err != nil {
		return err
	} else if wait > 0 {
		return h.resetBack(c, rf, http.StatusTooManyRequests, web.TooMany(wait), i18n.Msg{})
	}
	method := flow.MethodTOTP
	if c.FormValue("method") == string(flow.MethodBackup) {
		method = flow.MethodBackup
	}
	var valid bool
	if method == flow.MethodBackup {
		// The code is spent; nobody sees its replacement here: the next
		// sign-in makes and shows a new one (written with the swap).
		valid, err = h.creds.UseBackupCode(ctx, userID, c.FormValue("code"), "")
		if err == nil && valid {
			h.audit(c, storage.AuditEvent{UserID: userID, ClientID: s.ar.ClientID, Event: "backupcode.used", Reason: "password reset"})
		}
	} else {
		valid, err = h.creds.VerifyTOTP(ctx, userID, c.FormValue("code"))
	}
	if err != nil {
		return err
	}
	if !valid {
		h.audit(c, storage.AuditEvent{UserID: userID, ClientID: s.ar.ClientID, Event: "password.reset_failure", Reason: string(method)})
		return h.resetBack(c, rf, http.StatusUnauthorized, msgBadCode, i18n.Msg{})
	}
	try.Succeeded(ctx)
	if err := h.advance(c, rf, stageResetPassword); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/forgot?id="+s.ar.ID)
}

type forgotDoneData struct {
	ID     string
	Mailed bool
}

// forgotPasswordSubmit is POST /forgot/password: the new password. The
// reset ends here: everything the user was signed in to is revoked.
func (h *Handler) forgotPasswordSubmit(c echo.Context) error {
	s, rf, ok, err := h.resetStep(c, stageResetPassword)
	if !ok {
		return err
	}
	ctx := c.Request().Context()
	now := h.now()
	u, err := h.store.GetUser(ctx, rf.tok.UserID)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			h.web.ClearCookie(c, web.CookieReset)
			return web.BadRequest(i18n.M("forgot.expired"), err)
		}
		return err
	}
	password := c.FormValue("new_password")
	if msg := web.NewPasswordMessage(factor.CheckNewPassword(password, u.Email)); !msg.IsZero() {
		return h.resetBack(c, rf, http.StatusUnprocessableEntity, msg, i18n.Msg{})
	}
	if _, err := h.store.RedeemActionToken(ctx, h.kr.MACString(keyring.PurposeAction, rf.ck.Token), stageResetPassword, now); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return web.BadRequest(i18n.M("forgot.used"), err)
		}
		return err
	}
	h.web.ClearCookie(c, web.CookieReset)
	set, err := h.creds.NewPassword(password, true)
	if err != nil {
		return err
	}
	if _, err := h.creds.RevokeAndNotify(ctx, u, storage.Revocation{Cause: storage.RevokePasswordReset, User: set}, i18n.M("notice.password_reset"), h.web.From(c)); err != nil {
		return err
	}
	h.web.ClearCookie(c, web.CookieSession)
	h.audit(c, storage.AuditEvent{UserID: u.ID, Email: u.Email, ClientID: s.ar.ClientID, Event: "password.reset"})
	mailed := true
	// Continue the sign-in from the password step, as this user.
	if _, err := h.progress(c, s, func(a *storage.AuthRequest) error {
		if a.Done {
			return nil
		}
		a.UserID, a.LoginHint = u.ID, u.Email
		a.PasswordAt, a.SecondFactorAt, a.SecondFactorMethod = time.Time{}, time.Time{}, ""
		a.PasskeyAt, a.PasskeyUserVerified, a.PasskeyBackupEligible = time.Time{}, false, false
		a.RememberChosen, a.StaySignedIn, a.BackupCodeShown, a.BackupCodeSealed = false, false, false, nil
		return nil
	}); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	return h.render(c, http.StatusOK, "forgot_done", web.Page{Title: i18n.M("forgot.done.title"), Data: forgotDoneData{ID: s.ar.ID, Mailed: mailed}})
}
