package account

import (
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/login/factor"
	"github.com/latchkey/latchkey/login/i18n"
	"github.com/latchkey/latchkey/login/internal/creds"
	"github.com/latchkey/latchkey/login/internal/web"
	"github.com/latchkey/latchkey/storage"
)

// The account security page (SPEC 3): authenticator app, backup code,
// password. Every GET page that leads to a change asks for a fresh
// reconfirmation first; every POST checks it again and, if it went stale
// meanwhile, applies nothing. Each change is audited, sends the
// notification mail, and (SPEC 2) ends the other sessions and every
// trusted device, in one transaction (storage.RevokeCause).

const (
	qrSize        = 256
	backupShowFor = 15 * time.Minute // the new backup code's cookie
)

// msgSSO answers a 2-step or password change of an SSO user.
var msgSSO = i18n.M("account.security.sso_refused")

type securityData struct {
	Nav               string
	Email             string
	SSO               bool
	HasTOTP           bool
	TOTPSince         time.Time
	BackupAt          time.Time // zero: never generated
	PasswordChangedAt time.Time
	HasPassword       bool
	// PasskeysOn: this issuer can have passkeys; Passkeys are the user's.
	PasskeysOn bool
	Passkeys   []passkeyRow
}

// securityPage is GET /account/security.
func (h *Handler) securityPage(c echo.Context, a *account) error {
	ctx := c.Request().Context()
	d := securityData{Nav: "security", Email: a.user.Email, SSO: a.sso(), PasswordChangedAt: a.in(a.user.PasswordChangedAt),
		HasPassword: a.user.PasswordHash != ""}
	if !d.SSO {
		active, err := h.creds.ActiveTOTP(ctx, a.user.ID)
		if err != nil {
			return err
		}
		d.HasTOTP, d.TOTPSince = active.ID != "", a.in(active.ConfirmedAt)
		if d.BackupAt, err = h.creds.BackupCodeCreatedAt(ctx, a.user.ID); err != nil {
			return err
		}
		d.BackupAt = a.in(d.BackupAt)
		d.PasskeysOn = h.creds.PasskeysEnabled()
		pks, err := h.creds.Passkeys(ctx, a.user.ID)
		if err != nil {
			return err
		}
		d.Passkeys = passkeyRows(a, pks)
	}
	notice, errMsg := doneNotice(c)
	return h.render(c, http.StatusOK, "account_security", web.Page{Title: i18n.M("account.security.title"), Notice: notice, Error: errMsg, Data: d})
}

