package mail

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io"
	"slices"
	"strings"
	"sync"
	texttemplate "text/template"
	"time"

	"github.com/latchkey/latchkey/login/i18n"
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
	// Logo is the absolute URL of the product's logo, shown before its
	// name in the HTML part ("" = none).
	Logo string
	// Templates are the mails' templates (nil = the built-in ones; a
	// theme's overrides: ParseTemplates).
	Templates *Templates
}

func (s Site) name() string {
	if strings.TrimSpace(s.Name) == "" {
		return "Latchkey"
	}
	return s.Name
}

// passwordURL is the account page that changes the password ("" without
// a URL).
func (s Site) passwordURL() string {
	if s.URL == "" {
		return ""
	}
	return strings.TrimRight(s.URL, "/") + "/account/security/password"
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

// Every mail is rendered in its Lang (a language of login/i18n; "" is
// English) with times in its TimeZone (an IANA name the account page
// offers, login/i18n.TimeZones; "" is UTC, and says "UTC"). Both are
// plain strings, so a mail can wait in a queue and be rendered later. The
// words are the catalogue's; fields that are text (Browser, Change) are
// given in the mail's language by the caller.

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
	Browser     string    // e.g. "Firefox on Windows", in Lang
	IP          string
	Purpose     string // PurposeSignIn ("" too), PurposeReconfirm, PurposeSignUp, PurposeReset
	Lang        string
	TimeZone    string
}

// NoticeMail is the mandatory notification of a security change
// ("Authenticator app turned on", "Password changed", "Backup code
// generated", …): it names the change, when, from which browser, and what
// to do if it was not the user.
type NoticeMail struct {
	Site     Site
	To, Name string
	Change   string    // a short phrase, in Lang
	At       time.Time // zero = now
	Browser  string
	IP       string
	Lang     string
	TimeZone string
}

// LinkMail carries a one-time link (e.g. to set a password) and its
// validity.
type LinkMail struct {
	Site     Site
	To, Name string
	Link     string
	ValidFor time.Duration
	Purpose  string // PurposeSetPassword ("" too)
	Lang     string
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
	Lang     string
	TimeZone string
}

// Message renders the mail.
func (m SignupExistsMail) Message() (Message, error) {
	v := baseView(m.Site, m.Name, m.Lang, m.TimeZone, m.At)
	v.Heading = v.l.T("mail.signup_exists.heading")
	v.Requested = v.requested(i18n.M("mail.signup_exists.tried"), i18n.M("mail.signup_exists.tried_ip"), m.Browser, m.IP)
	if m.Site.URL != "" {
		v.ForgotURL = strings.TrimRight(m.Site.URL, "/") + "/forgot"
	}
	return render("signup_exists", m.To, v.l.T("mail.signup_exists.subject", "Site", v.SiteName), v)
}

// codeWording is the messages of one purpose of a code mail (the
// subject gets the site's name as {{.Site}}).
type codeWording struct{ subject, heading, intro i18n.Msg }

var codeWordings = map[string]codeWording{
	PurposeSignIn:    {i18n.M("mail.code.signin.subject"), i18n.M("mail.code.signin.heading"), i18n.M("mail.code.signin.intro")},
	PurposeReconfirm: {i18n.M("mail.code.reconfirm.subject"), i18n.M("mail.code.reconfirm.heading"), i18n.M("mail.code.reconfirm.intro")},
	PurposeSignUp:    {i18n.M("mail.code.signup.subject"), i18n.M("mail.code.signup.heading"), i18n.M("mail.code.signup.intro")},
	PurposeReset:     {i18n.M("mail.code.reset.subject"), i18n.M("mail.code.reset.heading"), i18n.M("mail.code.reset.intro")},
}

// mailView is the data every template sees.
type mailView struct {
	l    *i18n.Localizer
	tmpl *Templates

	Lang        string
	SiteName    string
	SiteURL     string
	SecurityURL string
	// Logo is the product's logo (an absolute URL), "" for none.
	Logo    string
	Name    string
	Heading string
	Purpose string

	// CodeMail
	Code  string
	Intro string
	// ValidFor: CodeMail, LinkMail
	ValidFor time.Duration
	// NoticeMail
	Change    string
	BrowserIP string
	// LinkMail
	Link string
	// SignInMail: where from ("" unknown)
	Place string
	// PasswordURL is the page that changes the password (every mail's
	// "Change your password now").
	PasswordURL string
	// ForgotURL is "Forgot password?" (SignupExistsMail).
	ForgotURL string

	// Requested: when and from where (CodeMail, SignupExistsMail).
	Requested string
	When      string
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
	v := baseView(c.Site, c.Name, c.Lang, c.TimeZone, c.RequestedAt)
	v.Purpose = purpose
	v.Heading = v.l.Msg(w.heading)
	v.Intro = v.l.Msg(w.intro)
	v.Code = c.Code
	v.ValidFor = c.ValidFor
	v.Requested = v.requested(i18n.M("mail.code.requested"), i18n.M("mail.code.requested_ip"), c.Browser, c.IP)
	return render("code", c.To, v.l.Msg(w.subject.With("Site", v.SiteName)), v)
}

