package web

import (
	"errors"
	"net"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/login/factor"
	"github.com/latchkey/latchkey/login/i18n"
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
// bindings and audit events: with the browser in words and the request's
// language preferences (the mails' language follows them, with the
// recipient's own saved language).
func (k *Kit) From(c echo.Context) creds.From {
	ua := UserAgent(c)
	return creds.From{BrowserHash: k.BrowserHash(c), IP: ClientIP(c), UserAgent: ua, Browser: BrowserMsg(ua),
		Langs: k.LanguagePrefs(c)}
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

// BackupCodeView is how a backup code is shown: grouped, with a text file
// to download (the template's backupFile), and the form that confirms it
// was saved.
type BackupCodeView struct {
	ID, Code, Action string
	Replaced         bool
}

// BackupCode builds the view of a canonical backup code; id and action
// are the form's (the sign-in's id, where the form posts).
func (k *Kit) BackupCode(id, canonical, action string, replaced bool) BackupCodeView {
	return BackupCodeView{ID: id, Code: factor.FormatBackupCode(canonical), Action: action, Replaced: replaced}
}

// NewPasswordMessage says which rule a new password broke (the zero Msg if
// none).
func NewPasswordMessage(err error) i18n.Msg {
	switch {
	case err == nil:
		return i18n.Msg{}
	case errors.Is(err, factor.ErrPasswordTooShort):
		return i18n.M("password.rule.too_short")
	case errors.Is(err, factor.ErrPasswordTooLong):
		return i18n.M("password.rule.too_long")
	case errors.Is(err, factor.ErrPasswordCommon):
		return i18n.M("password.rule.common")
	case errors.Is(err, factor.ErrPasswordIsEmail):
		return i18n.M("password.rule.is_email")
	case errors.Is(err, factor.ErrPasswordEncoding):
		return i18n.M("password.rule.encoding")
	}
	return i18n.M("password.rule.generic")
}

// SignupPasswordMessage is NewPasswordMessage worded for a new account
// ("Your password", not "Your new password").
func SignupPasswordMessage(err error) i18n.Msg {
	switch {
	case errors.Is(err, factor.ErrPasswordTooShort):
		return i18n.M("password.rule.signup_too_short")
	case errors.Is(err, factor.ErrPasswordTooLong):
		return i18n.M("password.rule.signup_too_long")
	case errors.Is(err, factor.ErrPasswordEncoding):
		return i18n.M("password.rule.signup_encoding")
	}
	return NewPasswordMessage(err)
}

// TooMany is the message of a throttled attempt.
func TooMany(wait time.Duration) i18n.Msg {
	wait = wait.Round(time.Second)
	if wait < time.Second {
		wait = time.Second
	}
	return i18n.M("throttle.too_many", "Wait", wait)
}
