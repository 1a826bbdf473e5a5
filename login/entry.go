package login

import (
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/login/flow"
	"github.com/latchkey/latchkey/login/internal/web"
)

// Entry points: /signup and /forgot work when opened directly, without a
// sign-in in progress, so that people can be linked to them. Both
// continue a sign-in (they hand it back to the dispatcher when done), so
// opening one starts the sign-in of the account pages (GET /account, an
// ordinary relying party of the OP) and remembers, in a short-lived
// cookie, where that sign-in goes first: when the dispatcher first sees
// it at the identifier step, it sends the browser to the sign-up or
// reset page instead. The person ends on the account pages, signed in.
//
// The cookie only chooses between pages anyone can open; it is honoured
// once, for the account pages' own sign-in, and only at the identifier
// step (a browser already signed in goes straight to its account).

const (
	entrySignup = "signup"
	entryForgot = "forgot"
	// entryFor: an entry point's sign-in must reach the dispatcher within
	// this time (it is one round trip through the OP).
	entryFor = 5 * time.Minute
)

// accountStart is where the account pages start their sign-in.
const accountStart = "/account"

// enter is GET /signup or /forgot without a sign-in: remember where to
// go, and start the account pages' sign-in.
func (h *Handler) enter(c echo.Context, entry string) error {
	h.web.SetCookie(c, web.CookieEntry, entry, entryFor)
	return c.Redirect(http.StatusSeeOther, accountStart)
}

// entered is where the dispatcher sends a sign-in that an entry point
// started ("" for any other): the cookie is used up at the first look.
func (h *Handler) entered(c echo.Context, s *signin) string {
	entry := h.web.CookieValue(c, web.CookieEntry)
	if entry == "" {
		return ""
	}
	h.web.ClearCookie(c, web.CookieEntry)
	if h.cfg.ReconfirmClientID == "" || s.ar.ClientID != h.cfg.ReconfirmClientID || h.reconfirming(s) ||
		s.req.Step != flow.StepIdentify || s.ar.UserID != "" {
		return ""
	}
	q := "?id=" + url.QueryEscape(s.ar.ID)
	switch entry {
	case entrySignup:
		if h.cfg.SignupEnabled {
			return "/signup" + q
		}
	case entryForgot:
		return "/forgot" + q
	}
	return ""
}