// Message renders the security notice.
func (n NoticeMail) Message() (Message, error) {
	if strings.TrimSpace(n.Change) == "" {
		return Message{}, errors.New("mail: notice mail without a change")
	}
	v := baseView(n.Site, n.Name, n.Lang, n.TimeZone, n.At)
	v.Change = n.Change
	v.Heading = v.l.T("mail.notice.heading", "Change", n.Change)
	v.BrowserIP = v.browserIP(n.Browser, n.IP)
	return render("notice", n.To, v.l.T("mail.notice.subject", "Site", v.SiteName, "Change", n.Change), v)
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
	v := baseView(l.Site, l.Name, l.Lang, "", time.Time{})
	v.Purpose = purpose
	v.Heading = v.l.T("mail.link.heading")
	v.Link = l.Link
	v.ValidFor = l.ValidFor
	return render("link", l.To, v.l.T("mail.link.subject", "Site", v.SiteName), v)
}

func baseView(s Site, name, lang, zone string, at time.Time) mailView {
	loc := i18n.Location(zone)
	l := i18n.MustLoad().Localizer(lang)
	when := "" // a mail that tells of no moment (a link) has none
	if !at.IsZero() {
		when = l.DateTime(at.In(loc))
	}
	return mailView{
		l:           l,
		tmpl:        s.Templates,
		Logo:        s.Logo,
		Lang:        l.Lang(),
		SiteName:    s.name(),
		SiteURL:     s.URL,
		SecurityURL: s.securityURL(),
		PasswordURL: s.passwordURL(),
		Name:        strings.TrimSpace(name),
		When:        when,
	}
}

// browserIP is the "from which browser (and address)" line of the notice
// and sign-in mails.
func (v mailView) browserIP(browser, ip string) string {
	browser = strings.TrimSpace(browser)
	if browser == "" {
		browser = v.l.T("mail.notice.unknown_browser")
	}
	if ip == "" {
		return browser
	}
	return v.l.T("mail.notice.browser_ip", "Browser", browser, "IP", ip)
}

// requested is the sentence saying when and from which browser (and
// address) something was asked: the message plain, or withIP.
func (v mailView) requested(plain, withIP i18n.Msg, browser, ip string) string {
	browser = strings.TrimSpace(browser)
	if browser == "" {
		browser = v.l.T("mail.unknown_browser")
	}
	if ip != "" {
		return v.l.Msg(withIP.With("When", v.When, "Browser", browser, "IP", ip, "Site", v.SiteName))
	}
	return v.l.Msg(plain.With("When", v.When, "Browser", browser, "Site", v.SiteName))
}

// FormatTime formats t the way mails show times to a user without a time
// zone: in English, in UTC with the zone name, e.g. "23 Nov 2026, 14:05
// UTC".
func FormatTime(t time.Time) string {
	return i18n.MustLoad().Localizer(i18n.English).DateTime(t.UTC())
}

// Templates are the parsed mail templates, each either the built-in one
// or an override (ParseTemplates).
type Templates struct {
	text map[string]*texttemplate.Template
	html map[string]*htmltemplate.Template
	// bound holds each mail's copy bound to one language's functions,
	// made the first time the mail is rendered in that language and
	// executed from then on: html/template analyses a copy for escaping
	// at its first execution, which cost more than the rendering when
	// every mail made a new copy.
	bound sync.Map // boundKey → *boundPair
}

type boundKey struct {
	name string
	l    *i18n.Localizer // one per language of the catalogue
}

type boundPair struct {
	text *texttemplate.Template
	html *htmltemplate.Template
}

// bind returns mail name's templates bound to l's functions. The parsed
// set itself is never executed, so it can always be cloned.
func (ts *Templates) bind(name string, l *i18n.Localizer) (*boundPair, error) {
	k := boundKey{name, l}
	if p, ok := ts.bound.Load(k); ok {
		return p.(*boundPair), nil
	}
	tt, err := ts.text[name].Clone()
	if err != nil {
		return nil, err
	}
	ht, err := ts.html[name].Clone()
	if err != nil {
		return nil, err
	}
	p, _ := ts.bound.LoadOrStore(k, &boundPair{text: tt.Funcs(textFuncs(l)), html: ht.Funcs(htmlFuncs(l))})
	return p.(*boundPair), nil
}

