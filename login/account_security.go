package login

import (
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/login/factor"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
)

// The account security page (SPEC 3): authenticator app, backup code,
// password. Every GET page that leads to a change asks for a fresh
// reconfirmation first; every POST checks it again and, if it went stale
// meanwhile, applies nothing. Each change is audited, sends the
// notification mail, and (SPEC 2) ends the other sessions and every
// trusted device.

const (
	// pendingTOTPReuse: a set-up page reloaded within this time shows the
	// same QR code (the user may be scanning it).
	pendingTOTPReuse = 15 * time.Minute
	qrSize           = 256
	cookieBackupShow = "lk_backup_show" // sealed new backup code, until "I saved my backup code"
	backupShowFor    = 15 * time.Minute
)

// msgSSO answers a 2-step or password change of an SSO user.
const msgSSO = "Your organisation confirms your identity: there are no sign-in settings to change here."

type securityData struct {
	Nav               string
	Email             string
	SSO               bool
	HasTOTP           bool
	TOTPSince         time.Time
	BackupAt          time.Time // zero: never generated
	PasswordChangedAt time.Time
	HasPassword       bool
}

// securityPage is GET /account/security.
func (h *Handler) securityPage(c echo.Context, a *account) error {
	ctx := c.Request().Context()
	d := securityData{Nav: "security", Email: a.user.Email, SSO: a.sso(), PasswordChangedAt: a.user.PasswordChangedAt,
		HasPassword: a.user.PasswordHash != ""}
	if !d.SSO {
		active, err := h.activeTOTP(c, a.user.ID)
		if err != nil {
			return err
		}
		d.HasTOTP, d.TOTPSince = active.ID != "", active.ConfirmedAt
		bc, err := h.store.GetBackupCode(ctx, a.user.ID)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		d.BackupAt = bc.CreatedAt
	}
	notice, errMsg := doneNotice(c)
	return h.render(c, http.StatusOK, "account_security", page{Title: "Security", Notice: notice, Error: errMsg, Data: d})
}

func (h *Handler) activeTOTP(c echo.Context, userID string) (storage.TOTPCredential, error) {
	creds, err := h.store.ListTOTP(c.Request().Context(), userID)
	if err != nil {
		return storage.TOTPCredential{}, err
	}
	for _, cr := range creds {
		if cr.Status == storage.TOTPActive {
			return cr, nil
		}
	}
	return storage.TOTPCredential{}, nil
}

// securityChange wraps the handlers of the security page: an account
// session, not an SSO user; fresh reports whether the reconfirmation holds.
func (h *Handler) securityChange(fn func(c echo.Context, a *account) error) echo.HandlerFunc {
	return h.withAccount(func(c echo.Context, a *account) error {
		if a.sso() {
			return errForbidden(msgSSO, errors.New("sso user on a security change page"))
		}
		if c.Request().Method == http.MethodPost {
			if err := h.checkCSRF(c); err != nil {
				return err
			}
		}
		return fn(c, a)
	})
}

// freshGET is the guard of a GET page that leads to a change: reconfirm
// first, then come back here.
func (h *Handler) freshGET(fn accountHandler) echo.HandlerFunc {
	return h.securityChange(func(c echo.Context, a *account) error {
		if !h.fresh(a) {
			return h.startReconfirm(c, a, c.Request().URL.Path)
		}
		return fn(c, a)
	})
}

// freshPOST is the guard of a change: with a stale reconfirmation nothing
// is applied and the page offers "Confirm it's you", which comes back to
// retry (the GET page ret).
func (h *Handler) freshPOST(ret string, fn accountHandler) echo.HandlerFunc {
	return h.securityChange(func(c echo.Context, a *account) error {
		if !h.fresh(a) {
			return h.needReconfirm(c, ret)
		}
		return fn(c, a)
	})
}

// --- authenticator app ---

type totpData struct {
	Nav    string
	Update bool
	ID     string
	QR     template.URL
	Key    string
	Issuer string
	Email  string
}

// totpSetupPage is GET /account/security/totp: "Set up" (or "Update"):
// a new pending seed as a QR code and as text. The active seed, if any,
// keeps working until a code from the new one is confirmed.
func (h *Handler) totpSetupPage(c echo.Context, a *account) error {
	ctx := c.Request().Context()
	now := h.now()
	creds, err := h.store.ListTOTP(ctx, a.user.ID)
	if err != nil {
		return err
	}
	var pending storage.TOTPCredential
	update := false
	for _, cr := range creds {
		switch cr.Status {
		case storage.TOTPActive:
			update = true
		case storage.TOTPPending:
			if pending.ID == "" && now.Sub(cr.CreatedAt) < pendingTOTPReuse && !cr.CreatedAt.After(now) {
				pending = cr
			}
		}
	}
	if pending.ID == "" {
		if err := h.store.DeleteTOTP(ctx, a.user.ID, storage.TOTPPending); err != nil {
			return err
		}
		id := storage.NewID() // the id is the seed's associated data: known before sealing
		seed := factor.NewTOTPSeed()
		if pending, err = h.store.CreateTOTP(ctx, storage.TOTPCredential{
			ID: id, UserID: a.user.ID, SeedSealed: h.kr.Seal(seed, totpAD(id)), Status: storage.TOTPPending, CreatedAt: now,
		}); err != nil {
			return err
		}
	}
	return h.renderTOTPSetup(c, a, pending, update, http.StatusOK, "")
}

