package account

import (
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/login/i18n"
	"github.com/latchkey/latchkey/login/internal/creds"
	"github.com/latchkey/latchkey/login/internal/web"
	"github.com/latchkey/latchkey/storage"
)

// Passkeys on the security page (SPEC 1.3, 3): set one up (after the
// reconfirmation, named by the user), see when each was added and last
// used, remove one; several per account. Like every 2-step change, adding
// or removing one is audited, mailed about, and ends the other sessions
// and every trusted browser. The ceremony is login/internal/creds'; the
// browser side is the passkey script (the page works without it for
// everything but the set-up, and says so).

type passkeyRow struct {
	ID, Name            string
	CreatedAt, LastUsed time.Time
	HasLastUsed, Synced bool
}

type passkeysData struct {
	Nav      string
	Passkeys []passkeyRow
	// Options are the set-up ceremony's (JSON); Name what was typed.
	Options, Name string
	Max           int
}

func passkeyRows(a *account, pks []storage.Passkey) []passkeyRow {
	rows := make([]passkeyRow, 0, len(pks))
	for _, p := range pks {
		r := passkeyRow{ID: p.ID, Name: p.Name, CreatedAt: a.in(p.CreatedAt), LastUsed: a.in(p.LastUsedAt), HasLastUsed: !p.LastUsedAt.IsZero()}
		r.Synced = p.BackupEligible
		rows = append(rows, r)
	}
	return rows
}

// passkeysPage is GET /account/security/passkeys ("Set up" / "Manage").
func (h *Handler) passkeysPage(c echo.Context, a *account) error {
	if !h.creds.PasskeysEnabled() {
		return c.Redirect(http.StatusSeeOther, "/account/security")
	}
	return h.renderPasskeys(c, a, http.StatusOK, i18n.Msg{}, "")
}

func (h *Handler) renderPasskeys(c echo.Context, a *account, status int, errMsg i18n.Msg, name string) error {
	ctx := c.Request().Context()
	pks, err := h.creds.Passkeys(ctx, a.user.ID)
	if err != nil {
		return err
	}
	opts, err := h.creds.BeginPasskeyRegistration(ctx, a.user, a.sess.ID, h.web.BoundBrowserHash(c))
	if err != nil {
		return err
	}
	notice, doneErr := doneNotice(c)
	if errMsg.IsZero() {
		errMsg = doneErr
	}
	return h.render(c, status, "account_passkeys", web.Page{Title: i18n.M("account.passkeys.title"), Error: errMsg, Notice: notice, Script: "passkey.js",
		Data: passkeysData{Nav: "security", Passkeys: passkeyRows(a, pks), Options: opts, Name: name, Max: creds.MaxPasskeyName}})
}

// passkeyAdd is POST /account/security/passkeys: name, credential (the
// browser's answer to the set-up ceremony of this page).
func (h *Handler) passkeyAdd(c echo.Context, a *account) error {
	if !h.creds.PasskeysEnabled() {
		return c.Redirect(http.StatusSeeOther, "/account/security")
	}
	ctx := c.Request().Context()
	name := c.FormValue("name")
	pk, err := h.creds.FinishPasskeyRegistration(ctx, a.user, a.sess.ID, h.web.BrowserHash(c), name, c.FormValue("credential"))
	switch {
	case errors.Is(err, creds.ErrPasskeyExpired):
		h.log.Info("passkey set-up refused", "err", err)
		return h.renderPasskeys(c, a, http.StatusUnprocessableEntity, i18n.M("account.passkeys.expired"), name)
	case errors.Is(err, creds.ErrPasskeyRefused):
		h.log.Info("passkey set-up refused", "err", err)
		h.audit(c, storage.AuditEvent{UserID: a.user.ID, Email: a.user.Email, ClientID: ClientID, Event: "passkey.add_failed", Reason: err.Error()})
		return h.renderPasskeys(c, a, http.StatusUnprocessableEntity, i18n.M("account.passkeys.refused"), name)
	case err != nil:
		return err
	}
	if err := h.revokeOthers(c, a, storage.RevokeSecondStepChanged, nil, i18n.M("notice.passkey_added", "Name", pk.Name)); err != nil {
		return err
	}
	h.audit(c, storage.AuditEvent{UserID: a.user.ID, Email: a.user.Email, ClientID: ClientID, Event: "passkey.added",
		Reason: pk.Name, Details: map[string]string{"passkey": pk.ID}})
	return c.Redirect(http.StatusSeeOther, doneURL("/account/security/passkeys", "passkey-added", true))
}

// passkeyRemove is POST /account/security/passkeys/remove (id).
func (h *Handler) passkeyRemove(c echo.Context, a *account) error {
	ctx := c.Request().Context()
	id := c.FormValue("id")
	if id == "" || len(id) > 64 {
		return web.BadRequest(i18n.M("account.passkeys.choose"), errors.New("missing or oversized passkey id"))
	}
	pks, err := h.creds.Passkeys(ctx, a.user.ID)
	if err != nil {
		return err
	}
	name := ""
	for _, p := range pks {
		if p.ID == id {
			name = p.Name
		}
	}
	if err := h.creds.RemovePasskey(ctx, a.user.ID, id); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return web.BadRequest(i18n.M("account.passkeys.gone"), err)
		}
		return err
	}
	if err := h.revokeOthers(c, a, storage.RevokeSecondStepChanged, nil, i18n.M("notice.passkey_removed", "Name", name)); err != nil {
		return err
	}
	h.audit(c, storage.AuditEvent{UserID: a.user.ID, Email: a.user.Email, ClientID: ClientID, Event: "passkey.removed",
		Reason: name, Details: map[string]string{"passkey": id}})
	return c.Redirect(http.StatusSeeOther, doneURL("/account/security/passkeys", "passkey-removed", true))
}
