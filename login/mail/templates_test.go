package mail

import (
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	testSite = Site{Name: "Latchkey", URL: "https://id.example.com"}
	testAt   = time.Date(2026, 11, 23, 14, 5, 0, 0, time.FixedZone("CET", 3600))
)

func contains(t *testing.T, what, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, s)
		}
	}
}

func TestCodeMail(t *testing.T) {
	for purpose, words := range map[string][2]string{
		"":          {"sign-in", "to confirm your sign-in"},
		"signin":    {"sign-in", "to confirm your sign-in"},
		"reconfirm": {"security change", "to confirm a change to your security settings"},
		"signup":    {"email address", "to confirm your email address"},
		"reset":     {"password reset", "to reset your password"},
	} {
		m, err := CodeMail{
			Site: testSite, To: "ada@example.com", Name: `Ada <script>alert("x")</script>`, Code: "493817",
			ValidFor: 10 * time.Minute, RequestedAt: testAt, Browser: "Firefox on Windows", IP: "203.0.113.7",
			Purpose: purpose,
		}.Message()
		if err != nil {
			t.Fatalf("%q: %v", purpose, err)
		}
		if m.To != "ada@example.com" {
			t.Errorf("To = %q", m.To)
		}
		if strings.Contains(m.Subject, "493817") {
			t.Errorf("%q: the code is in the subject %q", purpose, m.Subject)
		}
		contains(t, "subject", m.Subject, "Latchkey", words[0])
		for part, body := range map[string]string{"text": m.Text, "html": m.HTML} {
			contains(t, purpose+" "+part, body, "493817", "10 minutes", "Firefox on Windows", "203.0.113.7",
				"23 Nov 2026, 13:05 UTC", words[1], "share")
		}
		contains(t, "text", m.Text, `Hello Ada <script>alert("x")</script>,`)
		contains(t, "html", m.HTML, "Hello Ada &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;,")
		if strings.Contains(m.HTML, "<script>") {
			t.Errorf("%q: the name is not escaped in HTML", purpose)
		}
		if purpose == "signin" || purpose == "reconfirm" || purpose == "" {
			for part, body := range map[string]string{"text": m.Text, "html": m.HTML} {
				contains(t, purpose+" "+part, body, "Change your password", "https://id.example.com/account")
			}
		}
	}
}

func TestCodeMailErrorsAndDefaults(t *testing.T) {
	ok := CodeMail{Site: Site{}, To: "a@example.com", Code: "123456", ValidFor: time.Minute}
	m, err := ok.Message()
	if err != nil {
		t.Fatal(err)
	}
	contains(t, "text", m.Text, "Hello,", "Latchkey", "an unknown browser", "1 minute")
	if strings.Contains(m.Text, "IP address") || strings.Contains(m.Text, "/account") {
		t.Errorf("empty IP or URL rendered:\n%s", m.Text)
	}
	custom := ok
	custom.Site = Site{Name: "Acme ID", URL: "https://id.acme.test/", SecurityURL: "https://id.acme.test/me/security"}
	m, err = custom.Message()
	if err != nil {
		t.Fatal(err)
	}
	contains(t, "text", m.Text, "Acme ID", "https://id.acme.test/me/security")
	contains(t, "subject", m.Subject, "Acme ID")

	for name, c := range map[string]CodeMail{
		"purpose":  {To: "a@example.com", Code: "1", ValidFor: time.Minute, Purpose: "bogus"},
		"code":     {To: "a@example.com", ValidFor: time.Minute},
		"validity": {To: "a@example.com", Code: "1"},
	} {
		if _, err := c.Message(); err == nil {
			t.Errorf("missing %s accepted", name)
		}
	}
}

func TestNoticeMail(t *testing.T) {
	m, err := NoticeMail{Site: testSite, To: "ada@example.com", Name: "Ada & <Co>", Change: "Authenticator app turned on",
		At: testAt, Browser: "Safari on macOS", IP: "2001:db8::1"}.Message()
	if err != nil {
		t.Fatal(err)
	}
	contains(t, "subject", m.Subject, "Latchkey", "Authenticator app turned on")
	for part, body := range map[string]string{"text": m.Text, "html": m.HTML} {
		contains(t, part, body, "Authenticator app turned on", "23 Nov 2026, 13:05 UTC", "Safari on macOS", "2001:db8::1",
			"wasn't you", "Change your password", "https://id.example.com/account")
	}
	contains(t, "html", m.HTML, "Hello Ada &amp; &lt;Co&gt;,")
	if _, err := (NoticeMail{To: "a@example.com"}).Message(); err == nil {
		t.Error("notice without a change accepted")
	}
}