func (h *Handler) renderTOTPSetup(c echo.Context, a *account, cr storage.TOTPCredential, update bool, status int, errMsg string) error {
	seed, err := h.kr.Open(cr.SeedSealed, totpAD(cr.ID))
	if err != nil {
		return err
	}
	png, err := factor.TOTPQRCodePNG(factor.TOTPKeyURI(h.cfg.TOTPIssuer, a.user.Email, seed), qrSize)
	if err != nil {
		return err
	}
	d := totpData{Nav: "security", Update: update, ID: cr.ID, Key: factor.TOTPSecretText(seed),
		QR:     template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png)),
		Issuer: h.cfg.TOTPIssuer, Email: a.user.Email}
	title := "Set up authenticator app"
	if update {
		title = "Update authenticator app"
	}
	return h.render(c, status, "account_totp", page{Title: title, Error: errMsg, Data: d})
}

// totpSetupSubmit is POST /account/security/totp ("Turn on"): a valid
// code from the pending seed makes it the active one (and deletes the
// old one, in one transaction).
func (h *Handler) totpSetupSubmit(c echo.Context, a *account) error {
	ctx := c.Request().Context()
	now := h.now()
	creds, err := h.store.ListTOTP(ctx, a.user.ID)
	if err != nil {
		return err
	}
	var pending storage.TOTPCredential
	update := false
	id := c.FormValue("totp_id")
	for _, cr := range creds {
		switch {
		case cr.Status == storage.TOTPActive:
			update = true
		case cr.Status == storage.TOTPPending && cr.ID == id:
			pending = cr
		}
	}
	if pending.ID == "" {
		return errBadRequest("This set-up page has expired. Start again from your security page.", errors.New("no such pending totp credential"))
	}
	keys := []string{"acct-totp:" + a.user.ID, "code:ip:" + clientIP(c)}
	if wait, err := h.throttled(c, keys, now); err != nil {
		return err
	} else if wait > 0 {
		return h.renderTOTPSetup(c, a, pending, update, http.StatusTooManyRequests, tooMany(wait))
	}
	seed, err := h.kr.Open(pending.SeedSealed, totpAD(pending.ID))
	if err != nil {
		return err
	}
	step, ok := factor.VerifyTOTP(seed, c.FormValue("code"), now, pending.LastStep)
	if !ok {
		h.failed(c, keys, now)
		return h.renderTOTPSetup(c, a, pending, update, http.StatusUnprocessableEntity,
			"That code is not right. Enter the newest 6-digit code your app shows for this account.")
	}
	h.succeeded(c, keys[:1])
	if err := h.store.ActivateTOTP(ctx, a.user.ID, pending.ID, step, now); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return errBadRequest("This set-up page has expired. Start again from your security page.", err)
		}
		return err
	}
	if err := h.revokeOthers(c, a, true); err != nil {
		return err
	}
	event, change, done := "totp.enabled", "Authenticator app turned on", "totp-on"
	if update {
		event, change, done = "totp.updated", "Authenticator app updated", "totp-updated"
	}
	h.audit(c, storage.AuditEvent{UserID: a.user.ID, Email: a.user.Email, ClientID: AccountClientID, Event: event})
	mailed := h.notify(c, a.user, change)
	return c.Redirect(http.StatusSeeOther, doneURL("/account/security", done, mailed))
}

type totpManageData struct {
	Nav   string
	Since time.Time
}

// totpManagePage is GET /account/security/totp/manage: "Update" and
// "Turn off".
func (h *Handler) totpManagePage(c echo.Context, a *account) error {
	active, err := h.activeTOTP(c, a.user.ID)
	if err != nil {
		return err
	}
	if active.ID == "" {
		return c.Redirect(http.StatusSeeOther, "/account/security")
	}
	return h.render(c, http.StatusOK, "account_totp_manage", page{Title: "Authenticator app",
		Data: totpManageData{Nav: "security", Since: active.ConfirmedAt}})
}

