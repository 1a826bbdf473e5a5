package mail

import (
	"fmt"
	"strings"
	"time"

	"github.com/latchkey/latchkey/login/i18n"
)

// Kinds of a SignInMail.
const (
	// SignInNewBrowser: the account signed in from a browser it had not
	// used before.
	SignInNewBrowser = "new_browser"
	// SignInBackupCode: the backup code was used to sign in (and a new
	// one was made).
	SignInBackupCode = "backup_code"
)

// SignInMail tells the owner of an account about a sign-in they may want
// to know of: from a new browser, or with the backup code. It says when
// (in the recipient's language and time zone), from which browser, the
// place when it is known, and what to do if it wasn't them — with links.
type SignInMail struct {
	Site     Site
	To, Name string
	Kind     string    // SignInNewBrowser ("" too) or SignInBackupCode
	At       time.Time // zero = now
	Browser  string    // e.g. "Firefox on Windows", in Lang
	IP       string
	Place    string // where the sign-in came from, in Lang; "" (unknown) leaves it out
	Lang     string
	TimeZone string
}

type signInWording struct{ subject, heading, intro i18n.Msg }

var signInWordings = map[string]signInWording{
	SignInNewBrowser: {i18n.M("mail.signin.new_browser.subject"), i18n.M("mail.signin.new_browser.heading"), i18n.M("mail.signin.new_browser.intro")},
	SignInBackupCode: {i18n.M("mail.signin.backup_code.subject"), i18n.M("mail.signin.backup_code.heading"), i18n.M("mail.signin.backup_code.intro")},
}

// Message renders the mail.
func (m SignInMail) Message() (Message, error) {
	kind := m.Kind
	if kind == "" {
		kind = SignInNewBrowser
	}
	w, ok := signInWordings[kind]
	if !ok {
		return Message{}, fmt.Errorf("mail: unknown sign-in mail kind %q", m.Kind)
	}
	v := baseView(m.Site, m.Name, m.Lang, m.TimeZone, m.At)
	v.Purpose = kind
	v.Heading = v.l.Msg(w.heading)
	v.Intro = v.l.Msg(w.intro.With("Site", v.SiteName))
	v.BrowserIP = v.browserIP(m.Browser, m.IP)
	v.Place = strings.TrimSpace(m.Place)
	return render("signin", m.To, v.l.Msg(w.subject.With("Site", v.SiteName)), v)
}
