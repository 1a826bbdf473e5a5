package login

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/login/i18n"
	"github.com/latchkey/latchkey/login/internal/web"
	"github.com/latchkey/latchkey/storage"
)

type logoutData struct {
	ID, Email string
}

// logoutPage is where the OP's end_session endpoint sends the browser
// (TerminateSessionFromRequest). With an id_token_hint for the signed-in
// user the sign-out happens at once; otherwise we ask, so that a link
// cannot sign people out behind their back.
func (h *Handler) logoutPage(c echo.Context) error {
	ctx := c.Request().Context()
	id := c.QueryParam("id")
	var lr storage.LogoutRequest
	if id != "" {
		var err error
		if lr, err = h.store.GetLogoutRequest(ctx, id, h.now()); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				return web.BadRequest(i18n.M("logout.link_expired"), err)
			}
			return err
		}
	}
	sess, err := h.currentSession(c)
	if err != nil {
		return err
	}
	if sess.ID == "" {
		// Nothing to end in this browser: go where the client asked.
		return h.finishLogout(c, lr, storage.Session{})
	}
	if lr.UserID != "" && lr.UserID == sess.UserID {
		return h.signOut(c, lr, sess)
	}
	d := logoutData{ID: id}
	if u, err := h.store.GetUser(ctx, sess.UserID); err == nil {
		d.Email = u.Email
	}
	return h.render(c, http.StatusOK, "logout", web.Page{Title: i18n.M("logout.title"), Data: d})
}

func (h *Handler) logoutSubmit(c echo.Context) error {
	if err := h.web.CheckCSRF(c); err != nil {
		return err
	}
	ctx := c.Request().Context()
	var lr storage.LogoutRequest
	if id := c.FormValue("id"); id != "" {
		var err error
		if lr, err = h.store.GetLogoutRequest(ctx, id, h.now()); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
	}
	sess, err := h.currentSession(c)
	if err != nil {
		return err
	}
	return h.signOut(c, lr, sess)
}

// signOut ends this browser's session. The trusted-device record stays
// (SPEC 2: sign-out ends the session, not the browser's trust). Refresh
// tokens that the signing-out client holds through this session are
// revoked; other products keep theirs (they are listed, and removable, on
// the Devices page).
func (h *Handler) signOut(c echo.Context, lr storage.LogoutRequest, sess storage.Session) error {
	ctx := c.Request().Context()
	now := h.now()
	if sess.ID != "" {
		if err := h.store.DeleteSession(ctx, sess.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		h.creds.EndedSessions(ctx, sess.UserID, []string{sess.ID}, "signout")
		if lr.ClientID != "" {
			if err := h.store.RevokeRefreshTokens(ctx, storage.TokenFilter{SessionID: sess.ID, ClientID: lr.ClientID}, now); err != nil {
				return err
			}
		}
		h.audit(c, storage.AuditEvent{UserID: sess.UserID, ClientID: lr.ClientID, Event: "signout"})
	}
	h.web.ClearCookie(c, web.CookieSession)
	// A new handle with no history: nothing bound to the old one (a CSRF
	// token, a sign-in in flight) follows the browser past its sign-out.
	h.web.ResetBrowser(c)
	return h.finishLogout(c, lr, sess)
}

func (h *Handler) finishLogout(c echo.Context, lr storage.LogoutRequest, sess storage.Session) error {
	if lr.ID != "" {
		_ = h.store.DeleteLogoutRequest(c.Request().Context(), lr.ID)
		if lr.RedirectURI != "" && !strings.HasPrefix(lr.RedirectURI, "/logout") {
			// The product takes the browser back: no page to offer the
			// upstream sign-out on.
			h.web.ClearCookie(c, web.CookieUpstream)
			// Validated by the OP against the client's registered
			// post_logout_redirect_uris (state appended).
			h.redirectAway(c, lr.RedirectURI)
			return nil
		}
	}
	if userID, _, ok := h.readUpstreamLogout(c); ok && userID != sess.UserID {
		h.web.ClearCookie(c, web.CookieUpstream) // another user's: not ours to offer
	}
	return c.Redirect(http.StatusSeeOther, "/logout/done")
}

// logoutDoneData: an SSO user may also sign out of their organisation.
type logoutDoneData struct {
	UpstreamOrg, UpstreamURL string
}

func (h *Handler) logoutDone(c echo.Context) error {
	var d logoutDoneData
	if userID, l, ok := h.readUpstreamLogout(c); ok {
		// Offered once, and only when that user is signed out here.
		h.web.ClearCookie(c, web.CookieUpstream)
		if sess, err := h.currentSession(c); err == nil && sess.UserID != userID {
			d = logoutDoneData{UpstreamOrg: l.Org, UpstreamURL: l.URL}
		}
	}
	return h.render(c, http.StatusOK, "logout_done", web.Page{Title: i18n.M("logout.done.title"), Data: d})
}
