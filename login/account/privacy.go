package account

import (
	"context"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/login/i18n"
	"github.com/latchkey/latchkey/login/internal/web"
	"github.com/latchkey/latchkey/storage"
)

// Product privacy settings (SPEC 7): "Required data collection" is always
// on; two optional switches, off by default. Users change them here;
// products read and write them through the privacy scope and
// /api/v1/me/privacy (privacyapi.go). Changes are audited; they are not
// security changes, so they need no reconfirmation and send no mail.

type privacyData struct {
	Nav                                    string
	ProductImprovement, PersonalisedOffers bool
}

// privacyPage is GET /account/privacy.
func (h *Handler) privacyPage(c echo.Context, a *account) error {
	notice, errMsg := doneNotice(c)
	return h.render(c, http.StatusOK, "account_privacy", web.Page{Title: i18n.M("account.privacy.title"), Notice: notice, Error: errMsg,
		Data: privacyData{Nav: "privacy", ProductImprovement: a.user.PrivacyProductImprovement, PersonalisedOffers: a.user.PrivacyPersonalisedOffers}})
}

// privacySubmit is POST /account/privacy. An unticked checkbox is absent
// from the form: absent means off.
func (h *Handler) privacySubmit(c echo.Context, a *account) error {
	if err := h.web.CheckCSRF(c); err != nil {
		return err
	}
	pi, err := formSwitch(c.FormValue("product_improvement"))
	if err != nil {
		return err
	}
	po, err := formSwitch(c.FormValue("personalised_offers"))
	if err != nil {
		return err
	}
	if _, err := h.setPrivacy(c.Request().Context(), c, a.user.ID, &pi, &po, ClientID); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/account/privacy?done=privacy")
}

func formSwitch(v string) (bool, error) {
	switch v {
	case "":
		return false, nil
	case "on", "yes", "true":
		return true, nil
	}
	return false, web.BadRequest(i18n.M("error.form_unreadable"), nil)
}

// setPrivacy changes what is given (nil: unchanged) in one transaction and
// audits a real change with the old and new values.
func (h *Handler) setPrivacy(ctx context.Context, c echo.Context, userID string, pi, po *bool, clientID string) (storage.User, error) {
	var before storage.User
	now := h.now()
	u, err := h.store.UpdateUser(ctx, userID, func(u *storage.User) error {
		before = *u
		if pi != nil {
			u.PrivacyProductImprovement = *pi
		}
		if po != nil {
			u.PrivacyPersonalisedOffers = *po
		}
		if u.PrivacyProductImprovement != before.PrivacyProductImprovement || u.PrivacyPersonalisedOffers != before.PrivacyPersonalisedOffers {
			u.PrivacyUpdatedAt = now
			u.UpdatedAt = now
		}
		return nil
	})
	if err != nil {
		return u, err
	}
	if u.PrivacyProductImprovement != before.PrivacyProductImprovement || u.PrivacyPersonalisedOffers != before.PrivacyPersonalisedOffers {
		h.audit(c, storage.AuditEvent{UserID: u.ID, Email: u.Email, ClientID: clientID, Event: "privacy.changed", Details: map[string]string{
			"product_improvement": strconv.FormatBool(before.PrivacyProductImprovement) + "->" + strconv.FormatBool(u.PrivacyProductImprovement),
			"personalised_offers": strconv.FormatBool(before.PrivacyPersonalisedOffers) + "->" + strconv.FormatBool(u.PrivacyPersonalisedOffers),
		}})
	}
	return u, nil
}
