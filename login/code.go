package login

import (
	"context"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/login/factor"
	"github.com/latchkey/latchkey/login/flow"
	"github.com/latchkey/latchkey/login/mail"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
)

// Email-code rules (SPEC 1.3): 5 wrong tries kill a code; resends within
// one sign-in at least 30 s apart; at most 5 codes per 15 minutes per
// account across sign-ins.
const (
	maxCodeAttempts  = 5
	resendGap        = 30 * time.Second
	sendBudget       = 5
	sendBudgetWindow = 15 * time.Minute
	mailTimeout      = 5 * time.Second
)

// Code purposes (storage.EmailCode.Purpose).
const (
	purposeSignin    = "signin"
	purposeReconfirm = "reconfirm"
	purposeSignup    = "signup"
	purposeReset     = "reset"
)

type codeData struct {
	ID, Email, MaskedEmail, Method, Reasons, TTL, RetryAt string
	HasTOTP                                               bool
}

// codePage is the second step. With the email method, the first visit of a
// sign-in sends the code; later visits do not (use "Get code by email").
func (h *Handler) codePage(c echo.Context) error {
	s, ok, err := h.step(c, flow.StepSecondFactor)
	if !ok {
		return err
	}
	method := h.pickMethod(s, c.QueryParam("method"))
	notice, errMsg := "", ""
	if method == flow.MethodEmail {
		_, err := h.store.LatestEmailCode(c.Request().Context(), s.user.ID, purposeSignin, s.ar.ID)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			if msg, err := h.sendSigninCode(c, s); err != nil {
				return err
			} else if msg != "" {
				errMsg = msg
			}
		case err != nil:
			return err
		}
	}
	return h.renderCode(c, s, method, http.StatusOK, errMsg, notice)
}

