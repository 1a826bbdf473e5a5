package mail

import (
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/latchkey/latchkey/login/i18n"
)

// TestMailsInTheirLanguage: every mail, every purpose, rendered in the
// pseudo-locale has no word outside the catalogue's marked messages (the
// names, addresses, links and codes aside), says its language, and shows
// times in its location.
func TestMailsInTheirLanguage(t *testing.T) {
	const tokyo = "Asia/Tokyo"
	xa := i18n.Pseudo
	ps := i18n.MustLoad().Localizer(xa)
	browser := ps.Msg(i18n.M("browser.on", "Browser", "Firefox", "OS", "Windows"))
	mails := map[string]interface{ Message() (Message, error) }{
		"link":          LinkMail{Site: testSite, To: "a@example.com", Name: "Ada", Link: "https://id.example.com/account/set-password?token=x", ValidFor: 7 * 24 * time.Hour, Lang: xa},
		"notice":        NoticeMail{Site: testSite, To: "a@example.com", Name: "Ada", Change: ps.T("notice.password_changed"), At: testAt, Browser: browser, IP: "203.0.113.7", Lang: xa, TimeZone: tokyo},
		"notice, bare":  NoticeMail{Site: testSite, To: "a@example.com", Change: ps.T("notice.totp_off"), At: testAt, Lang: xa},
		"signup_exists": SignupExistsMail{Site: testSite, To: "a@example.com", Name: "Ada", At: testAt, Browser: browser, IP: "203.0.113.7", Lang: xa, TimeZone: tokyo},
	}
	for _, p := range []string{PurposeSignIn, PurposeReconfirm, PurposeSignUp, PurposeReset} {
		mails["code "+p] = CodeMail{Site: testSite, To: "a@example.com", Name: "Ada", Code: "493817", ValidFor: 10 * time.Minute,
			RequestedAt: testAt, Browser: browser, IP: "203.0.113.7", Purpose: p, Lang: xa, TimeZone: tokyo}
	}
	marked := regexp.MustCompile(`⟦[^⟦⟧]*⟧`)
	dynamic := regexp.MustCompile(`https?://\S+|[a-z]+@example\.com|Latchkey|Ada|<[^>]*>|&[a-z#0-9]+;`)
	for name, m := range mails {
		msg, err := m.Message()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for part, s := range map[string]string{"subject": msg.Subject, "text": msg.Text, "html": msg.HTML} {
			rest := s
			for prev := ""; prev != rest; {
				prev, rest = rest, marked.ReplaceAllString(rest, " ")
			}
			rest = dynamic.ReplaceAllString(rest, " ")
			if i := strings.IndexFunc(rest, unicode.IsLetter); i >= 0 {
				t.Errorf("%s %s: text not from the catalogue near %q", name, part, rest[max(0, i-20):min(len(rest), i+40)])
			}
		}
		if !strings.Contains(msg.HTML, `<html lang="en-XA">`) {
			t.Errorf("%s: html lang", name)
		}
		if strings.Contains(name, "code") || name == "signup_exists" || name == "notice" {
			if !strings.Contains(msg.Text, "22:05 JST") {
				t.Errorf("%s: not in Tokyo's time (testAt is 13:05 UTC):\n%s", name, msg.Text)
			}
		}
	}
	// Without a location, UTC, and it says so.
	m, err := NoticeMail{Site: testSite, To: "a@example.com", Change: "x", At: testAt}.Message()
	if err != nil || !strings.Contains(m.Text, "23 Nov 2026, 13:05 UTC") {
		t.Errorf("UTC: %v\n%s", err, m.Text)
	}
}
