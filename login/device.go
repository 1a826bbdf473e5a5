package login

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/login/i18n"
	"github.com/latchkey/latchkey/login/internal/creds"
	"github.com/latchkey/latchkey/login/internal/web"
	"github.com/latchkey/latchkey/storage"
)

// The RFC 8628 verification page. A device shows a user code; the user
// types it here (case-insensitive, dashes optional), signs in through the
// ordinary dispatcher — the same policy, second step included — then sees
// which product asks and for what, and approves or denies. Guessing user
// codes is throttled per address, for everybody without a session at
// once, and per device authorization (creds.FindDeviceAuthorization).
//
// The sign-in is an auth request of the device's client whose
// ResponseType is "device" and whose State holds the device authorization
// id; it has no redirect URI, so it can only finish here.

const responseTypeDevice = "device"

func isDeviceRequest(ar storage.AuthRequest) bool { return ar.ResponseType == responseTypeDevice }

type deviceData struct {
	UserCode string
	ID       string
	Client   any // clientName
	Scopes   []i18n.Msg
	Email    string
}

var msgDeviceTitle = i18n.M("device.title")

func (h *Handler) devicePage(c echo.Context) error {
	return h.render(c, http.StatusOK, "device", web.Page{Title: msgDeviceTitle, Data: deviceData{UserCode: c.QueryParam("user_code")}})
}

// deviceSubmit checks the user code and starts the sign-in for it.
func (h *Handler) deviceSubmit(c echo.Context) error {
	if err := h.web.CheckCSRF(c); err != nil {
		return err
	}
	ctx := c.Request().Context()
	now := h.now()
	raw := c.FormValue("user_code")
	// A signed-in browser is not held up by guesses from everybody else
	// (the global limit), so nobody can lock users out of this page.
	sess, err := h.currentSession(c)
	if err != nil {
		return err
	}
	try, wait, err := h.creds.Try(ctx, creds.DeviceLimits(web.ClientIP(c), sess.ID != "")...)
	if err != nil {
		return err
	} else if wait > 0 {
		msg := web.TooMany(wait)
		if sess.ID == "" {
			msg = i18n.M("device.too_many_sign_in", "Wait", msg.Args[1])
		}
		return h.render(c, http.StatusTooManyRequests, "device", web.Page{Title: msgDeviceTitle, Error: msg, Data: deviceData{UserCode: raw}})
	}
	d, found, err := h.creds.FindDeviceAuthorization(ctx, raw)
	if err != nil {
		return err
	}
	if !found || now.After(d.ExpiresAt) {
		return h.render(c, http.StatusUnprocessableEntity, "device", web.Page{Title: msgDeviceTitle,
			Error: i18n.M("device.wrong"), Data: deviceData{UserCode: raw}})
	}
	try.Succeeded(ctx)
	ar := storage.AuthRequest{
		ID: storage.NewID(), ClientID: d.ClientID, Scopes: d.Scopes, ResponseType: responseTypeDevice,
		State: d.ID, CreatedAt: now, ExpiresAt: d.ExpiresAt,
		BrowserHash: h.web.BoundBrowserHash(c),
	}
	if err := h.store.CreateAuthRequest(ctx, ar); err != nil {
		return err
	}
	return h.toDispatcher(c, ar.ID)
}

// deviceConfirmPage is where a finished device sign-in lands (instead of a
// redirect to a client): approve or deny.
func (h *Handler) deviceConfirmPage(c echo.Context) error {
	ar, d, cl, err := h.deviceSignin(c, c.QueryParam("id"))
	if err != nil {
		return err
	}
	u, _ := h.store.GetUser(c.Request().Context(), ar.UserID)
	name := h.clientName(cl, true)
	return h.render(c, http.StatusOK, "device_confirm", web.Page{Title: i18n.M("consent.title", "Client", name), Data: deviceData{
		ID: ar.ID, Client: name, Scopes: describeScopes(d.Scopes), Email: u.Email,
	}})
}