// TemplateNames are the file names of the mail templates (each mail's
// text and HTML part and the two layouts), which ParseTemplates lets an
// override replace.
func TemplateNames() []string {
	var out []string
	for _, n := range append(slices.Clone(mailNames), "layout") {
		out = append(out, n+".txt.tmpl", n+".html.tmpl")
	}
	return out
}

// mailNames are the mails, by template name.
var mailNames = []string{"code", "notice", "link", "signup_exists", "signin"}

// placeholders stand for the per-language template functions at parse
// time; each render binds its language's (funcs).
var placeholders = map[string]any{
	"t":   func(string, ...any) any { return "" },
	"tn":  func(string, int, ...any) any { return "" },
	"msg": func(i18n.Msg) any { return "" },
}

// builtin are the embedded templates.
var builtin = sync.OnceValues(func() (*Templates, error) { return ParseTemplates(nil) })

// ParseTemplates parses the mail templates, taking each file (a name of
// TemplateNames) from override when it has it, else the built-in one. An
// override calls the same functions (t, tn, msg) and sees the same data.
// Errors name the template file and line ("template: code.html.tmpl:3:
// …"), escaping errors of the HTML parts included: they are found here,
// not at the first mail.
func ParseTemplates(override func(name string) (string, bool)) (*Templates, error) {
	src := func(name string) (string, error) {
		if override != nil {
			if s, ok := override(name); ok {
				return s, nil
			}
		}
		b, err := templateFS.ReadFile("templates/" + name)
		return string(b), err
	}
	ts := &Templates{text: map[string]*texttemplate.Template{}, html: map[string]*htmltemplate.Template{}}
	for _, name := range mailNames {
		tt := texttemplate.New(name + ".txt.tmpl").Funcs(placeholders)
		ht := htmltemplate.New(name + ".html.tmpl").Funcs(placeholders)
		// The mail's own file is the root template, the layout joins it.
		for i, f := range []string{name, "layout"} {
			s, err := src(f + ".txt.tmpl")
			if err != nil {
				return nil, err
			}
			if i > 0 {
				_, err = tt.New(f + ".txt.tmpl").Parse(s)
			} else {
				_, err = tt.Parse(s)
			}
			if err != nil {
				return nil, err
			}
			if s, err = src(f + ".html.tmpl"); err != nil {
				return nil, err
			}
			if i > 0 {
				_, err = ht.New(f + ".html.tmpl").Parse(s)
			} else {
				_, err = ht.Parse(s)
			}
			if err != nil {
				return nil, err
			}
		}
		// html/template escapes a template at its first execution: do it
		// now, on a copy, so that an override's escaping error (an action
		// in an ambiguous context) is a start-up error. Its execution
		// errors on empty data are not.
		probe, err := ht.Clone()
		if err != nil {
			return nil, err
		}
		var escErr *htmltemplate.Error
		if err := probe.Execute(io.Discard, mailView{l: i18n.MustLoad().Localizer(i18n.English)}); errors.As(err, &escErr) {
			return nil, err
		}
		ts.text[name] = tt
		ts.html[name] = ht
	}
	return ts, nil
}

// textFuncs are the text part's functions: every message is text.
func textFuncs(l *i18n.Localizer) map[string]any {
	return map[string]any{
		"t":   func(id string, args ...any) any { return l.T(id, args...) },
		"tn":  func(id string, n int, args ...any) any { return l.TN(id, n, args...) },
		"msg": func(m i18n.Msg) any { return l.Msg(m) },
	}
}

// htmlFuncs are the HTML part's: a message with markup (an id ending in
// _html) is HTML, its arguments escaped; any other is escaped text.
func htmlFuncs(l *i18n.Localizer) map[string]any {
	return map[string]any{
		"t":   func(id string, args ...any) any { return l.HTML(i18n.M(id, args...)) },
		"tn":  func(id string, n int, args ...any) any { return l.HTML(i18n.N(id, n, args...)) },
		"msg": func(m i18n.Msg) any { return l.HTML(m) },
	}
}

func render(name, to, subject string, v mailView) (Message, error) {
	ts := v.tmpl
	if ts == nil {
		var err error
		if ts, err = builtin(); err != nil {
			return Message{}, fmt.Errorf("mail: templates: %w", err)
		}
	}
	b, err := ts.bind(name, v.l)
	if err != nil {
		return Message{}, err
	}
	var text, html bytes.Buffer
	if err := b.text.Execute(&text, v); err != nil {
		return Message{}, fmt.Errorf("mail: render %s (text): %w", name, err)
	}
	if err := b.html.Execute(&html, v); err != nil {
		return Message{}, fmt.Errorf("mail: render %s (html): %w", name, err)
	}
	return Message{
		To:      to,
		Subject: subject,
		Text:    strings.TrimSpace(text.String()) + "\n",
		HTML:    strings.TrimSpace(html.String()) + "\n",
	}, nil
}