// totpOffPage is GET /account/security/totp/off: the confirmation.
func (h *Handler) totpOffPage(c echo.Context, a *account) error {
	active, err := h.activeTOTP(c, a.user.ID)
	if err != nil {
		return err
	}
	if active.ID == "" {
		return c.Redirect(http.StatusSeeOther, "/account/security")
	}
	return h.render(c, http.StatusOK, "account_totp_off", page{Title: "Turn off authenticator app", Data: reconfirmData{Nav: "security"}})
}

// totpOffSubmit is POST /account/security/totp/off.
func (h *Handler) totpOffSubmit(c echo.Context, a *account) error {
	active, err := h.activeTOTP(c, a.user.ID)
	if err != nil {
		return err
	}
	if active.ID == "" {
		return c.Redirect(http.StatusSeeOther, "/account/security")
	}
	if err := h.store.DeleteTOTP(c.Request().Context(), a.user.ID, ""); err != nil {
		return err
	}
	if err := h.revokeOthers(c, a, true); err != nil {
		return err
	}
	h.audit(c, storage.AuditEvent{UserID: a.user.ID, Email: a.user.Email, ClientID: AccountClientID, Event: "totp.disabled"})
	mailed := h.notify(c, a.user, "Authenticator app turned off")
	return c.Redirect(http.StatusSeeOther, doneURL("/account/security", "totp-off", mailed))
}

// --- backup code ---

type backupConfirmData struct {
	Nav      string
	BackupAt time.Time
}

// backupPage is GET /account/security/backup-code: "Generate" replaces
// the code; this page says so and asks to go on.
func (h *Handler) backupPage(c echo.Context, a *account) error {
	bc, err := h.store.GetBackupCode(c.Request().Context(), a.user.ID)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	return h.render(c, http.StatusOK, "account_backup", page{Title: "Generate a backup code",
		Data: backupConfirmData{Nav: "security", BackupAt: bc.CreatedAt}})
}

// backupGenerate is POST /account/security/backup-code: a new code
// replaces the old one at once; it is shown once (sealed in a short-lived
// cookie until the user ticks "I saved my backup code").
func (h *Handler) backupGenerate(c echo.Context, a *account) error {
	ctx := c.Request().Context()
	now := h.now()
	canon, _ := factor.NormalizeBackupCode(factor.NewBackupCode())
	if err := h.store.SetBackupCode(ctx, storage.BackupCode{
		UserID: a.user.ID, CodeHash: h.kr.MACString(keyring.PurposeBackupCode, canon), CreatedAt: now,
	}); err != nil {
		return err
	}
	if err := h.revokeOthers(c, a, true); err != nil {
		return err
	}
	h.setCookie(c, cookieBackupShow, encodeSealed(h.kr.Seal([]byte(canon), backupShowAD(a.user.ID))), backupShowFor)
	h.audit(c, storage.AuditEvent{UserID: a.user.ID, Email: a.user.Email, ClientID: AccountClientID, Event: "backupcode.generated", Reason: "account page"})
	mailed := h.notify(c, a.user, "Backup code generated")
	u := "/account/security/backup-code/show"
	if !mailed {
		u += "?mail=failed"
	}
	return c.Redirect(http.StatusSeeOther, u)
}

func backupShowAD(userID string) []byte { return []byte("backup-show:" + userID) }

// shownBackupCode is the code waiting in this browser's cookie, if it is
// still the user's current code.
func (h *Handler) shownBackupCode(c echo.Context, a *account) (string, error) {
	sealed, err := decodeSealed(cookieValue(c, cookieBackupShow))
	if err != nil {
		return "", nil
	}
	canon, err := h.kr.Open(sealed, backupShowAD(a.user.ID))
	if err != nil {
		return "", nil
	}
	cur, err := h.store.GetBackupCode(c.Request().Context(), a.user.ID)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return "", nil
		}
		return "", err
	}
	if !factor.Equal(cur.CodeHash, h.kr.MACString(keyring.PurposeBackupCode, string(canon))) {
		return "", nil // replaced or used since
	}
	return string(canon), nil
}

type backupShowData struct {
	backupCodeData
	Nav string
}

// backupShowPage is GET /account/security/backup-code/show.
func (h *Handler) backupShowPage(c echo.Context, a *account) error {
	canon, err := h.shownBackupCode(c, a)
	if err != nil {
		return err
	}
	if canon == "" {
		h.clearCookie(c, cookieBackupShow)
		return c.Redirect(http.StatusSeeOther, "/account/security")
	}
	errMsg := ""
	if c.QueryParam("mail") == "failed" {
		errMsg = "We could not send the notification email about this change. The change is saved."
	}
	return h.renderBackupShow(c, canon, http.StatusOK, errMsg)
}

func (h *Handler) renderBackupShow(c echo.Context, canon string, status int, errMsg string) error {
	d := backupShowData{backupCodeData: h.backupCodeData("", canon, "/account/security/backup-code/saved", false), Nav: "security"}
	return h.render(c, status, "account_backup_show", page{Title: "Your new backup code", Error: errMsg, Data: d})
}

