package web

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/login/i18n"
	"github.com/latchkey/latchkey/storage/keyring"
)

//go:embed templates/*.html
var sharedFS embed.FS

//go:embed static
var staticFS embed.FS

// Config is what the page machinery needs.
type Config struct {
	Issuer   string
	SiteName string
	Keyring  *keyring.Keyring
	Logger   *slog.Logger
	// StaySignedIn is how long a "Stay signed in" session cookie lives.
	StaySignedIn time.Duration
	// Languages chooses each page's language (nil: English, the default
	// language, without the pseudo-locale).
	Languages *i18n.Chooser
}

// Kit is one package's page machinery: its templates over the shared
// layout, the cookies and browser handle, CSRF, and error pages. Every
// package that serves pages builds its own Kit over the same keyring, so
// a CSRF token or sealed cookie made by one is good for the other.
type Kit struct {
	site   string
	issuer string
	kr     *keyring.Keyring
	log    *slog.Logger
	secure bool // "__Host-" and Secure cookies (the issuer is https; cookies.go)
	// tmpl are the pages by language, then by name: each language has its
	// own copy, whose t/tn/msg functions speak it (languages.go).
	tmpl map[string]map[string]*template.Template
	// langs chooses a page's language.
	langs *i18n.Chooser
	// staySignedIn is the lifetime of a stay-signed-in session cookie.
	staySignedIn time.Duration
}

// Page is the data every template gets. Title, Error and Notice are
// messages of the catalogue (login/i18n), rendered in the page's
// language; a zero Msg shows nothing.
type Page struct {
	Site   string
	Title  i18n.Msg
	CSRF   string
	Error  i18n.Msg
	Notice i18n.Msg
	Data   any
	// Script names a script of ours under /static/ the page loads
	// ("passkey.js"); only such a page's CSP allows scripts, and only
	// from our origin (never inline). "": no script, the default.
	Script string
	// Lang is the page's language (a BCP 47 tag for <html lang>) and Name
	// its template; Render fills both.
	Lang, Name string
}

// New parses the package's templates: every templates/*.html of pages
// (nil: none) is a page over the shared layout, the shared partials, the
// package's own templates/partials.html if it has one, and the shared
// error page; each page once per language. A broken template fails here,
// at start-up.
func New(cfg Config, pages fs.FS) (*Kit, error) {
	if cfg.Keyring == nil {
		return nil, errors.New("web: keyring is required")
	}
	u, err := url.Parse(cfg.Issuer)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("web: bad issuer %q", cfg.Issuer)
	}
	if cfg.SiteName == "" {
		cfg.SiteName = "Latchkey"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Languages == nil {
		b, err := i18n.Load()
		if err != nil {
			return nil, err
		}
		if cfg.Languages, err = i18n.NewChooser(b, "", false); err != nil {
			return nil, err
		}
	}
	k := &Kit{site: cfg.SiteName, issuer: strings.TrimSuffix(cfg.Issuer, "/"), kr: cfg.Keyring, log: cfg.Logger,
		secure: u.Scheme == "https", tmpl: map[string]map[string]*template.Template{}, langs: cfg.Languages,
		staySignedIn: cfg.StaySignedIn}
	english := k.funcs(cfg.Languages.Bundle().Localizer(i18n.English))
	// Every page is parsed into its own copy of the layout and the
	// partials, so that each page's {{define "content"}} stays its own.
	base, err := template.New("layout.html").Funcs(english).ParseFS(sharedFS, "templates/layout.html", "templates/partials.html")
	if err != nil {
		return nil, fmt.Errorf("web: templates: %w", err)
	}
	type source struct {
		fsys fs.FS
		path string
	}
	srcs := []source{{sharedFS, "templates/error.html"}}
	if pages != nil {
		if _, err := fs.Stat(pages, "templates/partials.html"); err == nil {
			if base, err = base.ParseFS(pages, "templates/partials.html"); err != nil {
				return nil, fmt.Errorf("web: templates: %w", err)
			}
		}
		entries, err := fs.Glob(pages, "templates/*.html")
		if err != nil {
			return nil, err
		}
		for _, p := range entries {
			if p != "templates/partials.html" {
				srcs = append(srcs, source{pages, p})
			}
		}
	}
	parsed := map[string]*template.Template{}
	for _, s := range srcs {
		name := strings.TrimSuffix(strings.TrimPrefix(s.path, "templates/"), ".html")
		t, err := template.Must(base.Clone()).ParseFS(s.fsys, s.path)
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", name, err)
		}
		parsed[name] = t
	}
	// One copy per language, made before any is executed (html/template
	// cannot clone an executed template).
	for _, lang := range cfg.Languages.Offered() {
		l := cfg.Languages.Bundle().Localizer(lang)
		k.tmpl[lang] = map[string]*template.Template{}
		for name, t := range parsed {
			c, err := t.Clone()
			if err != nil {
				return nil, fmt.Errorf("web: template %s: %w", name, err)
			}
			k.tmpl[lang][name] = c.Funcs(k.funcs(l))
		}
	}
	return k, nil
}

// SiteName is the configured site name.
func (k *Kit) SiteName() string { return k.site }

// Issuer is the issuer URL without a trailing slash.
func (k *Kit) Issuer() string { return k.issuer }

// Render writes a page in the request's language (Lang). The CSRF token
// is filled from the browser handle.
func (k *Kit) Render(c echo.Context, status int, name string, p Page) error {
	lang := k.Lang(c)
	t, ok := k.tmpl[lang][name]
	if !ok {
		return fmt.Errorf("web: no template %q", name)
	}
	p.Site, p.Lang, p.Name = k.site, lang, name
	if p.Script != "" {
		c.Response().Header().Set("Content-Security-Policy", pageCSPScripts)
	}
	if p.CSRF == "" {
		p.CSRF = k.CSRFToken(c)
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "layout.html", p); err != nil {
		return fmt.Errorf("web: render %s: %w", name, err)
	}
	c.Response().Header().Set("Content-Language", lang)
	return c.HTML(status, b.String())
}

// Static serves the embedded assets under /static/.
func Static() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	files := http.FileServerFS(sub)
	return http.StripPrefix("/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	}))
}

// PageCSP is every page's Content-Security-Policy: no inline scripts or
// styles, and forms that post to this site only (form-action 'self';
// issue 10 (c)). The one page that posts elsewhere, the OAuth form_post
// response, carries its own policy naming that client's redirect origin
// (op.FormPostCSP); redirects that leave the site after one of our forms
// go through op.RedirectAway, because Chrome and Safari apply
// form-action to the redirects that follow a submission too. A page that
// offers passkeys (Page.Script) loads one script from our own origin, and
// only that page's policy (pageCSPScripts) allows it.
const (
	PageCSP        = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
	pageCSPScripts = PageCSP + "; script-src 'self'"
)

// SecurityHeaders sends the headers every page needs (SPEC 9): no
// framing, no sniffing, no referrer leaks of auth request ids, a strict
// CSP (PageCSP; pageCSPScripts on the pages that set Page.Script).
func (k *Kit) SecurityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		hd := c.Response().Header()
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Content-Security-Policy", PageCSP)
		hd.Set("Cache-Control", "no-store")
		if k.secure {
			hd.Set("Strict-Transport-Security", "max-age=31536000")
		}
		return next(c)
	}
}
