package login

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/login/factor"
	"github.com/latchkey/latchkey/login/i18n"
	"github.com/latchkey/latchkey/login/internal/web"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
)

// The set-password link (/account/set-password?token=…) that the command
// line prints for a user created without a password (purpose
// "set-password", 7 days). The token is single use: it is redeemed only
// when a valid new password is submitted. The link came by mail or from
// an operator, so it also proves the address.

const purposeSetPassword = "set-password"

type setPasswordData struct {
	Token, Email string
	Invalid      bool
	Done         bool
}

// setPasswordUser resolves a set-password token to its user, without
// redeeming it.
func (h *Handler) setPasswordUser(c echo.Context, tok string) (storage.User, bool, error) {
	if tok == "" || len(tok) > 256 {
		return storage.User{}, false, nil
	}
	at, err := h.store.GetActionToken(c.Request().Context(), h.kr.MACString(keyring.PurposeAction, tok), purposeSetPassword, h.now())
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return storage.User{}, false, nil
		}
		return storage.User{}, false, err
	}
	u, err := h.store.GetUser(c.Request().Context(), at.UserID)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return u, false, nil
		}
		return u, false, err
	}
	if u.Disabled || u.OrgID != "" {
		return u, false, nil
	}
	return u, true, nil
}

func (h *Handler) renderSetPassword(c echo.Context, status int, msg i18n.Msg, d setPasswordData) error {
	title := i18n.M("setpassword.title")
	switch {
	case d.Invalid:
		title = i18n.M("setpassword.title_invalid")
	case d.Done:
		title = i18n.M("setpassword.title_done")
	}
	return h.render(c, status, "account_setpassword", web.Page{Title: title, Error: msg, Data: d})
}

// setPasswordPage is GET /account/set-password?token=…
func (h *Handler) setPasswordPage(c echo.Context) error {
	tok := c.QueryParam("token")
	u, ok, err := h.setPasswordUser(c, tok)
	if err != nil {
		return err
	}
	if !ok {
		return h.renderSetPassword(c, http.StatusGone, i18n.Msg{}, setPasswordData{Invalid: true})
	}
	return h.renderSetPassword(c, http.StatusOK, i18n.Msg{}, setPasswordData{Token: tok, Email: u.Email})
}

// setPasswordSubmit is POST /account/set-password.
func (h *Handler) setPasswordSubmit(c echo.Context) error {
	if err := h.web.CheckCSRF(c); err != nil {
		return err
	}
	tok := c.FormValue("token")
	u, ok, err := h.setPasswordUser(c, tok)
	if err != nil {
		return err
	}
	if !ok {
		return h.renderSetPassword(c, http.StatusGone, i18n.Msg{}, setPasswordData{Invalid: true})
	}
	password := c.FormValue("new_password")
	if msg := web.NewPasswordMessage(factor.CheckNewPassword(password, u.Email)); !msg.IsZero() {
		return h.renderSetPassword(c, http.StatusUnprocessableEntity, msg, setPasswordData{Token: tok, Email: u.Email})
	}
	ctx := c.Request().Context()
	if _, err := h.store.RedeemActionToken(ctx, h.kr.MACString(keyring.PurposeAction, tok), purposeSetPassword, h.now()); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return h.renderSetPassword(c, http.StatusGone, i18n.Msg{}, setPasswordData{Invalid: true})
		}
		return err
	}
	// Whoever was signed in with an earlier password is not any more.
	set, err := h.creds.NewPassword(password, true)
	if err != nil {
		return err
	}
	if _, err := h.creds.RevokeAndNotify(ctx, u, storage.Revocation{Cause: storage.RevokePasswordReset, User: set}, i18n.M("notice.password_set"), h.web.From(c)); err != nil {
		return err
	}
	h.web.RotateBrowser(c) // a privilege change: forms made before it die
	h.audit(c, storage.AuditEvent{UserID: u.ID, Email: u.Email, Event: "password.set", Reason: "set-password link"})
	return h.renderSetPassword(c, http.StatusOK, i18n.Msg{}, setPasswordData{Done: true, Email: u.Email})
}
