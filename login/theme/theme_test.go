package theme

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/config"
	"github.com/latchkey/latchkey/login/mail"
)

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func get(th *Theme, path string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	th.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
	return w
}

// TestServesLogoAndStylesheet: the logo file and the stylesheet (accent
// colour first, then the operator's CSS) under fingerprinted URLs, an SVG
// sandboxed; nothing else under the prefix.
func TestServesLogoAndStylesheet(t *testing.T) {
	dir := t.TempDir()
	svg := `<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`
	th, err := Load(Config{Issuer: "https://id.example.com", Logo: write(t, dir, "logo.svg", svg),
		AccentColor: "#0a7d5a", CSS: write(t, dir, "acme.css", "h1 { color: var(--accent); }")})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(th.Logo(), "/theme/logo.svg?v=") || !strings.HasPrefix(th.Stylesheet(), "/theme/style.css?v=") {
		t.Fatalf("logo %q, stylesheet %q", th.Logo(), th.Stylesheet())
	}
	w := get(th, th.Logo())
	if w.Code != 200 || w.Header().Get("Content-Type") != "image/svg+xml" || w.Body.String() != svg ||
		!strings.Contains(w.Header().Get("Content-Security-Policy"), "sandbox") {
		t.Errorf("logo: %d %v", w.Code, w.Header())
	}
	w = get(th, th.Stylesheet())
	if body := w.Body.String(); w.Code != 200 || w.Header().Get("Content-Type") != "text/css; charset=utf-8" ||
		!strings.Contains(body, ":root { --accent: #0a7d5a; }") || strings.Index(body, "--accent: #") > strings.Index(body, "h1 {") {
		t.Errorf("stylesheet: %d %q\n%s", w.Code, w.Header().Get("Content-Type"), body)
	}
	if m := th.MailSite(mailSite()); m.Logo != "https://id.example.com"+th.Logo() {
		t.Errorf("mail logo %q", m.Logo)
	}
	for _, p := range []string{"/theme/acme.css", "/theme/logo.png", "/theme/"} {
		if w := get(th, p); w.Code != http.StatusNotFound {
			t.Errorf("%s: %d", p, w.Code)
		}
	}
	// No theme: nothing served, nothing shown.
	var none *Theme
	if none.Logo() != "" || none.Stylesheet() != "" || get(none, "/theme/style.css").Code != http.StatusNotFound {
		t.Error("a nil theme shows something")
	}
	// A logo URL on our origin is used as it is.
	th, err = Load(Config{Issuer: "https://id.example.com", Logo: "https://id.example.com/brand/logo.png"})
	if err != nil || th.Logo() != "https://id.example.com/brand/logo.png" || th.Stylesheet() != "" {
		t.Fatalf("logo URL: %v %q %q", err, th.Logo(), th.Stylesheet())
	}
}

// TestLoadErrors: a missing or oversized file stops Load, naming the key
// and the file.
func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	big := write(t, dir, "big.css", strings.Repeat("x", maxCSS+1))
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Logo: filepath.Join(dir, "missing.png")}, "theme.logo: stat " + filepath.Join(dir, "missing.png")},
		{Config{CSS: big}, "theme.css: " + big + " is"},
		{Config{Dir: filepath.Join(dir, "nodir")}, "theme.dir: open " + filepath.Join(dir, "nodir")},
		{Config{Logo: write(t, dir, "logo.bmp", "BM")}, "theme.logo: " + filepath.Join(dir, "logo.bmp") + " is not an image file"},
	} {
		if _, err := Load(tc.cfg); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q…", tc.cfg, err, tc.want)
		}
	}
}

// TestTemplateFiles: theme.dir's templates are handed out by name and
// counted; a file nothing took is reported; a template error naming one
// of the files becomes the file's path and line; other files (a README)
// are not templates.
func TestTemplateFiles(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "identify.html", "x")
	write(t, dir, "code.txt.tmpl", "{{template \"greeting\" .}} {{.Code}}")
	write(t, dir, "idenitfy.html", "y")
	write(t, dir, "README.md", "notes")
	th, err := Load(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := th.Template("identify.html"); !ok || s != "x" {
		t.Fatalf("identify.html: %q %v", s, ok)
	}
	if _, ok := th.Template("README.md"); ok {
		t.Error("README.md taken as a template")
	}
	err = th.Unused()
	if err == nil || err.Error() != "theme.dir: idenitfy.html: not the name of a page or mail template (see Branding in the README)" {
		t.Fatalf("Unused: %v", err)
	}
	orig := errors.New(`web: template identify: template: identify.html:7: unexpected "}" in operand`)
	var fe *FileErr
	if err := th.FileError(orig); !errors.As(err, &fe) || err.Error() != "theme.dir: "+filepath.Join(dir, "identify.html")+`:7: unexpected "}" in operand` || !errors.Is(err, orig) {
		t.Errorf("FileError: %v", err)
	}
	if err := th.FileError(errors.New("template: password.html:3: nope")); err.Error() != "template: password.html:3: nope" {
		t.Errorf("an error of a built-in template was rewritten: %v", err)
	}
	if err := th.FileError(errors.New(`html/template:identify.html:4:12: {{.X}} appears in an ambiguous context`)); err.Error() != "theme.dir: "+filepath.Join(dir, "identify.html")+":4: {{.X}} appears in an ambiguous context" {
		t.Errorf("escaping error: %v", err)
	}
}

func mailSite() mail.Site { return mail.Site{Name: "Acme", URL: "https://id.example.com"} }

// TestLogoTypesMatchConfig: config accepts as theme.logo exactly the image
// files served here (config imports nothing of login/, so it keeps its own
// list).
func TestLogoTypesMatchConfig(t *testing.T) {
	var served []string
	for ext := range LogoTypes {
		served = append(served, ext)
	}
	slices.Sort(served)
	if want := slices.Sorted(slices.Values(config.LogoExtensions)); !slices.Equal(served, want) {
		t.Fatalf("theme.LogoTypes %v, config.LogoExtensions %v", served, want)
	}
	for _, logo := range []string{"https://id.example/logo.png", "http://localhost:8080/l.svg", "logo.png", "/etc/logo.svg", "httpsx.png"} {
		if got, want := IsURL(logo), (config.Theme{Logo: logo}).LogoIsURL(); got != want {
			t.Errorf("%q: theme.IsURL %v, config %v", logo, got, want)
		}
	}
}
