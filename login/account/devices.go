package account

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/login/internal/web"
	"github.com/latchkey/latchkey/storage"
)

// The Devices section (SPEC 2): each trusted browser, each signed-in
// session and each product holding a refresh token, with "remove" on each
// and "Sign out everywhere else". Removing only reduces access, so it needs
// the account session but no reconfirmation; it takes effect at once (the
// next request of the removed browser or product finds nothing).

type deviceRow struct {
	ID, Label, Detail string
	Current           bool
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
	return h.render(c, http.StatusOK, "account_devices", web.Page{Title: "Devices", Notice: notice, Error: errMsg, Data: d})
}

func (h *Handler) devicesData(c echo.Context, a *account) (devicesData, error) {
	ctx := c.Request().Context()
	now := h.now()
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
		d.Devices = append(d.Devices, deviceRow{ID: td.ID, Label: web.DescribeBrowser(td.UserAgent), Current: td.ID == mine,
			Detail: "trusted until " + web.ShortDate(td.ExpiresAt, now) + ", last used " + web.RelativeDay(td.LastUsedAt, now)})
	}
	sessions, err := h.store.ListSessions(ctx, a.user.ID)
	if err != nil {
		return d, err
	}
	for _, s := range sessions {
		if !h.sessionAlive(s, now) {
			continue
		}
		detail := "signed in " + web.RelativeDay(s.CreatedAt, now) + ", last active " + web.RelativeDay(s.LastSeenAt, now)
		if s.IP != "" {
			detail += ", from " + s.IP
		}
		d.Sessions = append(d.Sessions, deviceRow{ID: s.ID, Label: web.DescribeBrowser(s.UserAgent), Current: s.ID == a.sess.ID, Detail: detail})
	}
	fams, err := h.store.ListRefreshFamilies(ctx, a.user.ID)
	if err != nil {
		return d, err
	}
	names := map[string]string{}
	for _, f := range fams {
		if !f.ExpiresAt.IsZero() && now.After(f.ExpiresAt) {
			continue
		}
		name, ok := names[f.ClientID]
		if !ok {
			name = f.ClientID
			if cl, err := h.store.GetClient(ctx, f.ClientID); err == nil && cl.Name != "" {
				name = cl.Name
			} else if err != nil && !errors.Is(err, storage.ErrNotFound) {
				return d, err
			}
			names[f.ClientID] = name
		}
		d.Products = append(d.Products, deviceRow{ID: f.FamilyID, Label: name,
			Detail: "since " + web.ShortDate(f.FamilyCreatedAt, now) + ", last used " + web.RelativeDay(f.LastUsedAt, now)})
	}
	// What the user allowed third-party products (issue 12 item 11).
	consents, err := h.store.ListConsents(ctx, a.user.ID)
	if err != nil {
		return d, err
	}
	for _, cs := range consents {
		name := cs.ClientID
		if cl, err := h.store.GetClient(ctx, cs.ClientID); err == nil && cl.Name != "" {
			name = cl.Name
		}
		d.Consents = append(d.Consents, deviceRow{ID: cs.ClientID, Label: name,
			Detail: "allowed to " + strings.Join(describeScopes(cs.Scopes), ", ") + " since " + web.ShortDate(cs.CreatedAt, now)})
	}
	return d, nil
}

// describeScopes says in words what a product was allowed (the words of
// the consent page).
func describeScopes(scopes []string) []string {
	var out []string
	for _, s := range []string{"openid", "profile", "email", "privacy", "offline_access"} {
		if !slices.Contains(scopes, s) {
			continue
		}
		switch s {
		case "openid":
			out = append(out, "confirm who you are")
		case "email":
			out = append(out, "see your email address")
		case "profile":
			out = append(out, "see your name")
		case "offline_access":
			out = append(out, "stay signed in until you remove it")
		case "privacy":
			out = append(out, "read and change your privacy settings")
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
		return web.BadRequest("Choose something to remove.", errors.New("missing or oversized id"))
	}
	gone := web.BadRequest("That is not on your Devices list any more. Reload the page.", errors.New("remove: not the user's"))
	var event, change, done string
	switch c.FormValue("kind") {
	case "device":
		if err := h.store.DeleteTrustedDevice(ctx, a.user.ID, id); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				return gone
			}
			return err
		}
		event, change, done = "device.removed", "Trusted browser removed", "device"
	case "session":
		if id == a.sess.ID {
			return web.BadRequest("This is the browser you are using: use Sign out instead.", errors.New("remove: current session"))
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
		event, change, done = "session.removed", "Signed out of a session", "session"
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
		event, change, done = "grant.removed", "Product access removed", "product"
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
		event, change, done = "consent.revoked", "Product permission removed", "product"
	default:
		return web.BadRequest("Choose something to remove.", errors.New("remove: bad kind"))
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
	if err := h.revokeOthers(c, a, storage.RevokeSignOutOthers, nil, "Signed out of other sessions"); err != nil {
		return err
	}
	h.audit(c, storage.AuditEvent{UserID: a.user.ID, Email: a.user.Email, ClientID: ClientID, Event: "sessions.revoked", Reason: "sign out everywhere else"})
	return c.Redirect(http.StatusSeeOther, doneURL("/account/devices", "others", true))
}
