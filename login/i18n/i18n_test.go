package i18n

import (
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/login/flow"
)

const day = 24 * time.Hour

func english(t *testing.T) *Localizer {
	t.Helper()
	b, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	return b.Localizer(English)
}

// TestDuration: the one formatter of durations on pages and in mails,
// with the plural forms of the catalogue ("1 day", "2 days").
func TestDuration(t *testing.T) {
	l := english(t)
	for d, want := range map[time.Duration]string{
		0:                                     "0 seconds",
		time.Second:                           "1 second",
		29*time.Second + 900*time.Millisecond: "29 seconds",
		time.Minute:                           "1 minute",
		time.Minute + time.Second:             "2 minutes", // a wait is rounded up
		90 * time.Minute:                      "1 hour 30 minutes",
		time.Hour:                             "1 hour",
		59*time.Minute + 59*time.Second:       "1 hour",
		2*time.Hour + 59*time.Second + 1:      "2 hours 1 minute",
		24 * time.Hour:                        "1 day",
		36 * time.Hour:                        "1 day 12 hours",
		2 * day:                               "2 days",
		30 * day:                              "30 days",
		30*day + 5*time.Hour:                  "30 days 5 hours",
		day + time.Hour + time.Minute:         "1 day 1 hour 1 minute",
	} {
		if got := l.Duration(d); got != want {
			t.Errorf("Duration(%v) = %q, want %q", d, got, want)
		}
		// Operators read the same words (the CLI, Text): one split.
		if got := flow.HumanDuration(d); got != want {
			t.Errorf("flow.HumanDuration(%v) = %q, want %q", d, got, want)
		}
	}
	if got := l.TN("duration.days", 1); got != "1 day" {
		t.Errorf("one: %q", got)
	}
	if got := l.T("remember.stay.yes", "For", 30*day); got != "Stay signed in for 30 days" {
		t.Errorf("SPEC §10 words: %q", got)
	}
}

// TestDates: dates and times in the language, in the time's own zone.
func TestDates(t *testing.T) {
	l := english(t)
	at := time.Date(2026, 11, 23, 13, 5, 0, 0, time.UTC)
	if got := l.DateTime(at); got != "23 Nov 2026, 13:05 UTC" {
		t.Errorf("DateTime = %q", got)
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	if got := l.DateTime(at.In(berlin)); got != "23 Nov 2026, 14:05 CET" {
		t.Errorf("DateTime in Berlin = %q", got)
	}
	kolkata := time.FixedZone("", 5*3600+30*60)
	if got := l.DateTime(at.In(kolkata)); got != "23 Nov 2026, 18:35 UTC+05:30" {
		t.Errorf("DateTime at +05:30 = %q", got)
	}
	if got := l.DateTime(time.Time{}); got != "never" {
		t.Errorf("zero DateTime = %q", got)
	}
	if got := l.Date(at); got != "23 Nov 2026" {
		t.Errorf("Date = %q", got)
	}
	now := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	if got := l.ShortDate(time.Date(2026, 12, 2, 23, 0, 0, 0, time.UTC), now); got != "2 Dec" {
		t.Errorf("ShortDate this year = %q", got)
	}
	if got := l.ShortDate(time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC), now); got != "2 Jan 2027" {
		t.Errorf("ShortDate next year = %q", got)
	}
	for ago, want := range map[time.Duration]string{
		0: "today", 9 * time.Hour: "today", 9*time.Hour + time.Minute: "yesterday", 2 * day: "2 days ago",
		6 * day: "6 days ago", 7 * day: "on 28 Nov",
	} {
		if got := l.RelativeDay(now.Add(-ago), now); got != want {
			t.Errorf("RelativeDay(now-%v) = %q, want %q", ago, got, want)
		}
	}
	// Days are counted where the user is: 23:30 UTC is already tomorrow
	// in Tokyo.
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	late := time.Date(2026, 12, 4, 23, 30, 0, 0, time.UTC)
	if got := l.RelativeDay(late, now.In(tokyo)); got != "today" {
		t.Errorf("RelativeDay in Tokyo = %q", got)
	}
	if got := l.RelativeDay(time.Time{}, now); got != "never" {
		t.Errorf("RelativeDay(zero) = %q", got)
	}
}

// TestMessages: arguments, markup and the values a message localizes.
func TestMessages(t *testing.T) {
	l := english(t)
	if got := l.T("error.error_id_html", "ID", `<b>&`); got != "Error id: <code>&lt;b&gt;&amp;</code>. Quote it if you contact support." {
		t.Errorf("markup message: arguments must be escaped: %q", got)
	}
	if got := l.T("identify.continue_to", "Client", "<b>"); got != "to continue to <b>" {
		t.Errorf("text message: arguments as they are (the page escapes the whole): %q", got)
	}
	if got := l.Msg(M("throttle.too_many", "Wait", 90*time.Second)); got != "Too many attempts. Try again in 2 minutes." {
		t.Errorf("duration argument: %q", got)
	}
	if got := l.Msg(M("account.devices.device_row", "Browser", M("browser.on", "Browser", "Firefox", "OS", "Windows"),
		"Until", ShortDate{T: time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC), Now: time.Date(2026, 11, 5, 0, 0, 0, 0, time.UTC)},
		"LastUsed", RelativeDay{T: time.Date(2026, 11, 4, 0, 0, 0, 0, time.UTC), Now: time.Date(2026, 11, 5, 0, 0, 0, 0, time.UTC)})); got != "Firefox on Windows, trusted until 2 Dec, last used yesterday" {
		t.Errorf("SPEC 2's Devices line: %q", got)
	}
	if got := l.Msg(M("account.devices.consent_row", "Product", "Partner", "Scopes", List{M("scope.openid"), M("scope.email")},
		"Since", ShortDate{T: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), Now: time.Date(2026, 11, 5, 0, 0, 0, 0, time.UTC)})); got != "Partner, allowed to confirm who you are, see your email address since 2 Jan" {
		t.Errorf("list: %q", got)
	}
	for _, m := range []Msg{M("no.such.id"), M("identify.continue_to"), M("identify.continue_to", "Client"), M("identify.continue_to", 1, "x")} {
		if got := l.Msg(m); got != "["+m.ID+"]" {
			t.Errorf("%+v: %q, want the id (a visible mistake)", m, got)
		}
	}
	if got := l.Msg(Msg{}); got != "" {
		t.Errorf("zero Msg: %q", got)
	}
}

