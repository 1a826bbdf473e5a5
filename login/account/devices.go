package account

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/login/i18n"
	"github.com/latchkey/latchkey/login/internal/web"
	"github.com/latchkey/latchkey/storage"
)

// The Devices section (SPEC 2): each trusted browser, each signed-in
// session and each product holding a refresh token, with "remove" on each
// and "Sign out everywhere else". Removing only reduces access, so it needs
// the account session but no reconfirmation; it takes effect at once (the
// next request of the removed browser or product finds nothing).

// deviceRow is one line of the Devices page: what it is and since when,
// as one message ("Firefox on Windows, trusted until 2 Dec, last used
// yesterday").
type deviceRow struct {
	ID      string
	Text    i18n.Msg
	Current bool
}

type devicesData struct {
	Nav      string
	Devices  []deviceRow
	Sessions []deviceRow
	Products []deviceRow
	Consents []deviceRow
}

// devicesPage is GET /account/devices.
func (h *Handler) devicesPage(c echo.Context, a *account) error {
	d, err := h.devicesData(c, a)
	if err != nil {
		return err
	}
	notice, errMsg := doneNotice(c)
	return h.render(c, http.StatusOK, "account_devices", web.Page{Title: i18n.M("account.devices.title"), Notice: notice, Error: errMsg, Data: d})
}

func (h *Handler) devicesData(c echo.Context, a *account) (devicesData, error) {
	ctx := c.Request().Context()
	// Days ("yesterday", "2 Dec") are counted where the user is.
	now := a.in(h.now())
	d := devicesData{Nav: "devices"}
	devs, err := h.store.ListTrustedDevices(ctx, a.user.ID)
	if err != nil {
		return d, err
	}
	mine := h.thisDevice(c, devs)
	for _, td := range devs {
		if now.After(td.ExpiresAt) {
			continue // no longer trusted; kept only for the re-verification rule
		}
		d.Devices = append(d.Devices, deviceRow{ID: td.ID, Current: td.ID == mine,
			Text: i18n.M("account.devices.device_row", "Browser", web.BrowserMsg(td.UserAgent),
				"Until", i18n.ShortDate{T: td.ExpiresAt, Now: now}, "LastUsed", i18n.RelativeDay{T: td.LastUsedAt, Now: now})})
	}
	sessions, err := h.store.ListSessions(ctx, a.user.ID)
	if err != nil {
		return d, err
	}
	for _, s := range sessions {
		if !h.sessionAlive(s, now) {
			continue
		}
		text := i18n.M("account.devices.session_row", "Browser", web.BrowserMsg(s.UserAgent),
			"SignedIn", i18n.RelativeDay{T: s.CreatedAt, Now: now}, "LastActive", i18n.RelativeDay{T: s.LastSeenAt, Now: now})
		if s.IP != "" {
			text = i18n.M("account.devices.session_row_ip", "Browser", web.BrowserMsg(s.UserAgent),
				"SignedIn", i18n.RelativeDay{T: s.CreatedAt, Now: now}, "LastActive", i18n.RelativeDay{T: s.LastSeenAt, Now: now}, "IP", s.IP)
		}
		d.Sessions = append(d.Sessions, deviceRow{ID: s.ID, Current: s.ID == a.sess.ID, Text: text})
	}
	fams, err := h.store.ListRefreshFamilies(ctx, a.user.ID)
	if err != nil {
		return d, err
	}
	names := map[string]any{}
	for _, f := range fams {
		if !f.ExpiresAt.IsZero() && now.After(f.ExpiresAt) {
			continue
		}
		name, ok := names[f.ClientID]
		if !ok {
			if name, err = h.clientName(ctx, f.ClientID); err != nil {
				return d, err
			}
			names[f.ClientID] = name
		}
		d.Products = append(d.Products, deviceRow{ID: f.FamilyID, Text: i18n.M("account.devices.product_row", "Product", name,
			"Since", i18n.ShortDate{T: f.FamilyCreatedAt, Now: now}, "LastUsed", i18n.RelativeDay{T: f.LastUsedAt, Now: now})})
	}
	// What the user allowed third-party products (issue 12 item 11).
	consents, err := h.store.ListConsents(ctx, a.user.ID)
	if err != nil {
		return d, err
	}
	for _, cs := range consents {
		name, err := h.clientName(ctx, cs.ClientID)
		if err != nil {
			return d, err
		}
		d.Consents = append(d.Consents, deviceRow{ID: cs.ClientID, Text: i18n.M("account.devices.consent_row", "Product", name,
			"Scopes", describeScopes(cs.Scopes), "Since", i18n.ShortDate{T: cs.CreatedAt, Now: now})})
	}
	return d, nil
}

