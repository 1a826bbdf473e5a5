package main

// Branding (issue 14 §2): the theme's logo, accent colour and stylesheet
// on the sign-in and account pages, a product's name and logo on the
// sign-in page, templates overridden from theme.dir (a page and a mail),
// the sender's display name, and a broken override refused at start-up
// with its file and line.

import (
	"bytes"
	"context"
	"html"
	"net"
	"net/http"
	netmail "net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/config"
	"github.com/latchkey/latchkey/login/i18n"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// pngLogo is a 1×1 PNG.
var pngLogo = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa75\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82")

// writeTheme writes a theme's files into a new directory: logo.png,
// extra.css and templates/ with the given templates.
func writeTheme(t *testing.T, templates map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string][]byte{
		"logo.png":  pngLogo,
		"extra.css": []byte("/* Acme */\n.card { border-top: 4px solid var(--accent); }\n"),
	}
	for name, src := range templates {
		files[filepath.Join("templates", name)] = []byte(src)
	}
	if err := os.MkdirAll(filepath.Join(dir, "templates"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

var (
	logoRe  = regexp.MustCompile(`<p class="brand"><img class="logo" src="(/theme/logo\.png\?v=[0-9a-f]+)" alt="">`)
	styleRe = regexp.MustCompile(`<link rel="stylesheet" href="(/theme/style\.css\?v=[0-9a-f]+)">`)
)

// TestBranding: a themed issuer shows its logo and stylesheet (accent
// colour, extra CSS) on the sign-in and account pages, serves both from
// its own origin with the right types, names the product and shows its
// logo on the sign-in and consent pages (its origin allowed for images
// on those pages only), takes a page and a mail template from theme.dir (the mail read
// from the SMTP sink, still in the catalogue's words), and mails from
// site_name.
func TestBranding(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		dir := writeTheme(t, map[string]string{
			// The home page, overridden; it calls the catalogue like the built-in one.
			"home.html": `{{define "content"}}<p class="acme-home">ACME HOME: {{t "home.account"}}</p>{{end}}`,
			// The code mail's text part; its HTML part stays the built-in one.
			"code.txt.tmpl": "{{template \"greeting\" .}}\n\nACME CODE {{.Code}}\n{{t \"mail.code.valid\" \"ValidFor\" .ValidFor}}\n{{template \"signature\" .}}",
		})
		e := newTestEnv(t, d, func(c *config.Config) {
			c.SiteName = "Acmé ID" // mail_from left empty: its default carries the name
			c.Theme = config.Theme{Logo: filepath.Join(dir, "logo.png"), AccentColor: "#0a7d5a",
				CSS: filepath.Join(dir, "extra.css"), Dir: filepath.Join(dir, "templates")}
		})
		en := i18n.MustLoad().Localizer(i18n.English)
		const email = "ada@acme.test"
		e.createUser(email)
		shop := e.newRP("shop", func(c *storage.Client) {
			c.Name, c.LogoURI, c.ThirdParty = "Acme Shop", "https://cdn.shop.test/brand/logo.svg", true
		})
		b := e.newBrowser()

		// The sign-in page: the theme, and the product by name and logo.
		authURL, _, _, _ := shop.authorizeURL()
		a := b.fetch(http.MethodGet, authURL, nil, nil)
		page := string(a.body)
		if a.status != http.StatusOK || !strings.Contains(page, `data-page="identify"`) {
			t.Fatalf("sign-in page: %d\n%s", a.status, page)
		}
		logo, style := themed(t, "sign-in page", page)
		if want := html.EscapeString(en.T("identify.continue_to", "Client", "Acme Shop")); !strings.Contains(page, want) {
			t.Errorf("sign-in page lacks %q:\n%s", want, page)
		}
		if !strings.Contains(page, `<img class="logo" src="https://cdn.shop.test/brand/logo.svg" alt="">`) {
			t.Errorf("sign-in page lacks the product's logo:\n%s", page)
		}
		if csp := a.header.Get("Content-Security-Policy"); !strings.Contains(csp, "img-src 'self' data: https://cdn.shop.test;") ||
			strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "style-src 'self';") {
			t.Errorf("sign-in page CSP %q: want the product logo's origin for images, nothing inline", csp)
		}

		// The logo and the stylesheet, from our origin.
		l := b.fetch(http.MethodGet, e.issuer+logo, nil, nil)
		if l.status != http.StatusOK || l.header.Get("Content-Type") != "image/png" || !bytes.Equal(l.body, pngLogo) {
			t.Errorf("logo: %d %q (%d bytes)", l.status, l.header.Get("Content-Type"), len(l.body))
		}
		s := b.fetch(http.MethodGet, e.issuer+style, nil, nil)
		if s.status != http.StatusOK || s.header.Get("Content-Type") != "text/css; charset=utf-8" ||
			!strings.Contains(string(s.body), "--accent: #0a7d5a;") || !strings.Contains(string(s.body), "/* Acme */") {
			t.Errorf("stylesheet: %d %q\n%s", s.status, s.header.Get("Content-Type"), s.body)
		}
		if nf := b.fetch(http.MethodGet, e.issuer+"/theme/extra.css", nil, nil); nf.status != http.StatusNotFound {
			t.Errorf("/theme/extra.css: %d, want 404 (only the logo and the stylesheet are served)", nf.status)
		}

		// The account pages, after a sign-in whose code mail is the theme's.
		p := b.account("/account/security", email, signInOpts{})
		if !p.at("/account/security") {
			t.Fatalf("account page: %s (%d)", p.url, p.status)
		}
		themed(t, "account page", p.body)
		m, ok := e.sink.Last(email)
		if !ok {
			t.Fatal("no mail")
		}
		if !strings.Contains(m.Text, "ACME CODE ") || !strings.Contains(m.Text, en.T("mail.code.valid", "ValidFor", e.app.cfg.Policy.EmailCodeTTL.Std())) {
			t.Errorf("code mail's text is not the theme's (in the catalogue's words):\n%s", m.Text)
		}
		if !strings.Contains(m.HTML, `<img src="`+e.issuer+logo+`"`) || !strings.Contains(m.HTML, "Acmé ID") {
			t.Errorf("code mail's HTML lacks the logo or the name:\n%s", m.HTML)
		}
		hdr, err := netmail.ReadMessage(bytes.NewReader(m.Raw))
		if err != nil {
			t.Fatal(err)
		}
		from, err := hdr.Header.AddressList("From")
		if err != nil || len(from) != 1 || from[0].Name != "Acmé ID" || from[0].Address != "noreply@localhost" {
			t.Errorf("From %q reads as %v, %v; want Acmé ID <noreply@localhost>", hdr.Header.Get("From"), from, err)
		}
		if raw := hdr.Header.Get("From"); !strings.HasPrefix(raw, "=?utf-8?") {
			t.Errorf("From %q: the name is not RFC 2047 encoded", raw)
		}

		// The consent page (the shop is a third party) shows its logo too.
		a = b.fetch(http.MethodGet, shop.authURLOnly(), nil, nil)
		if page := string(a.body); !strings.Contains(page, `data-page="consent"`) ||
			!strings.Contains(page, `<img class="logo" src="https://cdn.shop.test/brand/logo.svg" alt="">`) ||
			!strings.Contains(a.header.Get("Content-Security-Policy"), "img-src 'self' data: https://cdn.shop.test;") {
			t.Errorf("consent page: %d %q\n%s", a.status, a.header.Get("Content-Security-Policy"), page)
		}

		// The overridden page, with the theme around it.
		home := b.get(e.issuer + "/")
		if !strings.Contains(home.body, `<p class="acme-home">ACME HOME: `+html.EscapeString(en.T("home.account"))+`</p>`) {
			t.Errorf("home page is not the theme's:\n%s", home.body)
		}
		themed(t, "home page", home.body)
	})
}