// backupSaved is POST /account/security/backup-code/saved: the page does
// not close without "I saved my backup code".
func (h *Handler) backupSaved(c echo.Context, a *account) error {
	canon, err := h.shownBackupCode(c, a)
	if err != nil {
		return err
	}
	if canon == "" {
		h.clearCookie(c, cookieBackupShow)
		return c.Redirect(http.StatusSeeOther, "/account/security")
	}
	if c.FormValue("saved") != "yes" {
		return h.renderBackupShow(c, canon, http.StatusUnprocessableEntity, "Tick \"I saved my backup code\" to close this page.")
	}
	h.clearCookie(c, cookieBackupShow)
	return c.Redirect(http.StatusSeeOther, "/account/security?done=backup")
}

// --- password ---

type passwordChangeData struct {
	Nav   string
	Email string
}

// passwordChangePage is GET /account/security/password.
func (h *Handler) passwordChangePage(c echo.Context, a *account) error {
	return h.renderPasswordChange(c, a, http.StatusOK, "")
}

func (h *Handler) renderPasswordChange(c echo.Context, a *account, status int, errMsg string) error {
	return h.render(c, status, "account_password", page{Title: "Change your password", Error: errMsg,
		Data: passwordChangeData{Nav: "security", Email: a.user.Email}})
}

// passwordChangeSubmit is POST /account/security/password: the current
// password and a new one.
func (h *Handler) passwordChangeSubmit(c echo.Context, a *account) error {
	now := h.now()
	current, next := c.FormValue("password"), c.FormValue("new_password")
	keys := []string{"pwd:acct:" + keyringHex(h, strings.ToLower(a.user.Email)), "pwd:ip:" + clientIP(c)}
	if wait, err := h.throttled(c, keys, now); err != nil {
		return err
	} else if wait > 0 {
		return h.renderPasswordChange(c, a, http.StatusTooManyRequests, tooMany(wait))
	}
	valid := false
	if a.user.PasswordHash != "" && len(current) <= factor.MaxPasswordBytes {
		ok, _, err := h.hasher.Verify(a.user.PasswordHash, current)
		if err != nil {
			h.log.Error("stored password hash unreadable", "user", a.user.ID, "err", err)
		}
		valid = ok
	} else {
		h.hasher.DummyVerify(current)
	}
	if !valid {
		h.failed(c, keys, now)
		h.audit(c, storage.AuditEvent{UserID: a.user.ID, Email: a.user.Email, ClientID: AccountClientID, Event: "password.change_failed", Reason: "wrong current password"})
		return h.renderPasswordChange(c, a, http.StatusUnauthorized, "Your current password is not right.")
	}
	h.succeeded(c, keys[:1])
	if msg := newPasswordMessage(factor.CheckNewPassword(next, a.user.Email)); msg != "" {
		return h.renderPasswordChange(c, a, http.StatusUnprocessableEntity, msg)
	}
	if next == current {
		return h.renderPasswordChange(c, a, http.StatusUnprocessableEntity, "Choose a password different from your current one.")
	}
	if err := h.setPassword(c, a.user.ID, next, false); err != nil {
		return err
	}
	if err := h.revokeOthers(c, a, true); err != nil {
		return err
	}
	h.audit(c, storage.AuditEvent{UserID: a.user.ID, Email: a.user.Email, ClientID: AccountClientID, Event: "password.changed"})
	mailed := h.notify(c, a.user, "Password changed")
	return c.Redirect(http.StatusSeeOther, doneURL("/account/security", "password", mailed))
}

// setPassword hashes and stores a new password (verified: the address is
// proven too).
func (h *Handler) setPassword(c echo.Context, userID, password string, verified bool) error {
	phc, err := h.hasher.Hash(password)
	if err != nil {
		return err
	}
	now := h.now()
	_, err = h.store.UpdateUser(c.Request().Context(), userID, func(u *storage.User) error {
		u.PasswordHash = phc
		u.PasswordChangedAt = now
		u.UpdatedAt = now
		if verified {
			u.EmailVerified = true
		}
		return nil
	})
	return err
}

// newPasswordMessage says which rule a new password broke ("" if none).
func newPasswordMessage(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, factor.ErrPasswordTooShort):
		return "Your new password is too short: use at least 8 characters."
	case errors.Is(err, factor.ErrPasswordTooLong):
		return "Your new password is too long: use at most 1024 bytes."
	case errors.Is(err, factor.ErrPasswordCommon):
		return "That password is too common: it is on a list of passwords found in data breaches. Choose another one."
	case errors.Is(err, factor.ErrPasswordIsEmail):
		return "Do not use your email address as your password."
	case errors.Is(err, factor.ErrPasswordEncoding):
		return "Your new password contains characters we cannot read."
	}
	return "Choose another password."
}