func (h *Handler) pickMethod(s *signin, asked string) flow.Method {
	switch flow.Method(asked) {
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

func (h *Handler) renderCode(c echo.Context, s *signin, m flow.Method, status int, errMsg, notice string) error {
	d := codeData{
		ID: s.ar.ID, Email: s.user.Email, MaskedEmail: maskEmail(s.user.Email), Method: string(m),
		Reasons: h.reasonText(s.req.Reasons), TTL: flow.HumanDuration(h.cfg.EmailCodeTTL), HasTOTP: s.hasTOTP,
	}
	title := "Confirm it's you"
	return h.render(c, status, "code", page{Title: title, Error: errMsg, Notice: notice, Data: d})
}

// codeSend is "Get code by email": always available, also when the
// authenticator app is the primary method (the lost-phone fallback).
func (h *Handler) codeSend(c echo.Context) error {
	if err := h.checkCSRF(c); err != nil {
		return err
	}
	s, ok, err := h.step(c, flow.StepSecondFactor)
	if !ok {
		return err
	}
	msg, err := h.sendSigninCode(c, s)
	if err != nil {
		return err
	}
	if msg != "" {
		return h.renderCode(c, s, flow.MethodEmail, http.StatusTooManyRequests, msg, "")
	}
	return h.renderCode(c, s, flow.MethodEmail, http.StatusOK, "", "We sent you a new code.")
}

// sendSigninCode mails the code of a sign-in. A reconfirmation of the
// account pages (prompt=login for mfa:fresh) is worded as one.
func (h *Handler) sendSigninCode(c echo.Context, s *signin) (string, error) {
	wording := purposeSignin
	if s.ar.ClientID == AccountClientID && slices.Contains(s.ar.ACRValues, flow.ACRMFAFresh) {
		wording = purposeReconfirm
	}
	return h.sendCodeWorded(c, s.user, purposeSignin, s.ar.ID, wording)
}

// sendCode mails a new code for (user, purpose, contextID), bound to this
// browser, after the resend and budget checks. It returns a message for
// the user when it did not send.
func (h *Handler) sendCode(c echo.Context, u storage.User, purpose, contextID string) (string, error) {
	return h.sendCodeWorded(c, u, purpose, contextID, purpose)
}

func (h *Handler) sendCodeWorded(c echo.Context, u storage.User, purpose, contextID, wording string) (string, error) {
	ctx := c.Request().Context()
	now := h.now()
	last, err := h.store.LatestEmailCode(ctx, u.ID, purpose, contextID)
	if err == nil && now.Sub(last.CreatedAt) < resendGap {
		return msgJustSent(resendGap - now.Sub(last.CreatedAt)), nil
	} else if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return "", err
	}
	n, err := h.store.CountEmailCodesSince(ctx, u.ID, now.Add(-sendBudgetWindow))
	if err != nil {
		return "", err
	}
	if n >= sendBudget {
		return "Too many codes were sent to this address. Try again in a few minutes.", nil
	}
	code := factor.NewEmailCode()
	ec, err := h.store.CreateEmailCode(ctx, storage.EmailCode{
		UserID: u.ID, Purpose: purpose, ContextID: contextID,
		BrowserHash: h.kr.MACString(keyring.PurposeBrowser, h.browserHandle(c)),
		CodeHash:    h.kr.MACString(keyring.PurposeEmailCode, code),
		CreatedAt:   now, ExpiresAt: now.Add(h.cfg.EmailCodeTTL),
	})
	if err != nil {
		return "", err
	}
	msg, err := mail.CodeMail{
		Site: h.site, To: u.Email, Name: u.Name, Code: code, ValidFor: h.cfg.EmailCodeTTL,
		RequestedAt: now, Browser: describeBrowser(userAgent(c)), IP: clientIP(c), Purpose: wording,
	}.Message()
	if err != nil {
		return "", err
	}
	sctx, cancel := context.WithTimeout(ctx, mailTimeout)
	defer cancel()
	// A sign-up has no user yet: its stand-in id ("~…") stays out of the audit trail.
	auditUser := u.ID
	if strings.HasPrefix(auditUser, "~") {
		auditUser = ""
	}
	if err := h.mailer.Send(sctx, msg); err != nil {
		h.log.Error("send code mail", "err", err, "user", u.ID)
		h.audit(c, storage.AuditEvent{UserID: auditUser, Email: u.Email, Event: "code.send_failed", Reason: purpose})
		// The code cannot arrive: kill it so it cannot be guessed either.
		_, _ = h.store.UpdateEmailCode(ctx, ec.ID, func(x *storage.EmailCode) error { x.DeadAt = now; return nil })
		return "We could not send the email just now. Try again in a moment.", nil
	}
	h.audit(c, storage.AuditEvent{UserID: auditUser, Email: u.Email, Event: "code.sent", Reason: purpose})
	return "", nil
}

// verifyEmailCode checks a code for (user, purpose, contextID) from this
// browser, counting the attempt. The newest code is the only live one.
func (h *Handler) verifyEmailCode(c echo.Context, userID, purpose, contextID, input string) (bool, error) {
	ctx := c.Request().Context()
	code, ok := factor.NormalizeEmailCode(input)
	if !ok {
		return false, nil
	}
	ec, err := h.store.LatestEmailCode(ctx, userID, purpose, contextID)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return false, nil
		}
		return false, err
	}
	now := h.now()
	digest := h.kr.MACString(keyring.PurposeEmailCode, code)
	browser := h.browserHash(c)
	valid := false
	_, err = h.store.UpdateEmailCode(ctx, ec.ID, func(x *storage.EmailCode) error {
		valid = false
		if !x.DeadAt.IsZero() || now.After(x.ExpiresAt) || x.Attempts >= maxCodeAttempts {
			return nil
		}
		// A code cannot finish a sign-in started in another browser.
		if factor.Equal(x.CodeHash, digest) && factor.Equal(x.BrowserHash, browser) {
			x.DeadAt = now
			valid = true
			return nil
		}
		x.Attempts++
		if x.Attempts >= maxCodeAttempts {
			x.DeadAt = now
		}
		return nil
	})
	return valid, err
}

// verifyTOTP checks an authenticator code against the active credential,
// consuming its time step (a step is never accepted twice).
func (h *Handler) verifyTOTP(ctx context.Context, userID, input string, status string) (bool, error) {
	creds, err := h.store.ListTOTP(ctx, userID)
	if err != nil {
		return false, err
	}
	now := h.now()
	for _, cr := range creds {
		if cr.Status != status {
			continue
		}
		seed, err := h.kr.Open(cr.SeedSealed, totpAD(cr.ID))
		if err != nil {
			return false, err
		}
		step, ok := factor.VerifyTOTP(seed, input, now, cr.LastStep)
		if !ok {
			continue
		}
		if err := h.store.AcceptTOTPStep(ctx, cr.ID, step); err != nil {
			if errors.Is(err, storage.ErrConflict) {
				return false, nil // replayed
			}
			return false, err
		}
		return true, nil
	}
	return false, nil
}

func totpAD(credID string) []byte { return []byte("totp-seed:" + credID) }

