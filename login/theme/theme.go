// Package theme is an operator's branding of the pages and mails: the
// logo, the accent colour and an extra stylesheet (served from our own
// origin, so the pages' Content-Security-Policy stays strict: no inline
// style), and templates that replace built-in pages and mails of the same
// file name.
//
// Load reads every file once, at start-up, and parses the mail templates;
// the page packages parse the page templates through Template when they
// build their pages (login/internal/web). A template that does not parse
// fails start-up with its file and line (FileError); a file in theme.dir
// that no template took is an error too (Unused), so a misspelt name does
// not go unnoticed.
package theme

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/latchkey/latchkey/login/mail"
)

// Config is the theme's configuration (config.Theme, paths absolute).
type Config struct {
	// Issuer is the public base URL (for the logo's absolute URL in mails).
	Issuer string
	// Logo is an image file (LogoTypes) or a URL on the issuer's origin
	// (IsURL); AccentColor a CSS colour (checked by config); CSS a
	// stylesheet file; Dir a directory of templates. "" for none.
	Logo, AccentColor, CSS, Dir string
}

// LogoTypes are the image types a logo file may have, by extension.
var LogoTypes = map[string]string{
	".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
	".gif": "image/gif", ".webp": "image/webp",
}

// IsURL reports whether a logo is given as a URL (else it is a file).
func IsURL(logo string) bool {
	return strings.HasPrefix(logo, "https://") || strings.HasPrefix(logo, "http://")
}

// Paths under which the theme's files are served.
const (
	Prefix    = "/theme/"
	stylePath = Prefix + "style.css"
	logoPath  = Prefix + "logo"
)

// Limits of the files read (they are held in memory and served as is).
const (
	maxLogo  = 1 << 20
	maxCSS   = 256 << 10
	maxFile  = 256 << 10
	maxFiles = 200
)

// Theme is a loaded theme. The zero value and nil are no branding.
type Theme struct {
	logoSrc   string // the logo's src on pages ("" none)
	logoAbs   string // its absolute URL (mails)
	styleHref string // the theme stylesheet's href ("" none)
	logo      asset
	style     asset

	dir   string
	files map[string]string // theme.dir's templates by file name
	mail  *mail.Templates

	mu   sync.Mutex
	used map[string]bool
}

type asset struct {
	ctype string
	body  []byte
}

// Load reads the theme's files and parses its mail templates. Every
// problem is an error naming the file (and line, for a template).
func Load(cfg Config) (*Theme, error) {
	t := &Theme{used: map[string]bool{}}
	issuer := strings.TrimSuffix(cfg.Issuer, "/")
	switch {
	case cfg.Logo == "":
	case IsURL(cfg.Logo):
		t.logoSrc, t.logoAbs = cfg.Logo, cfg.Logo
	default:
		ext := strings.ToLower(filepath.Ext(cfg.Logo))
		ctype, ok := LogoTypes[ext]
		if !ok {
			return nil, fmt.Errorf("theme.logo: %s is not an image file", cfg.Logo)
		}
		b, err := readFile("theme.logo", cfg.Logo, maxLogo)
		if err != nil {
			return nil, err
		}
		t.logo = asset{ctype: ctype, body: b}
		t.logoSrc = logoPath + ext + "?v=" + fingerprint(b)
		t.logoAbs = issuer + t.logoSrc
	}
	if cfg.AccentColor != "" || cfg.CSS != "" {
		var css strings.Builder
		css.WriteString("/* The theme: accent_color, then the operator's stylesheet (theme.css). */\n")
		if cfg.AccentColor != "" {
			// Validated by config (a colour, no ';' or '}').
			fmt.Fprintf(&css, ":root { --accent: %s; }\n", cfg.AccentColor)
		}
		if cfg.CSS != "" {
			b, err := readFile("theme.css", cfg.CSS, maxCSS)
			if err != nil {
				return nil, err
			}
			css.Write(b)
		}
		t.style = asset{ctype: "text/css; charset=utf-8", body: []byte(css.String())}
		t.styleHref = stylePath + "?v=" + fingerprint(t.style.body)
	}
	if cfg.Dir != "" {
		if err := t.readDir(cfg.Dir); err != nil {
			return nil, err
		}
	}
	ts, err := mail.ParseTemplates(t.Template)
	if err != nil {
		return nil, t.FileError(err)
	}
	t.mail = ts
	return t, nil
}

func readFile(key, path string, limit int64) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %s is not a file", key, path)
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s: %s is %d bytes, more than %d", key, path, fi.Size(), limit)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return b, nil
}

