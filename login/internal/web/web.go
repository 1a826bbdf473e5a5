package web

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/login/i18n"
	"github.com/latchkey/latchkey/login/theme"
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
	// Theme is the operator's branding (nil: none): its logo and
	// stylesheet on every page, its templates instead of the built-in
	// ones of the same file name.
	Theme *theme.Theme
	// PartialsName is the file name under which a theme overrides the
	// package's own templates/partials.html ("partials.html" is the
	// shared partials').
	PartialsName string
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
	// parsed are the pages by name, parsed with English functions and never
	// executed, so that each can still be cloned.
	parsed map[string]*template.Template
	// pages are the copies that run, one per language and page, whose
	// t/tn/msg functions speak the language (languages.go). A copy is
	// made the first time its page is shown in its language: five
	// languages of every page up front cost 6–8 MiB of heap for pages
	// most servers never show.
	pages sync.Map // pageKey → *template.Template
	// cloneMu serialises the making of copies.
	cloneMu sync.Mutex
	// langs chooses a page's language.
	langs *i18n.Chooser
	// staySignedIn is the lifetime of a stay-signed-in session cookie.
	staySignedIn time.Duration
	// theme is the operator's branding (nil: none).
	theme *theme.Theme
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
	// Logo and Stylesheet are the theme's logo and stylesheet (paths on
	// our origin, "" for none); Render fills both.
	Logo, Stylesheet string
	// Images are other origins the page shows images from (a client's
	// logo): only this page's CSP allows them (img-src).
	Images []string
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
		secure: u.Scheme == "https", langs: cfg.Languages,
		staySignedIn: cfg.StaySignedIn, theme: cfg.Theme}
	parsed, err := parsePages(cfg, k.funcs(cfg.Languages.Bundle().Localizer(i18n.English)), pages)
	if err != nil {
		return nil, cfg.Theme.FileError(err)
	}
	k.parsed = parsed
	return k, nil
}

// pageKey names one page in one language.
type pageKey struct{ lang, name string }

// page is the copy of page name whose functions speak lang, made on first
// use from the never-executed parse (html/template cannot clone an
// executed template). It fails only for a page that does not exist.
func (k *Kit) page(lang, name string) (*template.Template, error) {
	key := pageKey{lang, name}
	if t, ok := k.pages.Load(key); ok {
		return t.(*template.Template), nil
	}
	t, ok := k.parsed[name]
	if !ok {
		return nil, fmt.Errorf("web: no template %q", name)
	}
	k.cloneMu.Lock()
	defer k.cloneMu.Unlock()
	if c, ok := k.pages.Load(key); ok {
		return c.(*template.Template), nil
	}
	c, err := t.Clone()
	if err != nil {
		return nil, fmt.Errorf("web: template %s: %w", name, err)
	}
	c.Funcs(k.funcs(k.langs.Bundle().Localizer(lang)))
	k.pages.Store(key, c)
	return c, nil
}

// source is one template file: its name (the file's, which a theme's
// override has too) and where the built-in one is.
type source struct {
	name string
	fsys fs.FS
	path string
}

// text is the template's text: the theme's override, else the built-in.
func (s source) text(th *theme.Theme) (string, error) {
	if t, ok := th.Template(s.name); ok {
		return t, nil
	}
	b, err := fs.ReadFile(s.fsys, s.path)
	return string(b), err
}