// themed checks that a page carries the theme's logo and stylesheet and
// returns their paths.
func themed(t *testing.T, what, page string) (logo, style string) {
	t.Helper()
	lm, sm := logoRe.FindStringSubmatch(page), styleRe.FindStringSubmatch(page)
	if lm == nil || sm == nil {
		t.Fatalf("%s lacks the theme's logo or stylesheet:\n%s", what, page)
	}
	return html.UnescapeString(lm[1]), html.UnescapeString(sm[1])
}

// TestMailFromDisplayName: mail_from with a display name is the From of
// the mail people receive.
func TestMailFromDisplayName(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, storagetest.Dialects(t)[0], func(c *config.Config) { c.MailFrom = "Acme Sign-in <noreply@acme.test>" })
	const email = "bob@acme.test"
	e.createUser(email)
	e.newBrowser().toCodePage(e.newRP("app").authURLOnly(), email)
	e.deliver()
	m, ok := e.sink.Last(email)
	if !ok {
		t.Fatal("no mail")
	}
	hdr, err := netmail.ReadMessage(bytes.NewReader(m.Raw))
	if err != nil {
		t.Fatal(err)
	}
	if from, err := hdr.Header.AddressList("From"); err != nil || len(from) != 1 || from[0].Name != "Acme Sign-in" || from[0].Address != "noreply@acme.test" {
		t.Errorf("From %q reads as %v, %v", hdr.Header.Get("From"), from, err)
	}
	if m.From != "noreply@acme.test" {
		t.Errorf("envelope sender %q", m.From)
	}
}

