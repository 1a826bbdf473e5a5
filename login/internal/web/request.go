package web

import (
	"errors"
	"html/template"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/login/factor"
	"github.com/latchkey/latchkey/login/flow"
	"github.com/latchkey/latchkey/login/internal/creds"
	"github.com/latchkey/latchkey/storage"
)

// ClientIP is the client's address as echo's IPExtractor says: cmd sets
// it to package clientip's rule (the peer, or behind a configured trusted
// proxy the rightmost address it did not add itself), never to a header
// the client alone writes.
func ClientIP(c echo.Context) string {
	ip := c.RealIP()
	if host, _, err := net.SplitHostPort(ip); err == nil {
		return host
	}
	return ip
}

// UserAgent is the request's User-Agent as text that can be stored and
// shown: invalid UTF-8 and control characters replaced, at most 300
// bytes, cut between characters.
func UserAgent(c echo.Context) string {
	return Truncate(CleanText(c.Request().UserAgent()), 300)
}

// From describes who is asking, for the credential service's mails,
// bindings and audit events.
func (k *Kit) From(c echo.Context) creds.From {
	ua := UserAgent(c)
	return creds.From{BrowserHash: k.BrowserHash(c), IP: ClientIP(c), UserAgent: ua, Browser: DescribeBrowser(ua)}
}

// Truncate cuts s to at most n bytes, between characters: a multi-byte
// character that does not fit is left out whole, so valid UTF-8 stays
// valid (PostgreSQL refuses the half of a character).
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	// Back up over continuation bytes (10xxxxxx) to the start of the
	// character that straddles the cut.
	i := n
	for i > 0 && i > n-utf8.UTFMax && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

// CleanText makes text a client wrote into something that can be stored
// and shown: invalid UTF-8 becomes U+FFFD and control characters (NUL
// among them) are dropped. For labels (a browser's User-Agent, a name an
// identity provider sends), never for values that are compared.
func CleanText(s string) string {
	if storage.ValidText(s) && strings.IndexFunc(s, unicode.IsControl) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}

// RelativeDay: "today", "yesterday", "3 days ago", then a date.
func RelativeDay(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	t, now = t.UTC(), now.UTC()
	days := int(now.Truncate(24*time.Hour).Sub(t.Truncate(24*time.Hour)) / (24 * time.Hour))
	switch {
	case days <= 0:
		return "today"
	case days == 1:
		return "yesterday"
	case days < 7:
		return strconv.Itoa(days) + " days ago"
	}
	return "on " + ShortDate(t, now)
}

// ShortDate: "2 Dec", with the year when it is not this year.
func ShortDate(t, now time.Time) string {
	t = t.UTC()
	if t.Year() == now.UTC().Year() {
		return t.Format("2 Jan")
	}
	return t.Format("2 Jan 2006")
}

// BackupCodeView is how a backup code is shown: grouped, and as a text
// file to download.
type BackupCodeView struct {
	ID, Code, Filename, Action string
	Download                   template.URL
	Replaced                   bool
}

// BackupCode builds the view of a canonical backup code; id and action
// are the form's (the sign-in's id, where the form posts).
func (k *Kit) BackupCode(id, canonical, action string, replaced bool) BackupCodeView {
	formatted := factor.FormatBackupCode(canonical)
	text := k.site + " backup code\r\n" + formatted + "\r\n"
	return BackupCodeView{
		ID: id, Code: formatted, Action: action, Replaced: replaced,
		Filename: strings.ToLower(strings.ReplaceAll(k.site, " ", "-")) + "-backup-code.txt",
		Download: template.URL("data:text/plain;charset=utf-8," + url.PathEscape(text)),
	}
}

// NewPasswordMessage says which rule a new password broke ("" if none).
func NewPasswordMessage(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, factor.ErrPasswordTooShort):
		return "Your new password is too short: use at least 8 characters."
	case errors.Is(err, factor.ErrPasswordTooLong):
		return "Your new password is too long: use at most 1024 bytes."
	case errors.Is(err, factor.ErrPasswordCommon):
		return "That password is too common: it is on a list of passwords found in data breaches. Choose another one."
	case errors.Is(err, factor.ErrPasswordIsEmail):
		return "Do not use your email address as your password."
	case errors.Is(err, factor.ErrPasswordEncoding):
		return "Your new password contains characters we cannot read."
	}
	return "Choose another password."
}

// TooMany is the message of a throttled attempt.
func TooMany(wait time.Duration) string {
	wait = wait.Round(time.Second)
	if wait < time.Second {
		wait = time.Second
	}
	return "Too many attempts. Try again in " + flow.HumanDuration(wait) + "."
}
