package mail

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"strings"
	"sync"
	texttemplate "text/template"
	"time"

	"github.com/latchkey/latchkey/login/flow"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

// Site is what every mail needs.
type Site struct {
	Name string // product name shown in mails, e.g. "Latchkey" ("" = "Latchkey")
	URL  string // the issuer, for links, e.g. "https://id.example.com"
	// SecurityURL is the account security page linked from every mail's
	// "if this wasn't you" advice. "" means URL + "/account".
	SecurityURL string
}

func (s Site) name() string {
	if strings.TrimSpace(s.Name) == "" {
		return "Latchkey"
	}
	return s.Name
}

func (s Site) securityURL() string {
	if s.SecurityURL != "" {
		return s.SecurityURL
	}
	if s.URL == "" {
		return ""
	}
	return strings.TrimRight(s.URL, "/") + "/account"
}

// Purposes of a CodeMail.
const (
	PurposeSignIn    = "signin"    // second step of a sign-in
	PurposeReconfirm = "reconfirm" // reconfirming identity before a security change
	PurposeSignUp    = "signup"    // proving the address of a new account
	PurposeReset     = "reset"     // "Forgot password"
)

// Purposes of a LinkMail.
const (
	PurposeSetPassword = "set-password"
)

// CodeMail is the mail carrying an email one-time passcode. It says the
// code, how long it is valid, when and from which browser it was
// requested, and what to do if it was not the user. The code is kept out
// of the subject: lock screens and notifications show subjects.
type CodeMail struct {
	Site        Site
	To, Name    string
	Code        string
	ValidFor    time.Duration
	RequestedAt time.Time // zero = now
	Browser     string    // e.g. "Firefox on Windows"
	IP          string
	Purpose     string // PurposeSignIn ("" too), PurposeReconfirm, PurposeSignUp, PurposeReset
}

// NoticeMail is the mandatory notification of a security change
// ("Authenticator app turned on", "Password changed", "Backup code
// generated", …): it names the change, when, from which browser, and what
// to do if it was not the user.
type NoticeMail struct {
	Site     Site
	To, Name string
	Change   string    // a short human phrase
	At       time.Time // zero = now
	Browser  string
	IP       string
}

// LinkMail carries a one-time link (e.g. to set a password) and its
// validity.
type LinkMail struct {
	Site     Site
	To, Name string
	Link     string
	ValidFor time.Duration
	Purpose  string // PurposeSetPassword ("" too)
}

// SignupExistsMail tells the owner of an address that someone tried to
// create an account with it (the sign-up page says the same as for a new
// address, so only the owner learns the account exists).
type SignupExistsMail struct {
	Site     Site
	To, Name string
	At       time.Time // zero = now
	Browser  string
	IP       string
}

// Message renders the mail.
func (m SignupExistsMail) Message() (Message, error) {
	v := baseView(m.Site, m.Name, m.Browser, m.IP, m.At)
	v.Heading = "Someone tried to create an account with your address"
	return render("signup_exists", m.To, "Someone tried to create a "+v.SiteName+" account with your email address", v)
}

type codeWording struct {
	subject string // %s = site name
	action  string // "to confirm your sign-in"
	heading string
}

var codeWordings = map[string]codeWording{
	PurposeSignIn:    {"Your %s sign-in confirmation code", "to confirm your sign-in", "Confirm your sign-in"},
	PurposeReconfirm: {"Your %s code to confirm a security change", "to confirm a change to your security settings", "Confirm a change to your security settings"},
	PurposeSignUp:    {"Confirm your email address for %s", "to confirm your email address", "Confirm your email address"},
	PurposeReset:     {"Your %s password reset code", "to reset your password", "Reset your password"},
}

// mailView is the data every template sees.
type mailView struct {
	SiteName    string
	SiteURL     string
	SecurityURL string
	Name        string
	Heading     string
	Purpose     string

	// CodeMail
	Code     string
	Action   string
	ValidFor string
	// NoticeMail
	Change string
	// LinkMail
	Link string

	When    string
	Browser string
	IP      string
}