// codeSubmit verifies the second step.
func (h *Handler) codeSubmit(c echo.Context) error {
	if err := h.checkCSRF(c); err != nil {
		return err
	}
	s, ok, err := h.step(c, flow.StepSecondFactor)
	if !ok {
		return err
	}
	ctx := c.Request().Context()
	now := h.now()
	method := h.pickMethod(s, c.FormValue("method"))
	keys := []string{"code:acct:" + s.user.ID, "code:ip:" + clientIP(c)}
	if wait, err := h.throttled(c, keys, now); err != nil {
		return err
	} else if wait > 0 {
		return h.renderCode(c, s, method, http.StatusTooManyRequests, tooMany(wait), "")
	}
	input := c.FormValue("code")
	var valid bool
	var sealed []byte
	switch method {
	case flow.MethodEmail:
		valid, err = h.verifyEmailCode(c, s.user.ID, purposeSignin, s.ar.ID, input)
	case flow.MethodTOTP:
		valid, err = h.verifyTOTP(ctx, s.user.ID, input, storage.TOTPActive)
	case flow.MethodBackup:
		valid, sealed, err = h.useBackupCode(ctx, s.user.ID, input)
	}
	if err != nil {
		return err
	}
	if !valid {
		h.failed(c, keys, now)
		h.audit(c, storage.AuditEvent{UserID: s.user.ID, Email: s.user.Email, ClientID: s.ar.ClientID,
			Event: "secondfactor.failure", Reason: string(method)})
		return h.renderCode(c, s, method, http.StatusUnauthorized, msgBadCode, "")
	}
	h.succeeded(c, keys[:1])
	if len(cookieValue(c, cookieDevice)) < 32 {
		// The browser has now completed a second step: later sign-ins say
		// "not trusted" rather than "new" (the cookie alone trusts nothing;
		// trust is a row, made only by "Trust this device").
		h.setCookie(c, cookieDevice, keyring.NewToken(), 400*24*time.Hour)
	}
	if _, err := h.store.UpdateAuthRequest(ctx, s.ar.ID, func(a *storage.AuthRequest) error {
		a.SecondFactorAt = now
		a.SecondFactorMethod = string(method)
		if sealed != nil {
			a.BackupCodeSealed = sealed
			a.BackupCodeShown = false
		}
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
	}
	return h.advanceSignin(c, s.ar.ID)
}

// useBackupCode burns the user's backup code if input matches and puts a
// new one in its place; the new code comes back sealed, to be shown once.
func (h *Handler) useBackupCode(ctx context.Context, userID, input string) (bool, []byte, error) {
	canonical, ok := factor.NormalizeBackupCode(input)
	if !ok {
		return false, nil, nil
	}
	cur, err := h.store.GetBackupCode(ctx, userID)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return false, nil, nil
		}
		return false, nil, err
	}
	digest := h.kr.MACString(keyring.PurposeBackupCode, canonical)
	if !factor.Equal(cur.CodeHash, digest) {
		return false, nil, nil
	}
	next := factor.NewBackupCode()
	nextCanon, _ := factor.NormalizeBackupCode(next)
	err = h.store.ReplaceBackupCode(ctx, userID, cur.CodeHash, storage.BackupCode{
		UserID: userID, CodeHash: h.kr.MACString(keyring.PurposeBackupCode, nextCanon), CreatedAt: h.now(),
	})
	if err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return false, nil, nil // used concurrently
		}
		return false, nil, err
	}
	return true, h.kr.Seal([]byte(nextCanon), []byte("backup-code:"+userID)), nil
}

// --- remember this browser ---

type rememberData struct {
	ID                string
	Trust             bool
	TrustFor, StayFor string
}

func (h *Handler) rememberPage(c echo.Context) error {
	s, ok, err := h.step(c, flow.StepRemember)
	if !ok {
		return err
	}
	d := rememberData{ID: s.ar.ID, Trust: s.req.TrustOffered,
		TrustFor: flow.HumanDuration(h.cfg.Policy.TrustedDevice), StayFor: flow.HumanDuration(h.cfg.Policy.StaySignedIn)}
	title := "Trust this device?"
	if !d.Trust {
		title = "Stay signed in?"
	}
	return h.render(c, http.StatusOK, "remember", page{Title: title, Data: d})
}