// TestBrokenThemeRefusedAtStart: serve does not start with a template of
// theme.dir that does not parse (a page or a mail, a syntax error or an
// action html/template cannot escape) or that has no built-in namesake;
// the error names the file and the line. The port is taken, so a serve
// that let the theme pass would fail on the listen instead.
func TestBrokenThemeRefusedAtStart(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tc := range []struct{ name, file, src, want string }{
		{"page syntax", "identify.html", "{{define \"content\"}}\n<p>\n{{if .Data}}</p>\n{{end}}", "identify.html:4: unexpected EOF"},
		{"page function", "password.html", "{{define \"content\"}}\n\n{{tt \"x\"}}{{end}}", `password.html:3: function "tt" not defined`},
		{"page escaping", "layout.html", "<html>\n<body>\n{{if .Site}}<a href=\"{{.Site}}{{end}}\">x</a>\n{{template \"content\" .}}</body></html>", "layout.html:3:"},
		{"account partials", "account_partials.html", "{{define \"account-nav\"}}\n{{end}", "account_partials.html:2:"},
		{"mail", "notice.html.tmpl", "{{template \"layout\" .}}\n{{define \"content\"}}{{.Change}\n{{end}}", "notice.html.tmpl:2:"},
		{"unknown name", "idenitfy.html", "{{define \"content\"}}{{end}}", "idenitfy.html: not the name of a page or mail template"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeTheme(t, map[string]string{tc.file: tc.src})
			env := append(cliEnviron(t), "LATCHKEY_ADDR="+ln.Addr().String(), "LATCHKEY_THEME_DIR="+filepath.Join(dir, "templates"))
			var out, errb bytes.Buffer
			code := run(context.Background(), []string{"serve"}, strings.NewReader(""), &out, &errb, env)
			want := "theme.dir: " + filepath.Join(dir, "templates", tc.want)
			if tc.name == "unknown name" {
				want = "theme.dir: " + tc.want
			}
			if code == exitOK || !strings.Contains(errb.String(), want) {
				t.Fatalf("serve with a broken %s: exit %d, want %q in:\n%s", tc.file, code, want, errb.String())
			}
		})
	}
}
