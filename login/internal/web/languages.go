package web

import (
	"html/template"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/login/i18n"
)

// Each page is in the language login/i18n's Chooser picks from what the
// request says (i18n.Prefs): the product's ui_locales and the account's
// saved language, which the handlers set once they know them
// (SetUILocales, SetAccountLanguage), then the browser's Accept-Language,
// then the configured default. Handlers never hold text: they pass
// message ids and arguments (i18n.Msg) and the templates render them with
// the page's localizer (the t, tn and msg functions).

// Echo context keys of the language preferences and the chosen language.
const (
	ctxUILocales = "latchkey.lang.ui_locales"
	ctxAccount   = "latchkey.lang.account"
	ctxLang      = "latchkey.lang"
)

// SetUILocales records the product's ui_locales for this request's pages
// (the sign-in's, stored on its auth request).
func (k *Kit) SetUILocales(c echo.Context, locales []string) {
	c.Set(ctxUILocales, locales)
	c.Set(ctxLang, nil)
}

// SetAccountLanguage records the language saved on the account of the
// person this request is known to come from. Only for someone who proved
// who they are (a verified step, a session): an account's language shown
// to whoever typed its email would tell them the account exists.
func (k *Kit) SetAccountLanguage(c echo.Context, lang string) {
	c.Set(ctxAccount, lang)
	c.Set(ctxLang, nil)
}

// LanguagePrefs are this request's language preferences.
func (k *Kit) LanguagePrefs(c echo.Context) i18n.Prefs {
	ui, _ := c.Get(ctxUILocales).([]string)
	acct, _ := c.Get(ctxAccount).(string)
	return i18n.Prefs{UILocales: ui, Account: acct, Accept: c.Request().Header.Get("Accept-Language")}
}

// Lang is the language of this request's pages.
func (k *Kit) Lang(c echo.Context) string {
	if l, ok := c.Get(ctxLang).(string); ok && l != "" {
		return l
	}
	l := k.langs.Choose(k.LanguagePrefs(c))
	c.Set(ctxLang, l)
	return l
}

// Localizer speaks this request's language.
func (k *Kit) Localizer(c echo.Context) *i18n.Localizer { return k.langs.Bundle().Localizer(k.Lang(c)) }

// Languages is the kit's language chooser.
func (k *Kit) Languages() *i18n.Chooser { return k.langs }

// funcs are the template functions of one language:
//
//	{{t "id" "Name" value …}}   a message with named arguments
//	{{tn "id" count "Name" …}}  a plural message ({{.Count}} is count)
//	{{msg .Title}}              an i18n.Msg a handler passed
//	{{fmtTime .At}}             a date and time in At's zone ("never" if zero)
//	{{fmtDate .At}}             a date
//	{{date .At}}                a date as a message argument
//	{{backupFile .Code}}        the download of a backup code (.Name, .URL)
//
// A message whose id ends in _html is inserted as HTML (its arguments
// escaped); every other is text, escaped by html/template.
func (k *Kit) funcs(l *i18n.Localizer) template.FuncMap {
	return template.FuncMap{
		"t":       func(id string, args ...any) any { return l.HTML(i18n.M(id, args...)) },
		"tn":      func(id string, n int, args ...any) any { return l.HTML(i18n.N(id, n, args...)) },
		"msg":     func(m i18n.Msg) any { return l.HTML(m) },
		"fmtTime": l.DateTime,
		"fmtDate": l.Date,
		"date":    func(t time.Time) i18n.Date { return i18n.Date(t) },
		"backupFile": func(formatted string) backupFile {
			text := l.T("backup.file_title", "Site", k.site) + "\r\n" + formatted + "\r\n"
			name := strings.Trim(nonFileName.ReplaceAllString(strings.ToLower(l.T("backup.file_name", "Site", k.site)), "-"), "-")
			if name == "" {
				name = "backup-code"
			}
			return backupFile{Name: name + ".txt", URL: template.URL("data:text/plain;charset=utf-8," + url.PathEscape(text))}
		},
	}
}

// nonFileName are the runs of characters a download's name does without.
var nonFileName = regexp.MustCompile(`[^\p{L}\p{N}]+`)

// backupFile is a backup code as a text file to download.
type backupFile struct {
	Name string
	URL  template.URL
}