// clientName is how the Devices page names a product: the built-in
// clients in the page's language, others by their name (or id).
func (h *Handler) clientName(ctx context.Context, id string) (any, error) {
	switch id {
	case ClientID:
		return i18n.M("client.account"), nil
	case DemoClientID:
		return i18n.M("client.demo"), nil
	}
	cl, err := h.store.GetClient(ctx, id)
	switch {
	case err == nil && cl.Name != "":
		return cl.Name, nil
	case err != nil && !errors.Is(err, storage.ErrNotFound):
		return nil, err
	}
	return id, nil
}

// describeScopes says in words what a product was allowed (the words of
// the consent page).
func describeScopes(scopes []string) i18n.List {
	var out i18n.List
	for _, s := range []string{"openid", "profile", "email", "privacy", "offline_access"} {
		if !slices.Contains(scopes, s) {
			continue
		}
		switch s {
		case "openid":
			out = append(out, i18n.M("scope.openid"))
		case "email":
			out = append(out, i18n.M("scope.email"))
		case "profile":
			out = append(out, i18n.M("scope.profile"))
		case "offline_access":
			out = append(out, i18n.M("scope.offline_access"))
		case "privacy":
			out = append(out, i18n.M("scope.privacy"))
		}
	}
	return out
}

// devicesRemove is POST /account/devices/remove (kind, id).
func (h *Handler) devicesRemove(c echo.Context, a *account) error {
	if err := h.web.CheckCSRF(c); err != nil {
		return err
	}
	ctx := c.Request().Context()
	now := h.now()
	id := c.FormValue("id")
	if id == "" || len(id) > 64 {
		return web.BadRequest(i18n.M("account.devices.choose"), errors.New("missing or oversized id"))
	}
	gone := web.BadRequest(i18n.M("account.devices.gone"), errors.New("remove: not the user's"))
	var event, done string
	var change i18n.Msg
	switch c.FormValue("kind") {
	case "device":
		if err := h.store.DeleteTrustedDevice(ctx, a.user.ID, id); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				return gone
			}
			return err
		}
		event, change, done = "device.removed", i18n.M("notice.device_removed"), "device"
	case "session":
		if id == a.sess.ID {
			return web.BadRequest(i18n.M("account.devices.current"), errors.New("remove: current session"))
		}
		sessions, err := h.store.ListSessions(ctx, a.user.ID)
		if err != nil {
			return err
		}
		found := false
		for _, s := range sessions {
			found = found || s.ID == id
		}
		if !found {
			return gone
		}
		if err := h.store.DeleteSession(ctx, id); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		h.creds.EndedSessions(ctx, a.user.ID, []string{id}, "session_removed")
		if err := h.store.RevokeRefreshTokens(ctx, storage.TokenFilter{UserID: a.user.ID, SessionID: id}, now); err != nil {
			return err
		}
		event, change, done = "session.removed", i18n.M("notice.session_removed"), "session"
	case "product":
		fams, err := h.store.ListRefreshFamilies(ctx, a.user.ID)
		if err != nil {
			return err
		}
		found := false
		for _, f := range fams {
			found = found || f.FamilyID == id
		}
		if !found {
			return gone
		}
		if err := h.store.RevokeRefreshFamily(ctx, id, now); err != nil {
			return err
		}
		event, change, done = "grant.removed", i18n.M("notice.product_removed"), "product"
	case "consent":
		// Taking a consent back also signs the product out: its refresh
		// tokens go, and the next sign-in asks again.
		if err := h.store.DeleteConsent(ctx, a.user.ID, id); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				return gone
			}
			return err
		}
		if err := h.store.RevokeRefreshTokens(ctx, storage.TokenFilter{UserID: a.user.ID, ClientID: id}, now); err != nil {
			return err
		}
		event, change, done = "consent.revoked", i18n.M("notice.consent_removed"), "product"
	default:
		return web.BadRequest(i18n.M("account.devices.choose"), errors.New("remove: bad kind"))
	}
	h.audit(c, storage.AuditEvent{UserID: a.user.ID, Email: a.user.Email, ClientID: ClientID, Event: event, Details: map[string]string{"id": id}})
	mailed := h.notify(c, a.user, change)
	return c.Redirect(http.StatusSeeOther, doneURL("/account/devices", done, mailed))
}

// devicesSignOutOthers is POST /account/devices/signout-others: every
// other session ends, the products not signed in through this browser
// lose their refresh tokens, and every other browser loses its trust.
func (h *Handler) devicesSignOutOthers(c echo.Context, a *account) error {
	if err := h.web.CheckCSRF(c); err != nil {
		return err
	}
	if err := h.revokeOthers(c, a, storage.RevokeSignOutOthers, nil, i18n.M("notice.signed_out_others")); err != nil {
		return err
	}
	h.audit(c, storage.AuditEvent{UserID: a.user.ID, Email: a.user.Email, ClientID: ClientID, Event: "sessions.revoked", Reason: "sign out everywhere else"})
	return c.Redirect(http.StatusSeeOther, doneURL("/account/devices", "others", true))
}