func fingerprint(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

// readDir reads theme.dir's templates: its *.html and *.tmpl files (other
// files, such as a README, are left alone).
func (t *Theme) readDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("theme.dir: %w", err)
	}
	t.dir, t.files = dir, map[string]string{}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".html") && !strings.HasSuffix(name, ".tmpl") {
			continue
		}
		if len(t.files) == maxFiles {
			return fmt.Errorf("theme.dir: more than %d templates in %s", maxFiles, dir)
		}
		b, err := readFile("theme.dir", filepath.Join(dir, name), maxFile)
		if err != nil {
			return err
		}
		t.files[name] = string(b)
	}
	return nil
}

// Template is theme.dir's template of that file name ("identify.html",
// "code.txt.tmpl"), if it has one. Whatever is asked for counts as used.
func (t *Theme) Template(name string) (string, bool) {
	if t == nil {
		return "", false
	}
	s, ok := t.files[name]
	if ok {
		t.mu.Lock()
		t.used[name] = true
		t.mu.Unlock()
	}
	return s, ok
}

// HasTemplates reports whether theme.dir holds any template.
func (t *Theme) HasTemplates() bool { return t != nil && len(t.files) > 0 }

// Unused is an error naming theme.dir's templates that nothing took (a
// misspelt or unknown file name), or nil. Call it once every page and
// mail has been parsed.
func (t *Theme) Unused() error {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var unused []string
	for name := range t.files {
		if !t.used[name] {
			unused = append(unused, name)
		}
	}
	if len(unused) == 0 {
		return nil
	}
	slices.Sort(unused)
	return fmt.Errorf("theme.dir: %s: not the name of a page or mail template (see Branding in the README)",
		strings.Join(unused, ", "))
}

// templateErr matches the location text/template and html/template give
// a template's errors: "template: NAME:LINE: " and
// "html/template:NAME:LINE:COL: " (the column and line may be absent).
var templateErr = regexp.MustCompile(`(?:html/)?template: ?([^\s:]+)(?::(\d+))?(?::\d+)?: `)

// FileError rewrites a template error that names one of theme.dir's files
// as "theme.dir: /path/to/FILE:LINE: what", so that the operator sees
// which file to fix, and where; any other error is returned as it is.
func (t *Theme) FileError(err error) error {
	if t == nil || err == nil {
		return err
	}
	msg := err.Error()
	for _, m := range templateErr.FindAllStringSubmatchIndex(msg, -1) {
		name := msg[m[2]:m[3]]
		if _, ok := t.files[name]; !ok {
			continue
		}
		at := filepath.Join(t.dir, name)
		if m[4] >= 0 {
			at += ":" + msg[m[4]:m[5]]
		}
		return &FileErr{Path: at, Msg: msg[m[1]:], err: err}
	}
	return err
}

// FileErr is a template of theme.dir that does not parse.
type FileErr struct {
	Path string // "/etc/latchkey/theme/identify.html:3"
	Msg  string
	err  error
}

func (e *FileErr) Error() string { return "theme.dir: " + e.Path + ": " + e.Msg }

// Unwrap is the template package's error.
func (e *FileErr) Unwrap() error { return e.err }

// Logo is the logo's src on pages (a path on our origin or a URL on it),
// "" for none.
func (t *Theme) Logo() string {
	if t == nil {
		return ""
	}
	return t.logoSrc
}

// Stylesheet is the href of the theme's stylesheet (accent colour and
// theme.css), "" for none.
func (t *Theme) Stylesheet() string {
	if t == nil {
		return ""
	}
	return t.styleHref
}

// MailSite adds the theme's logo and mail templates to a mail.Site.
func (t *Theme) MailSite(s mail.Site) mail.Site {
	if t != nil {
		s.Logo, s.Templates = t.logoAbs, t.mail
	}
	return s
}

// errNotFound is the answer for any other path under Prefix.
var errNotFound = errors.New("theme: no such file")

// ServeHTTP serves the logo and the stylesheet under Prefix. Their URLs
// carry a fingerprint of the content, so they may be cached for long. An
// SVG logo opened on its own runs no script (its own CSP, sandboxed).
func (t *Theme) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var a asset
	switch {
	case t == nil:
	case r.URL.Path == stylePath:
		a = t.style
	case t.logoSrc != "" && strings.HasPrefix(t.logoSrc, r.URL.Path+"?"):
		a = t.logo
	}
	if a.body == nil {
		http.Error(w, errNotFound.Error(), http.StatusNotFound)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "public, max-age=86400")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; sandbox")
	_, _ = w.Write(a.body)
}