// parsePages parses every page into its own copy of the layout and the
// partials, so that each page's {{define "content"}} stays its own; each
// file is the theme's when it has one. An override's escaping errors are
// found here too (probe), not at its first request.
func parsePages(cfg Config, funcs template.FuncMap, pages fs.FS) (map[string]*template.Template, error) {
	base := template.New("layout.html").Funcs(funcs)
	shared := []source{{"layout.html", sharedFS, "templates/layout.html"}, {"partials.html", sharedFS, "templates/partials.html"}}
	pageSrcs := []source{{"error.html", sharedFS, "templates/error.html"}}
	if pages != nil {
		if _, err := fs.Stat(pages, "templates/partials.html"); err == nil {
			name := cfg.PartialsName
			if name == "" {
				name = "partials.html"
			}
			shared = append(shared, source{name, pages, "templates/partials.html"})
		}
		entries, err := fs.Glob(pages, "templates/*.html")
		if err != nil {
			return nil, err
		}
		for _, p := range entries {
			if p != "templates/partials.html" {
				pageSrcs = append(pageSrcs, source{strings.TrimPrefix(p, "templates/"), pages, p})
			}
		}
	}
	for i, s := range shared {
		text, err := s.text(cfg.Theme)
		if err != nil {
			return nil, err
		}
		t := base
		if i > 0 {
			t = base.New(s.name)
		}
		if _, err := t.Parse(text); err != nil {
			return nil, fmt.Errorf("web: templates: %w", err)
		}
	}
	parsed := map[string]*template.Template{}
	for _, s := range pageSrcs {
		name := strings.TrimSuffix(s.name, ".html")
		text, err := s.text(cfg.Theme)
		if err != nil {
			return nil, err
		}
		t, err := template.Must(base.Clone()).New(s.name).Parse(text)
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", name, err)
		}
		t = t.Lookup("layout.html")
		if cfg.Theme.HasTemplates() {
			if err := probe(t, name); err != nil {
				return nil, fmt.Errorf("web: template %s: %w", name, err)
			}
		}
		parsed[name] = t
	}
	return parsed, nil
}

// probe executes a copy of a page on empty data, for html/template to
// escape it: its escaping errors (an action in an ambiguous context) are
// the template's, whatever the data; execution errors on empty data are
// not.
func probe(t *template.Template, name string) error {
	c, err := t.Clone()
	if err != nil {
		return err
	}
	var escErr *template.Error
	if err := c.ExecuteTemplate(io.Discard, "layout.html", Page{Name: name}); errors.As(err, &escErr) {
		return err
	}
	return nil
}

// SiteName is the configured site name.
func (k *Kit) SiteName() string { return k.site }

// Issuer is the issuer URL without a trailing slash.
func (k *Kit) Issuer() string { return k.issuer }

// Render writes a page in the request's language (Lang). The CSRF token
// is filled from the browser handle.
func (k *Kit) Render(c echo.Context, status int, name string, p Page) error {
	lang := k.Lang(c)
	t, err := k.page(lang, name)
	if err != nil {
		return err
	}
	p.Site, p.Lang, p.Name = k.site, lang, name
	p.Logo, p.Stylesheet = k.theme.Logo(), k.theme.Stylesheet()
	if p.Script != "" || len(p.Images) > 0 {
		c.Response().Header().Set("Content-Security-Policy", pageCSP(p.Script != "", p.Images))
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
// only that page's policy (pageCSP) allows it.
const PageCSP = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// pageCSP is PageCSP with scripts from our origin (scripts) and images
// from the given origins too (a client's logo; each an origin from
// ImageOrigin).
func pageCSP(scripts bool, images []string) string {
	csp := PageCSP
	if len(images) > 0 {
		csp = strings.Replace(csp, "img-src 'self' data:", "img-src 'self' data: "+strings.Join(images, " "), 1)
	}
	if scripts {
		csp += "; script-src 'self'"
	}
	return csp
}

// ImageOrigin is the origin of an image URL ("https://cdn.example:8443")
// for a page's Images, if the URL is http(s) and its host plainly a name
// or an address (nothing that could end a CSP source).
func ImageOrigin(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || !cspHost.MatchString(u.Host) {
		return "", false
	}
	return u.Scheme + "://" + u.Host, true
}

var cspHost = regexp.MustCompile(`^([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$`)

// SecurityHeaders sends the headers every page needs (SPEC 9): no
// framing, no sniffing, no referrer leaks of auth request ids, a strict
// CSP (PageCSP; Render's pageCSP on the pages that set Page.Script or
// Page.Images).
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