// TestPseudo: the pseudo-locale marks and accents every message, keeps
// placeholders and markup, and is derived from English.
func TestPseudo(t *testing.T) {
	b := MustLoad()
	p := b.Localizer(Pseudo)
	if p.Lang() != Pseudo {
		t.Fatalf("lang %q", p.Lang())
	}
	if got := p.T("button.continue"); got != "⟦Çöñţîñûé⟧" {
		t.Errorf("Continue: %q", got)
	}
	if got := p.T("error.error_id_html", "ID", "abc&"); got != "⟦Éŕŕöŕ îð: <code>abc&amp;</code>. Ǫûöţé îţ îƒ ýöû çöñţåçţ šûþþöŕţ.⟧" {
		t.Errorf("markup kept: %q", got)
	}
	if got := p.TN("duration.days", 2); got != "⟦2 ðåýš⟧" {
		t.Errorf("plural: %q", got)
	}
	if got := PseudoText(`Say "<b>" &amp; {{.Name}}`, true); got != `⟦Šåý "<b>" &amp; {{.Name}}⟧` {
		t.Errorf("PseudoText: %q", got)
	}
	for _, m := range b.MessageFile(English).Messages {
		got := p.T(m.ID)
		if !strings.HasPrefix(got, PseudoOpen) && !strings.HasPrefix(got, "[") {
			t.Errorf("%s: %q not marked", m.ID, got)
		}
	}
}

// TestChoose: the order of SPEC 12 and issue 14 — the product's
// ui_locales, the account's language, the browser's Accept-Language, the
// default — each matched to a language the catalogue has (a region falls
// back to its language, a script does not).
func TestChoose(t *testing.T) {
	b := MustLoad()
	c, err := NewChooser(b, "", true)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		p    Prefs
		want string
	}{
		{"nothing: the default", Prefs{}, English},
		{"ui_locales first", Prefs{UILocales: []string{"en-XA"}, Account: "en", Accept: "en"}, Pseudo},
		{"first supported ui_locale", Prefs{UILocales: []string{"tlh", "x-bad!", "en-XA"}}, Pseudo},
		{"account before the browser", Prefs{Account: "en-XA", Accept: "en"}, Pseudo},
		{"unsupported account: the browser", Prefs{Account: "tlh", Accept: "en-XA"}, Pseudo},
		{"browser", Prefs{Accept: "tlh, en-XA;q=0.5"}, Pseudo},
		{"browser's q-values", Prefs{Accept: "en;q=0.1, en-XA;q=0.9"}, Pseudo},
		{"q=0 is refused", Prefs{Accept: "en-XA;q=0"}, English},
		{"region → language", Prefs{Accept: "en-GB"}, English},
		{"garbage", Prefs{UILocales: []string{strings.Repeat("a", 100)}, Account: "\x00", Accept: ";;;,,q=x"}, English},
	} {
		if got := c.Choose(tc.p); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	// Without the pseudo-locale on, nothing picks it.
	off, _ := NewChooser(b, "", false)
	if got := off.Choose(Prefs{UILocales: []string{"en-XA"}, Accept: "en-XA"}); got != English {
		t.Errorf("pseudo-locale off: %q", got)
	}
	if _, err := NewChooser(b, "tlh", false); err == nil {
		t.Error("an unsupported default language accepted")
	}
	if got := c.Match("en-US"); got != English {
		t.Errorf("Match(en-US) = %q", got)
	}
	if got := c.Match("zh-Hant"); got != "" {
		t.Errorf("Match(zh-Hant) = %q", got)
	}
	if !Supported(English) || Supported(Pseudo) || Supported("tlh") {
		t.Error("Supported")
	}
	if got := Languages(); len(got) == 0 || got[0] != English {
		t.Errorf("Languages() = %v", got)
	}
}

// TestTimeZones: every zone offered loads, and anything else is UTC.
func TestTimeZones(t *testing.T) {
	for _, z := range TimeZones() {
		if loc, err := time.LoadLocation(z); err != nil || Location(z).String() != loc.String() {
			t.Errorf("%s: %v", z, err)
		}
	}
	for _, z := range []string{"", "Mars/Olympus", "Local", "../../etc/passwd"} {
		if Location(z) != time.UTC {
			t.Errorf("%q: not UTC", z)
		}
	}
}
