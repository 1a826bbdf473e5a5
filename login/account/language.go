package account

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/login/i18n"
	"github.com/latchkey/latchkey/login/internal/web"
	"github.com/latchkey/latchkey/storage"
)

// Language and region (issue 14): the language of the pages and the mails
// (storage.User.Language; "" follows the browser) and the time zone of
// the times they show (storage.User.TimeZone; "" is UTC). Like the
// privacy settings they are not security changes: no reconfirmation, no
// mail; a change is audited.

type languageOption struct {
	Tag, Name string
	Selected  bool
}

type zoneOption struct {
	Zone, Label, Offset string
	Selected            bool
}

type languageData struct {
	Nav       string
	Languages []languageOption
	Zones     []zoneOption
}

// languagePage is GET /account/language.
func (h *Handler) languagePage(c echo.Context, a *account) error {
	return h.renderLanguage(c, a, http.StatusOK, i18n.Msg{})
}

func (h *Handler) renderLanguage(c echo.Context, a *account, status int, errMsg i18n.Msg) error {
	langs := h.web.Languages()
	d := languageData{Nav: "language"}
	for _, l := range langs.Offered() {
		// Each language in its own words ("Deutsch"), whatever the page's.
		d.Languages = append(d.Languages, languageOption{Tag: l, Name: langs.Bundle().Localizer(l).T("language.self"),
			Selected: l == a.user.Language})
	}
	now := h.now()
	for _, z := range i18n.TimeZones() {
		_, off := now.In(i18n.Location(z)).Zone()
		sign := "+"
		if off < 0 {
			sign, off = "-", -off
		}
		d.Zones = append(d.Zones, zoneOption{Zone: z, Label: strings.ReplaceAll(z, "_", " "),
			Offset: fmt.Sprintf("UTC%s%02d:%02d", sign, off/3600, off%3600/60), Selected: z == a.user.TimeZone})
	}
	notice, doneErr := doneNotice(c)
	if errMsg.IsZero() {
		errMsg = doneErr
	}
	return h.render(c, status, "account_language", web.Page{Title: i18n.M("account.language.title"), Notice: notice, Error: errMsg, Data: d})
}

// languageSubmit is POST /account/language: language, time_zone (each ""
// or one of the lists).
func (h *Handler) languageSubmit(c echo.Context, a *account) error {
	if err := h.web.CheckCSRF(c); err != nil {
		return err
	}
	lang, zone := c.FormValue("language"), c.FormValue("time_zone")
	if (lang != "" && !slices.Contains(h.web.Languages().Offered(), lang)) || (zone != "" && !slices.Contains(i18n.TimeZones(), zone)) {
		return h.renderLanguage(c, a, http.StatusUnprocessableEntity, i18n.M("account.language.invalid"))
	}
	before := a.user
	u, err := h.store.UpdateUser(c.Request().Context(), a.user.ID, func(u *storage.User) error {
		u.Language, u.TimeZone = lang, zone
		if before.Language != lang || before.TimeZone != zone {
			u.UpdatedAt = h.now()
		}
		return nil
	})
	if err != nil {
		return err
	}
	if before.Language != u.Language || before.TimeZone != u.TimeZone {
		h.audit(c, storage.AuditEvent{UserID: u.ID, Email: u.Email, ClientID: ClientID, Event: "account.language_changed", Details: map[string]string{
			"language": before.Language + "->" + u.Language, "time_zone": before.TimeZone + "->" + u.TimeZone,
		}})
	}
	return c.Redirect(http.StatusSeeOther, "/account/language?done=language")
}