// Message renders the code mail.
func (c CodeMail) Message() (Message, error) {
	purpose := c.Purpose
	if purpose == "" {
		purpose = PurposeSignIn
	}
	w, ok := codeWordings[purpose]
	if !ok {
		return Message{}, fmt.Errorf("mail: unknown code mail purpose %q", c.Purpose)
	}
	if strings.TrimSpace(c.Code) == "" {
		return Message{}, errors.New("mail: code mail without a code")
	}
	if c.ValidFor <= 0 {
		return Message{}, errors.New("mail: code mail without a validity")
	}
	v := baseView(c.Site, c.Name, c.Browser, c.IP, c.RequestedAt)
	v.Purpose = purpose
	v.Heading = w.heading
	v.Action = w.action
	v.Code = c.Code
	v.ValidFor = flow.HumanDuration(c.ValidFor)
	return render("code", c.To, fmt.Sprintf(w.subject, v.SiteName), v)
}

// Message renders the security notice.
func (n NoticeMail) Message() (Message, error) {
	if strings.TrimSpace(n.Change) == "" {
		return Message{}, errors.New("mail: notice mail without a change")
	}
	v := baseView(n.Site, n.Name, n.Browser, n.IP, n.At)
	v.Change = n.Change
	v.Heading = "Security notice: " + n.Change
	return render("notice", n.To, v.SiteName+" security notice: "+n.Change, v)
}

// Message renders the link mail.
func (l LinkMail) Message() (Message, error) {
	purpose := l.Purpose
	if purpose == "" {
		purpose = PurposeSetPassword
	}
	if purpose != PurposeSetPassword {
		return Message{}, fmt.Errorf("mail: unknown link mail purpose %q", l.Purpose)
	}
	if strings.TrimSpace(l.Link) == "" {
		return Message{}, errors.New("mail: link mail without a link")
	}
	if l.ValidFor <= 0 {
		return Message{}, errors.New("mail: link mail without a validity")
	}
	v := baseView(l.Site, l.Name, "", "", time.Time{})
	v.Purpose = purpose
	v.Heading = "Set your password"
	v.Link = l.Link
	v.ValidFor = flow.HumanDuration(l.ValidFor)
	return render("link", l.To, "Set your "+v.SiteName+" password", v)
}

func baseView(s Site, name, browser, ip string, at time.Time) mailView {
	if at.IsZero() {
		at = time.Now()
	}
	return mailView{
		SiteName:    s.name(),
		SiteURL:     s.URL,
		SecurityURL: s.securityURL(),
		Name:        strings.TrimSpace(name),
		When:        FormatTime(at),
		Browser:     strings.TrimSpace(browser),
		IP:          ip,
	}
}

// FormatTime formats t the way mails show times: in UTC with the zone
// name, e.g. "23 Nov 2026, 14:05 UTC".
func FormatTime(t time.Time) string {
	return t.UTC().Format("2 Jan 2006, 15:04 MST")
}

type templateSet struct {
	text map[string]*texttemplate.Template
	html map[string]*htmltemplate.Template
}

var loadTemplates = sync.OnceValues(func() (*templateSet, error) {
	ts := &templateSet{text: map[string]*texttemplate.Template{}, html: map[string]*htmltemplate.Template{}}
	for _, name := range []string{"code", "notice", "link", "signup_exists"} {
		tt, err := texttemplate.New(name+".txt.tmpl").ParseFS(templateFS, "templates/"+name+".txt.tmpl", "templates/layout.txt.tmpl")
		if err != nil {
			return nil, err
		}
		ht, err := htmltemplate.New(name+".html.tmpl").ParseFS(templateFS, "templates/"+name+".html.tmpl", "templates/layout.html.tmpl")
		if err != nil {
			return nil, err
		}
		ts.text[name] = tt
		ts.html[name] = ht
	}
	return ts, nil
})

func render(name, to, subject string, v mailView) (Message, error) {
	ts, err := loadTemplates()
	if err != nil {
		return Message{}, fmt.Errorf("mail: templates: %w", err)
	}
	var text, html bytes.Buffer
	if err := ts.text[name].Execute(&text, v); err != nil {
		return Message{}, fmt.Errorf("mail: render %s (text): %w", name, err)
	}
	if err := ts.html[name].Execute(&html, v); err != nil {
		return Message{}, fmt.Errorf("mail: render %s (html): %w", name, err)
	}
	return Message{
		To:      to,
		Subject: subject,
		Text:    strings.TrimSpace(text.String()) + "\n",
		HTML:    strings.TrimSpace(html.String()) + "\n",
	}, nil
}