func (h *Handler) rememberSubmit(c echo.Context) error {
	if err := h.checkCSRF(c); err != nil {
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
		tok := cookieValue(c, cookieDevice)
		if len(tok) < 32 {
			tok = keyring.NewToken()
		}
		// Trust runs from the verification, not from this click, and does
		// not slide (SPEC 2).
		verified := s.ar.SecondFactorAt
		if _, err := h.store.CreateTrustedDevice(ctx, storage.TrustedDevice{
			UserID: s.user.ID, TokenHash: h.kr.MACString(keyring.PurposeDevice, tok),
			CreatedAt: verified, ExpiresAt: verified.Add(h.cfg.Policy.TrustedDevice),
			LastSecondFactorAt: verified, LastUsedAt: now, UserAgent: userAgent(c), IP: clientIP(c),
		}); err != nil {
			return err
		}
		h.setCookie(c, cookieDevice, tok, 400*24*time.Hour)
		h.audit(c, storage.AuditEvent{UserID: s.user.ID, Email: s.user.Email, Event: "device.trusted"})
	case choice == "stay" && s.req.StaySignedInOffered:
		stay = true
	case choice == "no":
	default:
		return errBadRequest("Choose one of the options.", errors.New("bad remember choice"))
	}
	if _, err := h.store.UpdateAuthRequest(ctx, s.ar.ID, func(a *storage.AuthRequest) error {
		a.RememberChosen = true
		a.StaySignedIn = stay
		return nil
	}); err != nil {
		return err
	}
	return h.advanceSignin(c, s.ar.ID)
}

// --- backup code display ---

type backupCodeData struct {
	ID, Code, Filename, Action string
	Download                   template.URL
	Replaced                   bool
}

// backupCodePage shows a new backup code once: the replacement of a used
// one, or the first one after the account was created. The code is kept
// sealed on the auth request until the user confirms, so a reload shows
// the same code.
func (h *Handler) backupCodePage(c echo.Context) error {
	s, ok, err := h.step(c, flow.StepShowBackupCode)
	if !ok {
		return err
	}
	ctx := c.Request().Context()
	sealed := s.ar.BackupCodeSealed
	if sealed == nil {
		// The first backup code: make it now.
		code := factor.NewBackupCode()
		canon, _ := factor.NormalizeBackupCode(code)
		sealed = h.kr.Seal([]byte(canon), []byte("backup-code:"+s.user.ID))
		if err := h.store.SetBackupCode(ctx, storage.BackupCode{
			UserID: s.user.ID, CodeHash: h.kr.MACString(keyring.PurposeBackupCode, canon), CreatedAt: h.now(),
		}); err != nil {
			return err
		}
		if _, err := h.store.UpdateAuthRequest(ctx, s.ar.ID, func(a *storage.AuthRequest) error {
			a.BackupCodeSealed = sealed
			return nil
		}); err != nil {
			return err
		}
		h.audit(c, storage.AuditEvent{UserID: s.user.ID, Email: s.user.Email, Event: "backupcode.generated", Reason: "first sign-in"})
	}
	canon, err := h.kr.Open(sealed, []byte("backup-code:"+s.user.ID))
	if err != nil {
		return err
	}
	return h.render(c, http.StatusOK, "backupcode", page{Title: "Your backup code",
		Data: h.backupCodeData(s.ar.ID, string(canon), "/login/backup-code", s.ar.SecondFactorMethod == string(flow.MethodBackup))})
}

func (h *Handler) backupCodeData(id, canonical, action string, replaced bool) backupCodeData {
	formatted := factor.FormatBackupCode(canonical)
	text := h.cfg.SiteName + " backup code\r\n" + formatted + "\r\n"
	return backupCodeData{
		ID: id, Code: formatted, Action: action, Replaced: replaced,
		Filename: strings.ToLower(strings.ReplaceAll(h.cfg.SiteName, " ", "-")) + "-backup-code.txt",
		Download: template.URL("data:text/plain;charset=utf-8," + url.PathEscape(text)),
	}
}

func (h *Handler) backupCodeSubmit(c echo.Context) error {
	if err := h.checkCSRF(c); err != nil {
		return err
	}
	s, ok, err := h.step(c, flow.StepShowBackupCode)
	if !ok {
		return err
	}
	if c.FormValue("saved") != "yes" {
		canon, err := h.kr.Open(s.ar.BackupCodeSealed, []byte("backup-code:"+s.user.ID))
		if err != nil {
			return h.toDispatcher(c, s.ar.ID)
		}
		return h.render(c, http.StatusUnprocessableEntity, "backupcode", page{Title: "Your backup code",
			Error: "Tick \"I saved my backup code\" to continue.",
			Data:  h.backupCodeData(s.ar.ID, string(canon), "/login/backup-code", s.ar.SecondFactorMethod == string(flow.MethodBackup))})
	}
	ctx := c.Request().Context()
	if _, err := h.store.UpdateAuthRequest(ctx, s.ar.ID, func(a *storage.AuthRequest) error {
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
	local := e[:at]
	if len(local) <= 2 {
		return local[:1] + "…" + e[at:]
	}
	return local[:2] + "…" + e[at:]
}
