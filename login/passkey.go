package login

import (
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/login/flow"
	"github.com/latchkey/latchkey/login/i18n"
	"github.com/latchkey/latchkey/login/internal/creds"
	"github.com/latchkey/latchkey/login/internal/web"
	"github.com/latchkey/latchkey/storage"
)

// Passkeys in the sign-in (SPEC 1.3): "Sign in with a passkey" on the
// identifier page (and the browser's passkey autofill on its email field),
// and "Use a passkey" as the second step. The page carries the ceremony's
// options; the browser's answer comes back to POST /login/passkey as a
// form field, so the step ends like every other: recorded on the auth
// request, then the dispatcher's decision. What a passkey is worth (the
// password too, acr phr, amr) is login/flow's; the ceremony and its
// checks are login/internal/creds'.

var (
	msgPasskeyRefused = i18n.M("passkey.refused")
	msgPasskeyExpired = i18n.M("passkey.expired")
)

// offerPasskey begins the ceremony a page offers (purpose: passwordless
// on the identifier page, second step on the code page), puts its options
// into *opts and lets the page load the passkey script. Without passkeys
// on this issuer it offers nothing.
func (h *Handler) offerPasskey(c echo.Context, s *signin, purpose string, opts *string, page *web.Page) error {
	if !h.creds.PasskeysEnabled() {
		return nil
	}
	var user *storage.User
	if purpose == creds.PasskeySecondStep {
		if !s.hasPasskey {
			return nil
		}
		user = &s.user
	}
	o, err := h.creds.BeginPasskeySignin(c.Request().Context(), purpose, s.ar.ID, user, h.web.BoundBrowserHash(c))
	if err != nil {
		return err
	}
	*opts, page.Script = o, "passkey.js"
	return nil
}

// passkeySubmit is POST /login/passkey: kind "passwordless" (identifier
// page) or "second" (second step), credential (the browser's answer).
func (h *Handler) passkeySubmit(c echo.Context) error {
	if err := h.web.CheckCSRF(c); err != nil {
		return err
	}
	kind := c.FormValue("kind")
	var at flow.Step
	switch kind {
	case creds.PasskeyPasswordless:
		at = flow.StepIdentify
	case creds.PasskeySecondStep:
		at = flow.StepSecondFactor
	default:
		return web.BadRequest(i18n.M("passkey.choose"), errors.New("passkey: bad kind"))
	}
	s, ok, err := h.step(c, at)
	if !ok {
		return err
	}
	if kind == creds.PasskeySecondStep && !s.hasPasskey {
		return h.toDispatcher(c, s.ar.ID)
	}
	ctx := c.Request().Context()
	userID := ""
	if kind == creds.PasskeySecondStep {
		userID = s.user.ID
	}
	res, err := h.creds.FinishPasskeySignin(ctx, kind, s.ar.ID, userID, h.web.BrowserHash(c), c.FormValue("credential"))
	if err != nil {
		expired := errors.Is(err, creds.ErrPasskeyExpired)
		if !expired && !errors.Is(err, creds.ErrPasskeyRefused) {
			return err
		}
		h.log.Info("passkey sign-in refused", "err", err, "kind", kind)
		h.audit(c, storage.AuditEvent{UserID: userID, Email: s.user.Email, ClientID: s.ar.ClientID,
			Event: "passkey.failure", Reason: kind + ": " + err.Error()})
		msg := msgPasskeyRefused
		if expired {
			msg = msgPasskeyExpired
		}
		if kind == creds.PasskeyPasswordless {
			return h.renderIdentify(c, s, http.StatusUnauthorized, msg, "")
		}
		return h.renderCode(c, s, flow.MethodPasskey, http.StatusUnauthorized, msg, i18n.Msg{})
	}
	now := h.now()
	if _, err := h.store.UpdateAuthRequest(ctx, s.ar.ID, func(a *storage.AuthRequest) error {
		if kind == creds.PasskeyPasswordless {
			// The passkey names the user and, verified, stands for the
			// password (login/flow decides what it is worth).
			a.UserID, a.PasswordAt = res.UserID, time.Time{}
			a.FederatedAt, a.UpstreamAuthTime, a.UpstreamAMR = time.Time{}, time.Time{}, nil
		}
		a.SecondFactorAt, a.SecondFactorMethod = now, string(flow.MethodPasskey)
		a.PasskeyAt, a.PasskeyUserVerified, a.PasskeyBackupEligible = now, res.UserVerified, res.BackupEligible
		return nil
	}); err != nil {
		return err
	}
	// As after a code: this browser has completed a second step.
	h.deviceCookie(c)
	u := s.user
	if kind == creds.PasskeyPasswordless {
		if u, err = h.store.GetUser(ctx, res.UserID); err != nil {
			return err
		}
	}
	h.audit(c, storage.AuditEvent{UserID: u.ID, Email: u.Email, ClientID: s.ar.ClientID,
		Event: "secondfactor.success", Reason: string(flow.MethodPasskey) + " " + kind + reasonsSuffix(s.req.Reasons),
		Details: map[string]string{"passkey": res.PasskeyID}})
	return h.advanceSignin(c, s.ar.ID)
}
