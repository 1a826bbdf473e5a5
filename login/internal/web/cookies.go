package web

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/login/factor"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
)

// Cookie names: every cookie the pages set, in one place.
const (
	CookieBrowser    = "lk_browser"     // random handle: binds sign-ins, codes and CSRF to this browser
	CookieSession    = "lk_session"     // browser session token
	CookieDevice     = "id.secret"      // trusted-device token (the seeds' "HttpOnly cookie id.secret")
	CookieDemo       = "lk_demo"        // the demo relying party's sealed flow
	CookieAccount    = "lk_account"     // sealed account session
	CookieAccountRP  = "lk_account_rp"  // sealed flow of an account sign-in or reconfirmation in flight
	CookieBackupShow = "lk_backup_show" // sealed new backup code, until "I saved my backup code"
	CookieReset      = "lk_reset"       // sealed password-reset stage
	CookieSignup     = "lk_signup"      // sealed sign-up in progress
	CookieUpstream   = "lk_upstream"    // sealed upstream sign-out link of the last SSO sign-in
)

// LongLived is the lifetime of the browser handle and device cookies.
const LongLived = 400 * 24 * time.Hour

// maxSealedCookie bounds what OpenSealed reads (the sign-up's, the
// largest, holds a password hash and a name).
const maxSealedCookie = 3072

// SetCookie sets an HttpOnly, SameSite=Lax cookie for the whole site
// (Secure unless the issuer is plain-http localhost); maxAge 0 makes it a
// session cookie.
func (k *Kit) SetCookie(c echo.Context, name, value string, maxAge time.Duration) {
	ck := &http.Cookie{
		Name: name, Value: value, Path: "/", HttpOnly: true, Secure: k.secure,
		SameSite: http.SameSiteLaxMode,
	}
	if maxAge > 0 {
		ck.MaxAge = int(maxAge / time.Second)
	}
	c.SetCookie(ck)
}

// ClearCookie deletes a cookie.
func (k *Kit) ClearCookie(c echo.Context, name string) {
	c.SetCookie(&http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: k.secure, SameSite: http.SameSiteLaxMode})
}

// CookieValue is a cookie's value, "" when absent or oversized.
func CookieValue(c echo.Context, name string) string {
	ck, err := c.Cookie(name)
	if err != nil || len(ck.Value) > 1024 {
		return ""
	}
	return ck.Value
}

// EncodeSealed and DecodeSealed carry sealed bytes in cookies and forms.
func EncodeSealed(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// DecodeSealed is the inverse of EncodeSealed.
func DecodeSealed(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("web: empty sealed value")
	}
	return base64.RawURLEncoding.DecodeString(s)
}

// SetSealed stores v as JSON sealed with the keyring (AES-GCM) under the
// cookie's name as associated data: the browser can neither read nor
// change it, nor pass one sealed cookie off as another.
func (k *Kit) SetSealed(c echo.Context, name string, v any, maxAge time.Duration) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	k.SetCookie(c, name, EncodeSealed(k.kr.Seal(raw, []byte(name))), maxAge)
	return nil
}

// OpenSealed reads a cookie written by SetSealed into v.
func (k *Kit) OpenSealed(c echo.Context, name string, v any) error {
	ck, err := c.Cookie(name)
	if err != nil {
		return err
	}
	if len(ck.Value) > maxSealedCookie {
		return errors.New("web: oversized cookie " + name)
	}
	sealed, err := DecodeSealed(ck.Value)
	if err != nil {
		return err
	}
	raw, err := k.kr.Open(sealed, []byte(name))
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}

// BrowserHandle returns this browser's handle, creating the cookie when
// missing. The handle is a random 256-bit value; only its HMAC is stored.
func (k *Kit) BrowserHandle(c echo.Context) string {
	if v := CookieValue(c, CookieBrowser); len(v) >= 32 {
		return v
	}
	if v, ok := c.Get(CookieBrowser).(string); ok {
		return v
	}
	v := keyring.NewToken()
	k.SetCookie(c, CookieBrowser, v, LongLived)
	c.Set(CookieBrowser, v)
	return v
}

// BrowserHash is the digest of this browser's handle (nil without one).
func (k *Kit) BrowserHash(c echo.Context) []byte {
	v := CookieValue(c, CookieBrowser)
	if len(v) < 32 {
		s, ok := c.Get(CookieBrowser).(string)
		if !ok {
			return nil
		}
		v = s
	}
	return k.kr.MACString(keyring.PurposeBrowser, v)
}

// BoundBrowserHash is the digest of this browser's handle, creating the
// handle when missing (to bind something new to this browser).
func (k *Kit) BoundBrowserHash(c echo.Context) []byte {
	return k.kr.MACString(keyring.PurposeBrowser, k.BrowserHandle(c))
}

// CSRFToken is an HMAC of the browser handle: an attacker's page cannot
// read the cookie, so cannot forge the token (double submit, signed).
func (k *Kit) CSRFToken(c echo.Context) string {
	return hex.EncodeToString(k.kr.MACString(keyring.PurposeCSRF, k.BrowserHandle(c))[:16])
}

// CheckCSRF verifies the form's csrf field.
func (k *Kit) CheckCSRF(c echo.Context) error {
	v := CookieValue(c, CookieBrowser)
	got, err := hex.DecodeString(c.FormValue("csrf"))
	if v == "" || err != nil || len(got) != 16 {
		return Forbidden(MsgFormExpired, errors.New("csrf token missing or malformed"))
	}
	if !factor.Equal(got, k.kr.MACString(keyring.PurposeCSRF, v)[:16]) {
		return Forbidden(MsgFormExpired, errors.New("csrf token mismatch"))
	}
	return nil
}

// DeviceCookieMAC is the digest of this browser's trusted-device cookie
// (nil without one).
func (k *Kit) DeviceCookieMAC(c echo.Context) []byte {
	tok := CookieValue(c, CookieDevice)
	if tok == "" {
		return nil
	}
	return k.kr.MACString(keyring.PurposeDevice, tok)
}

// SessionCookieMAC is the digest of this browser's session cookie (nil
// without one).
func (k *Kit) SessionCookieMAC(c echo.Context) []byte {
	tok := CookieValue(c, CookieSession)
	if tok == "" {
		return nil
	}
	return k.kr.MACString(keyring.PurposeSession, tok)
}

// Equal compares two digests in constant time; an empty a never matches.
func Equal(a, b []byte) bool { return len(a) > 0 && factor.Equal(a, b) }

// SessionStore finds a browser session by the digest of its cookie.
type SessionStore interface {
	GetSessionByTokenHash(ctx context.Context, tokenHash []byte) (storage.Session, error)
}

// CurrentSession is this browser's session, or zero.
func (k *Kit) CurrentSession(c echo.Context, st SessionStore) (storage.Session, error) {
	mac := k.SessionCookieMAC(c)
	if mac == nil {
		return storage.Session{}, nil
	}
	s, err := st.GetSessionByTokenHash(c.Request().Context(), mac)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Session{}, nil
	}
	return s, err
}
