package web

import (
	"strings"

	"github.com/latchkey/latchkey/login/i18n"
)

// DescribeBrowser is BrowserMsg in English.
func DescribeBrowser(ua string) string {
	return i18n.MustLoad().Localizer(i18n.English).Msg(BrowserMsg(ua))
}

// BrowserMsg turns a User-Agent into "Firefox on Windows" for mails and the
// Devices list. It is a label for people, not a security fact: the header
// is whatever the browser (or an attacker) says. Browser and system names
// are names; the words around them are the catalogue's.
func BrowserMsg(ua string) i18n.Msg {
	var browser any = i18n.M("browser.unknown")
	switch {
	case strings.Contains(ua, "Edg/"):
		browser = "Edge"
	case strings.Contains(ua, "OPR/"), strings.Contains(ua, "Opera"):
		browser = "Opera"
	case strings.Contains(ua, "Firefox/"):
		browser = "Firefox"
	case strings.Contains(ua, "Chrome/"), strings.Contains(ua, "CriOS/"):
		browser = "Chrome"
	case strings.Contains(ua, "Safari/"):
		browser = "Safari"
	case strings.HasPrefix(ua, "curl/"):
		browser = "curl"
	case strings.HasPrefix(ua, "Go-http-client"):
		browser = i18n.M("browser.program")
	}
	os := ""
	switch {
	case strings.Contains(ua, "Windows"):
		os = "Windows"
	case strings.Contains(ua, "iPhone"), strings.Contains(ua, "iPad"):
		os = "iOS"
	case strings.Contains(ua, "Mac OS X"), strings.Contains(ua, "Macintosh"):
		os = "macOS"
	case strings.Contains(ua, "Android"):
		os = "Android"
	case strings.Contains(ua, "CrOS"):
		os = "ChromeOS"
	case strings.Contains(ua, "Linux"):
		os = "Linux"
	}
	if os == "" {
		if m, ok := browser.(i18n.Msg); ok {
			return m
		}
		return i18n.M("browser.alone", "Browser", browser)
	}
	return i18n.M("browser.on", "Browser", browser, "OS", os)
}