// securityChange wraps the handlers of the security page: an account
// session, not an SSO user, and a POST's CSRF token.
func (h *Handler) securityChange(fn func(c echo.Context, a *account) error) echo.HandlerFunc {
	return h.withAccount(func(c echo.Context, a *account) error {
		if a.sso() {
			return web.Forbidden(msgSSO, errors.New("sso user on a security change page"))
		}
		if c.Request().Method == http.MethodPost {
			if err := h.web.CheckCSRF(c); err != nil {
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
	// URI is the otpauth:// link that adds the key to an authenticator
	// app on this very device (a phone cannot scan its own screen).
	URI template.URL
	// KeyGroups is the key for manual entry in groups of four, each shown
	// unbroken (the page may wrap between groups, never inside one).
	KeyGroups []string
	Issuer    string
	Email     string
}

// totpSetupPage is GET /account/security/totp: "Set up" (or "Update"):
// a new pending seed as a QR code and as text. The active seed, if any,
// keeps working until a code from the new one is confirmed.
func (h *Handler) totpSetupPage(c echo.Context, a *account) error {
	st, err := h.creds.PendingTOTP(c.Request().Context(), a.user.ID)
	if err != nil {
		return err
	}
	if status, errMsg, _, ok := h.web.TakeFlash(c); ok {
		return h.renderTOTPSetup(c, a, st, status, errMsg) // back from a POST
	}
	return h.renderTOTPSetup(c, a, st, http.StatusOK, i18n.Msg{})
}

// back ends a POST of a change page that failed: back to the page's GET
// (path) with the error (redirect after POST, web.SeeOther); render is
// the page, for when the error cannot travel.
func (h *Handler) back(c echo.Context, path string, status int, errMsg i18n.Msg, render func() error) error {
	return h.web.SeeOther(c, path, status, errMsg, i18n.Msg{}, render)
}

func (h *Handler) renderTOTPSetup(c echo.Context, a *account, st creds.TOTPSetup, status int, errMsg i18n.Msg) error {
	key, err := h.creds.Key(st.Cred, a.user.Email, qrSize)
	if err != nil {
		return err
	}
	d := totpData{Nav: "security", Update: st.Update, ID: st.Cred.ID, KeyGroups: strings.Fields(key.Text),
		QR:     template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(key.PNG)),
		URI:    template.URL(key.URI), // otpauth: is ours (factor.TOTPKeyURI), not the user's
		Issuer: h.creds.TOTPIssuer(), Email: a.user.Email}
	title := i18n.M("account.totp.title_set_up")
	if st.Update {
		title = i18n.M("account.totp.title_update")
	}
	return h.render(c, status, "account_totp", web.Page{Title: title, Error: errMsg, Data: d})
}

// totpSetupSubmit is POST /account/security/totp ("Turn on"): a valid
// code from the pending seed makes it the active one (and deletes the
// old one, in one transaction).
func (h *Handler) totpSetupSubmit(c echo.Context, a *account) error {
	ctx := c.Request().Context()
	st, err := h.creds.FindPendingTOTP(ctx, a.user.ID, c.FormValue("totp_id"))
	if err != nil {
		return err
	}
	if st.Cred.ID == "" {
		return web.BadRequest(msgSetupExpired, errors.New("no such pending totp credential"))
	}
	try, wait, err := h.creds.Try(ctx, creds.TOTPSetupLimits(a.user.ID, web.ClientIP(c))...)
	if err != nil {
		return err
	} else if wait > 0 {
		return h.back(c, "/account/security/totp", http.StatusTooManyRequests, web.TooMany(wait),
			func() error { return h.renderTOTPSetup(c, a, st, http.StatusTooManyRequests, web.TooMany(wait)) })
	}
	ok, err := h.creds.ConfirmTOTP(ctx, a.user.ID, st.Cred, c.FormValue("code"))
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return web.BadRequest(msgSetupExpired, err)
	case err != nil:
		return err
	case !ok:
		return h.back(c, "/account/security/totp", http.StatusUnprocessableEntity, msgTOTPWrong,
			func() error { return h.renderTOTPSetup(c, a, st, http.StatusUnprocessableEntity, msgTOTPWrong) })
	}
	try.Succeeded(ctx)
	event, change, done := "totp.enabled", i18n.M("notice.totp_on"), "totp-on"
	if st.Update {
		event, change, done = "totp.updated", i18n.M("notice.totp_updated"), "totp-updated"
	}
	if err := h.revokeOthers(c, a, storage.RevokeSecondStepChanged, nil, change); err != nil {
		return err
	}
	h.audit(c, storage.AuditEvent{UserID: a.user.ID, Email: a.user.Email, ClientID: ClientID, Event: event})
	return c.Redirect(http.StatusSeeOther, doneURL("/account/security", done, true))
}

var (
	msgSetupExpired = i18n.M("account.totp.expired")
	msgTOTPWrong    = i18n.M("account.totp.wrong")
)

type totpManageData struct {
	Nav   string
	Since time.Time
}

// totpManagePage is GET /account/security/totp/manage: "Update" and
// "Turn off".
func (h *Handler) totpManagePage(c echo.Context, a *account) error {
	active, err := h.creds.ActiveTOTP(c.Request().Context(), a.user.ID)
	if err != nil {
		return err
	}
	if active.ID == "" {
		return c.Redirect(http.StatusSeeOther, "/account/security")
	}
	return h.render(c, http.StatusOK, "account_totp_manage", web.Page{Title: i18n.M("account.totp.title"),
		Data: totpManageData{Nav: "security", Since: a.in(active.ConfirmedAt)}})
}

// totpOffPage is GET /account/security/totp/off: the confirmation.
func (h *Handler) totpOffPage(c echo.Context, a *account) error {
	active, err := h.creds.ActiveTOTP(c.Request().Context(), a.user.ID)
	if err != nil {
		return err
	}
	if active.ID == "" {
		return c.Redirect(http.StatusSeeOther, "/account/security")
	}
	return h.render(c, http.StatusOK, "account_totp_off", web.Page{Title: i18n.M("account.totp.title_off"), Data: reconfirmData{Nav: "security"}})
}

// totpOffSubmit is POST /account/security/totp/off.
func (h *Handler) totpOffSubmit(c echo.Context, a *account) error {
	ctx := c.Request().Context()
	active, err := h.creds.ActiveTOTP(ctx, a.user.ID)
	if err != nil {
		return err
	}
	if active.ID == "" {
		return c.Redirect(http.StatusSeeOther, "/account/security")
	}
	if err := h.creds.DisableTOTP(ctx, a.user.ID); err != nil {
		return err
	}
	if err := h.revokeOthers(c, a, storage.RevokeSecondStepChanged, nil, i18n.M("notice.totp_off")); err != nil {
		return err
	}
	h.audit(c, storage.AuditEvent{UserID: a.user.ID, Email: a.user.Email, ClientID: ClientID, Event: "totp.disabled"})
	return c.Redirect(http.StatusSeeOther, doneURL("/account/security", "totp-off", true))
}

// --- backup code ---

type backupConfirmData struct {
	Nav      string
	BackupAt time.Time
}

// backupPage is GET /account/security/backup-code: "Generate" replaces
// the code; this page says so and asks to go on.
func (h *Handler) backupPage(c echo.Context, a *account) error {
	at, err := h.creds.BackupCodeCreatedAt(c.Request().Context(), a.user.ID)
	if err != nil {
		return err
	}
	return h.render(c, http.StatusOK, "account_backup", web.Page{Title: i18n.M("account.backup.title"),
		Data: backupConfirmData{Nav: "security", BackupAt: a.in(at)}})
}

// backupGenerate is POST /account/security/backup-code: a new code
// replaces the old one at once; it is shown once (sealed in a short-lived
// cookie until the user ticks "I saved my backup code").
func (h *Handler) backupGenerate(c echo.Context, a *account) error {
	_, sealed, err := h.creds.GenerateBackupCode(c.Request().Context(), a.user.ID)
	if err != nil {
		return err
	}
	if err := h.revokeOthers(c, a, storage.RevokeSecondStepChanged, nil, i18n.M("notice.backup_generated")); err != nil {
		return err
	}
	h.web.SetCookie(c, web.CookieBackupShow, web.EncodeSealed(sealed), backupShowFor)
	h.audit(c, storage.AuditEvent{UserID: a.user.ID, Email: a.user.Email, ClientID: ClientID, Event: "backupcode.generated", Reason: "account page"})
	return c.Redirect(http.StatusSeeOther, "/account/security/backup-code/show")
}

// shownBackupCode is the code waiting in this browser's cookie, if it is
// still the user's current code.
func (h *Handler) shownBackupCode(c echo.Context, a *account) (string, error) {
	sealed, err := web.DecodeSealed(h.web.CookieValue(c, web.CookieBackupShow))
	if err != nil {
		return "", nil
	}
	return h.creds.CurrentBackupCode(c.Request().Context(), a.user.ID, sealed)
}

type backupShowData struct {
	web.BackupCodeView
	Nav string
}

// backupShowPage is GET /account/security/backup-code/show.
func (h *Handler) backupShowPage(c echo.Context, a *account) error {
	canon, err := h.shownBackupCode(c, a)
	if err != nil {
		return err
	}
	if canon == "" {
		h.web.ClearCookie(c, web.CookieBackupShow)
		return c.Redirect(http.StatusSeeOther, "/account/security")
	}
	var errMsg i18n.Msg
	if c.QueryParam("mail") == "failed" {
		errMsg = msgMailFailed
	}
	return h.renderBackupShow(c, canon, http.StatusOK, errMsg)
}

func (h *Handler) renderBackupShow(c echo.Context, canon string, status int, errMsg i18n.Msg) error {
	d := backupShowData{BackupCodeView: h.web.BackupCode("", canon, "/account/security/backup-code/saved", false), Nav: "security"}
	return h.render(c, status, "account_backup_show", web.Page{Title: i18n.M("account.backup.show.title"), Error: errMsg, Data: d})
}

// backupSaved is POST /account/security/backup-code/saved: the page does
// not close without "I saved my backup code".
func (h *Handler) backupSaved(c echo.Context, a *account) error {
	canon, err := h.shownBackupCode(c, a)
	if err != nil {
		return err
	}
	if canon == "" {
		h.web.ClearCookie(c, web.CookieBackupShow)
		return c.Redirect(http.StatusSeeOther, "/account/security")
	}
	if c.FormValue("saved") != "yes" {
		return h.renderBackupShow(c, canon, http.StatusUnprocessableEntity, i18n.M("account.backup.tick_saved"))
	}
	h.web.ClearCookie(c, web.CookieBackupShow)
	return c.Redirect(http.StatusSeeOther, "/account/security?done=backup")
}

// --- password ---

type passwordChangeData struct {
	Nav   string
	Email string
}

// passwordChangePage is GET /account/security/password.
func (h *Handler) passwordChangePage(c echo.Context, a *account) error {
	if status, errMsg, _, ok := h.web.TakeFlash(c); ok {
		return h.renderPasswordChange(c, a, status, errMsg) // back from a POST
	}
	return h.renderPasswordChange(c, a, http.StatusOK, i18n.Msg{})
}

// passwordBack ends a password change that failed (redirect after POST).
func (h *Handler) passwordBack(c echo.Context, a *account, status int, errMsg i18n.Msg) error {
	return h.back(c, "/account/security/password", status, errMsg, func() error { return h.renderPasswordChange(c, a, status, errMsg) })
}

func (h *Handler) renderPasswordChange(c echo.Context, a *account, status int, errMsg i18n.Msg) error {
	return h.render(c, status, "account_password", web.Page{Title: i18n.M("account.password.title"), Error: errMsg,
		Data: passwordChangeData{Nav: "security", Email: a.user.Email}})
}

// passwordChangeSubmit is POST /account/security/password: the current
// password and a new one.
func (h *Handler) passwordChangeSubmit(c echo.Context, a *account) error {
	ctx := c.Request().Context()
	current, next := c.FormValue("password"), c.FormValue("new_password")
	try, wait, err := h.creds.Try(ctx, h.creds.PasswordLimits(a.user.Email, web.ClientIP(c), "session-"+a.sess.ID)...)
	if err != nil {
		return err
	} else if wait > 0 {
		return h.passwordBack(c, a, http.StatusTooManyRequests, web.TooMany(wait))
	}
	if !h.creds.CheckPassword(ctx, &a.user, current) {
		h.audit(c, storage.AuditEvent{UserID: a.user.ID, Email: a.user.Email, ClientID: ClientID, Event: "password.change_failed", Reason: "wrong current password"})
		return h.passwordBack(c, a, http.StatusUnauthorized, i18n.M("account.password.wrong"))
	}
	try.Succeeded(ctx)
	if msg := web.NewPasswordMessage(factor.CheckNewPassword(next, a.user.Email)); !msg.IsZero() {
		return h.passwordBack(c, a, http.StatusUnprocessableEntity, msg)
	}
	if next == current {
		return h.passwordBack(c, a, http.StatusUnprocessableEntity, i18n.M("account.password.same"))
	}
	set, err := h.creds.NewPassword(next, false)
	if err != nil {
		return err
	}
	if err := h.revokeOthers(c, a, storage.RevokePasswordChanged, set, i18n.M("notice.password_changed")); err != nil {
		return err
	}
	h.audit(c, storage.AuditEvent{UserID: a.user.ID, Email: a.user.Email, ClientID: ClientID, Event: "password.changed"})
	return c.Redirect(http.StatusSeeOther, doneURL("/account/security", "password", true))
}