func TestLinkMail(t *testing.T) {
	link := "https://id.example.com/account/password?token=abc&x=1"
	m, err := LinkMail{Site: testSite, To: "bob@example.com", Name: "Bob", Link: link, ValidFor: 24 * time.Hour}.Message()
	if err != nil {
		t.Fatal(err)
	}
	contains(t, "subject", m.Subject, "Set your Latchkey password")
	contains(t, "text", m.Text, "Hello Bob,", link, "1 day")
	contains(t, "html", m.HTML, `href="https://id.example.com/account/password?token=abc&amp;x=1"`, "1 day")

	evil, err := LinkMail{To: "bob@example.com", Link: "javascript:alert(1)", ValidFor: time.Hour}.Message()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(evil.HTML, `href="javascript:`) {
		t.Error("javascript: link rendered as href")
	}
	for name, l := range map[string]LinkMail{
		"purpose":  {To: "a@example.com", Link: "https://x", ValidFor: time.Hour, Purpose: "bogus"},
		"link":     {To: "a@example.com", ValidFor: time.Hour},
		"validity": {To: "a@example.com", Link: "https://x"},
	} {
		if _, err := l.Message(); err == nil {
			t.Errorf("missing %s accepted", name)
		}
	}
}

func TestRenderedMailsCompose(t *testing.T) {
	c, _ := CodeMail{Site: testSite, To: "Ada Lovelace <ada@example.com>", Code: "123456", ValidFor: 10 * time.Minute}.Message()
	if _, err := compose(mustAddr(t, testFrom), c, testAt); err != nil {
		t.Fatal(err)
	}
}

func TestFormatTime(t *testing.T) {
	if got := FormatTime(testAt); got != "23 Nov 2026, 13:05 UTC" {
		t.Errorf("FormatTime = %q", got)
	}
	if got := FormatTime(time.Date(2026, 1, 5, 9, 7, 0, 0, time.UTC)); got != "5 Jan 2026, 09:07 UTC" {
		t.Errorf("FormatTime = %q", got)
	}
}

// themedCodeMail is a sign-in code mail in English on a template set of
// its own, as a theme gives serve.
func themedCodeMail(t testing.TB) (CodeMail, *Templates) {
	ts, err := ParseTemplates(nil)
	if err != nil {
		t.Fatal(err)
	}
	site := testSite
	site.Templates = ts
	return CodeMail{Site: site, To: "ada@example.com", Name: "Ada", Code: "493817", ValidFor: 10 * time.Minute,
		RequestedAt: testAt, Browser: "Firefox on Windows", IP: "203.0.113.7", Purpose: "signin", Lang: "en"}, ts
}

// TestMailCopiesBoundOncePerLanguage: a mail's templates are copied and
// bound to a language the first time the mail is rendered in it, then
// reused — concurrently too — and each copy speaks its own language.
func TestMailCopiesBoundOncePerLanguage(t *testing.T) {
	c, ts := themedCodeMail(t)
	render := func(lang string) Message {
		c := c
		c.Lang = lang
		m, err := c.Message()
		if err != nil {
			t.Error(err)
		}
		return m
	}
	en, de := render("en"), render("de")
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			lang, want := "en", en
			if i%2 == 1 {
				lang, want = "de", de
			}
			if got := render(lang); got != want {
				t.Errorf("%s mail rendered differently the %dth time:\n%s", lang, i, got.Text)
			}
		})
	}
	wg.Wait()
	if en.Subject == de.Subject || en.Text == de.Text {
		t.Fatalf("English and German mails are alike: %q", en.Subject)
	}
	n := 0
	ts.bound.Range(func(k, _ any) bool {
		if k.(boundKey).name != "code" {
			t.Errorf("bound %v", k)
		}
		n++
		return true
	})
	if n != 2 {
		t.Errorf("%d bound copies for one mail in two languages, want 2", n)
	}
}

// BenchmarkCodeMail renders the sign-in code mail (text and HTML parts)
// with a theme's template set, as serve does.
//
//	go test -run x -bench CodeMail ./login/mail/
func BenchmarkCodeMail(b *testing.B) {
	m, _ := themedCodeMail(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Message(); err != nil {
			b.Fatal(err)
		}
	}
}
