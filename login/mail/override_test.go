package mail

import (
	"strings"
	"testing"
	"time"
)

// TestTemplateOverrides: a theme's mail template replaces the built-in
// one of the same file name and still speaks through the catalogue; the
// mails it does not name keep theirs; the logo is in the HTML part.
func TestTemplateOverrides(t *testing.T) {
	files := map[string]string{
		"code.txt.tmpl": `{{template "greeting" .}} ACME CODE {{.Code}} ({{t "mail.code.do_not_share" "Site" .SiteName}})`,
	}
	ts, err := ParseTemplates(func(name string) (string, bool) { s, ok := files[name]; return s, ok })
	if err != nil {
		t.Fatal(err)
	}
	site := testSite
	site.Templates, site.Logo = ts, "https://id.example.com/theme/logo.png"
	m, err := CodeMail{Site: site, To: "ada@example.com", Code: "493817", ValidFor: 10 * time.Minute, RequestedAt: testAt, Lang: "de"}.Message()
	if err != nil {
		t.Fatal(err)
	}
	contains(t, "overridden text part", m.Text, "Guten Tag", "ACME CODE 493817", "Latchkey")
	contains(t, "built-in HTML part", m.HTML, "493817", `<img src="https://id.example.com/theme/logo.png"`)
	n, err := NoticeMail{Site: site, To: "ada@example.com", Change: "Password changed", At: testAt}.Message()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(n.Text, "ACME") {
		t.Errorf("the notice took the code mail's override:\n%s", n.Text)
	}
}

// TestTemplateOverrideErrors: a broken override fails the parse, naming
// its file and line: a syntax error, an unknown function, and an action
// html/template cannot escape (found before any mail is sent).
func TestTemplateOverrideErrors(t *testing.T) {
	for _, tc := range []struct{ file, src, want string }{
		{"notice.txt.tmpl", "line one\n{{if .Change}}", "notice.txt.tmpl:2:"},
		{"layout.html.tmpl", "{{define \"layout\"}}\n\n{{nope .Heading}}{{end}}", `layout.html.tmpl:3: function "nope" not defined`},
		{"link.html.tmpl", "{{template \"layout\" .}}\n{{define \"content\"}}\n<p>{{if .Link}}<a href=\"{{.Link}}{{end}}</p>{{end}}", "link.html.tmpl:3:"},
	} {
		_, err := ParseTemplates(func(name string) (string, bool) {
			if name == tc.file {
				return tc.src, true
			}
			return "", false
		})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.file, err, tc.want)
		}
	}
}
