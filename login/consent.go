package login

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/login/flow"
	"github.com/latchkey/latchkey/login/i18n"
	"github.com/latchkey/latchkey/login/internal/web"
	"github.com/latchkey/latchkey/storage"
)

// Consent for third-party clients (SPEC 8, issue 12 item 11): once the
// user is signed in, a client marked third_party shows what it asks for;
// the answer is remembered per user, client and scopes (storage
// consents), listed on the Devices page and revocable there.
// prompt=consent always asks; first-party clients never do
// (flow.ConsentRequired).

type consentData struct {
	ID, Email  string
	Client     any    // clientName
	ClientLogo string // clientLogo
	Scopes     []i18n.Msg
}

// consentRequired applies flow.ConsentRequired to a signed-in request.
// Device requests confirm on their own page (/device/confirm).
func (h *Handler) consentRequired(c echo.Context, s *signin) (bool, error) {
	if !s.client.ThirdParty || isDeviceRequest(s.ar) {
		return false, nil
	}
	g, err := h.store.GetConsent(c.Request().Context(), s.user.ID, s.client.ID)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return false, err
	}
	return flow.ConsentRequired(flow.ConsentFacts{
		ThirdParty: true, Prompt: s.ar.Prompt, Requested: s.ar.Scopes, Granted: g.Scopes, AnsweredAt: s.ar.ConsentAt,
	}), nil
}

// consentStep runs when the sign-in is otherwise done: it asks, or with
// prompt=none fails with consent_required (OIDC Core 3.1.2.6). done
// reports that it answered.
func (h *Handler) consentStep(c echo.Context, s *signin) (done bool, err error) {
	need, err := h.consentRequired(c, s)
	if err != nil || !need {
		return false, err
	}
	for _, p := range s.ar.Prompt {
		if p == "none" {
			h.audit(c, storage.AuditEvent{UserID: s.user.ID, ClientID: s.ar.ClientID, Event: "signin.failure", Reason: "consent_required"})
			h.op.RespondError(c.Response(), c.Request(), s.ar, "consent_required", "the user has not allowed this application yet")
			return true, nil
		}
	}
	return true, c.Redirect(http.StatusSeeOther, "/login/consent?id="+s.ar.ID)
}

// consentAt loads a sign-in that is at the consent question, or sends the
// browser back to the dispatcher.
func (h *Handler) consentAt(c echo.Context) (*signin, bool, error) {
	s, ok, err := h.step(c, flow.StepDone)
	if !ok {
		return s, false, err
	}
	need, err := h.consentRequired(c, s)
	if err != nil {
		return nil, false, err
	}
	if !need {
		return s, false, h.toDispatcher(c, s.ar.ID)
	}
	return s, true, nil
}

func (h *Handler) consentPage(c echo.Context) error {
	s, ok, err := h.consentAt(c)
	if !ok {
		return err
	}
	name := h.clientName(s.client, true)
	d := consentData{ID: s.ar.ID, Client: name, Email: s.user.Email, Scopes: describeScopes(s.ar.Scopes)}
	page := web.Page{Title: i18n.M("consent.title", "Client", name), Data: &d}
	d.ClientLogo = clientLogo(s.client, &page)
	return h.render(c, http.StatusOK, "consent", page)
}

func (h *Handler) consentSubmit(c echo.Context) error {
	if err := h.web.CheckCSRF(c); err != nil {
		return err
	}
	s, ok, err := h.consentAt(c)
	if !ok {
		return err
	}
	switch c.FormValue("choice") {
	case "allow":
		ctx := c.Request().Context()
		now := h.now()
		if _, err := h.store.GrantConsent(ctx, s.user.ID, s.client.ID, s.ar.Scopes, now); err != nil {
			return err
		}
		if _, err := h.store.UpdateAuthRequest(ctx, s.ar.ID, func(a *storage.AuthRequest) error {
			a.ConsentAt = now
			return nil
		}); err != nil {
			return err
		}
		h.audit(c, storage.AuditEvent{UserID: s.user.ID, Email: s.user.Email, ClientID: s.client.ID, Event: "consent.granted",
			Reason: strings.Join(s.ar.Scopes, " ")})
		return h.toDispatcher(c, s.ar.ID)
	case "deny":
		h.audit(c, storage.AuditEvent{UserID: s.user.ID, Email: s.user.Email, ClientID: s.client.ID, Event: "consent.denied",
			Reason: strings.Join(s.ar.Scopes, " ")})
		h.op.RespondError(c.Response(), c.Request(), s.ar, "access_denied", "the user did not allow the application")
		return nil
	}
	return web.BadRequest(i18n.M("error.choose_allow_deny"), errors.New("consent: bad choice"))
}