func (h *Handler) deviceConfirmSubmit(c echo.Context) error {
	if err := h.web.CheckCSRF(c); err != nil {
		return err
	}
	ar, d, cl, err := h.deviceSignin(c, c.FormValue("id"))
	if err != nil {
		return err
	}
	approve := c.FormValue("choice") == "approve"
	if !approve && c.FormValue("choice") != "deny" {
		return web.BadRequest(i18n.M("error.choose_allow_deny"), nil)
	}
	now := h.now()
	if _, err := h.store.UpdateDeviceAuthorization(c.Request().Context(), d.ID, func(x *storage.DeviceAuthorization) error {
		if x.State != storage.DevicePending || now.After(x.ExpiresAt) {
			return web.BadRequest(i18n.M("device.answered"), nil)
		}
		if approve {
			x.State = storage.DeviceApproved
			x.UserID, x.AMR, x.ACR, x.AuthTime, x.SessionID = ar.UserID, ar.AMR, ar.ACR, ar.AuthTime, ar.SessionID
		} else {
			x.State = storage.DeviceDenied
		}
		return nil
	}); err != nil {
		return err
	}
	event, msg := "device.approved", i18n.M("device.approved")
	if !approve {
		event, msg = "device.denied", i18n.M("device.denied")
	}
	h.audit(c, storage.AuditEvent{UserID: ar.UserID, ClientID: cl.ID, Event: event})
	return h.render(c, http.StatusOK, "error", web.Page{Title: i18n.M("device.done_title"), Data: web.ErrorData{Message: msg}})
}

// deviceSignin loads a finished device sign-in of this browser.
func (h *Handler) deviceSignin(c echo.Context, id string) (storage.AuthRequest, storage.DeviceAuthorization, storage.Client, error) {
	s, err := h.load(c, id, false)
	if err != nil {
		return storage.AuthRequest{}, storage.DeviceAuthorization{}, storage.Client{}, err
	}
	if !isDeviceRequest(s.ar) || !s.ar.Done {
		return storage.AuthRequest{}, storage.DeviceAuthorization{}, storage.Client{}, web.BadRequest(web.MsgRequestGone, errors.New("not a finished device sign-in"))
	}
	d, err := h.store.GetDeviceAuthorization(c.Request().Context(), s.ar.State)
	if err != nil {
		return storage.AuthRequest{}, storage.DeviceAuthorization{}, storage.Client{}, web.BadRequest(web.MsgRequestGone, err)
	}
	return s.ar, d, s.client, nil
}

// describeScopes says in words what a product will get.
func describeScopes(scopes []string) []i18n.Msg {
	var out []i18n.Msg
	for _, s := range scopes {
		switch s {
		case "openid":
			out = append(out, i18n.M("scope.openid"))
		case "email":
			out = append(out, i18n.M("scope.email"))
		case "profile":
			out = append(out, i18n.M("scope.profile"))
		case "offline_access":
			out = append(out, i18n.M("scope.offline_access_device"))
		case "privacy":
			out = append(out, i18n.M("scope.privacy"))
		}
	}
	return out
}

// clientName is how a page names a product: its name, the built-in
// clients' in the page's language (Config.ClientNames), else (orID) its
// id, or "".
func (h *Handler) clientName(cl storage.Client, orID bool) any {
	if m, ok := h.cfg.ClientNames[cl.ID]; ok {
		return m
	}
	if cl.Name == "" && orID {
		return cl.ID
	}
	return cl.Name
}

// clientLogo is the URL of the product's logo for a page that names it
// ("" for none), and lets the page's CSP load images from its origin.
func clientLogo(cl storage.Client, page *web.Page) string {
	origin, ok := web.ImageOrigin(cl.LogoURI)
	if !ok {
		return ""
	}
	page.Images = append(page.Images, origin)
	return cl.LogoURI
}

func deviceConfirmURL(id string) string { return "/device/confirm?id=" + url.QueryEscape(id) }
