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

// Cookie names: every cookie the pages set, in one place. These are the
// names' stems: on an https issuer each is sent as "__Host-"+stem (see
// hostPrefix), on a plain-http localhost issuer as the stem alone.
const (
	CookieBrowser    = "lk_browser"     // sealed browser handle: binds sign-ins, codes and CSRF to this browser (browserHandle)
	CookieSession    = "lk_session"     // browser session token
	CookieDevice     = "id.secret"      // trusted-device token (the seeds' "HttpOnly cookie id.secret")
	CookieDemo       = "lk_demo"        // the demo relying party's sealed flow
	CookieAccount    = "lk_account"     // sealed account session, bound to the browser handle
	CookieAccountRP  = "lk_account_rp"  // sealed flow of an account sign-in or reconfirmation in flight
	CookieBackupShow = "lk_backup_show" // sealed new backup code, until "I saved my backup code"
	CookieReset      = "lk_reset"       // sealed password-reset stage
	CookieSignup     = "lk_signup"      // sealed sign-up in progress
	CookieUpstream   = "lk_upstream"    // sealed upstream sign-out link of the last SSO sign-in
	CookieEntry      = "lk_entry"       // /signup or /forgot opened directly: where the account sign-in it starts goes first
	CookieFlash      = "lk_flash"       // sealed outcome of a failed POST, for the one GET it redirects to (flash.go)
)

// hostPrefix is the cookie name prefix browsers enforce (RFC 6265bis
// §4.1.3.2): a "__Host-" cookie is only accepted when set with Secure,
// Path=/ and no Domain, from a secure origin. A sibling subdomain (which
// could set a Domain cookie for the whole site) and a plain-http network
// attacker (who cannot set a Secure cookie) can then neither plant nor
// overwrite one.
//
// Used whenever the issuer is https. A plain-http issuer is allowed only on
// localhost, 127.0.0.1 and [::1] (config); there the cookies keep their
// bare names and no Secure flag, because browsers do not agree on
// http://localhost: Firefox accepts Secure and "__Host-" cookies from it
// (it is a potentially trustworthy origin); Chromium accepts Secure
// cookies from localhost since M89 but rejected the prefixes there (its
// prefix check asked for a cryptographic scheme) until its recent cookie
// code, which now asks only for a trustworthy source; Safari accepts
// neither (WebKit bug 281149). A prefixed cookie a browser refuses breaks
// every sign-in with no way to tell, and on localhost the prefix would buy
// little: cookies are not isolated by port, so any other local server
// (another origin on localhost) can set "__Host-" cookies for it anyway.
// There the server-minted, rotated handle below is the protection.
const hostPrefix = "__Host-"

// legacyNames are read under their bare, pre-prefix names when the
// prefixed cookie is absent, for one release after the move to "__Host-"
// names, so that nobody is signed out (the session) or asked for a code
// again (the trusted device) by the upgrade; whoever has one is moved to
// the new name at once. To be removed in the release after. The other
// cookies are not carried over: the browser handle is minted again, a
// sign-in, reset or sign-up in flight starts over, the account pages sign
// in again silently.
var legacyNames = map[string]bool{CookieSession: true, CookieDevice: true}

// LongLived is the lifetime of the browser handle and device cookies.
const LongLived = 400 * 24 * time.Hour

// maxSealedCookie bounds what OpenSealed reads (the sign-up's, the
// largest, holds a password hash and a name).
const maxSealedCookie = 3072

// name is the cookie's name on the wire.
func (k *Kit) name(stem string) string {
	if k.secure {
		return hostPrefix + stem
	}
	return stem
}

// SetCookie sets an HttpOnly, SameSite=Lax cookie for the whole site
// (Path=/, no Domain; "__Host-" and Secure on an https issuer); maxAge 0
// makes it a session cookie. Setting a cookie retires its legacy name.
func (k *Kit) SetCookie(c echo.Context, name, value string, maxAge time.Duration) {
	ck := &http.Cookie{
		Name: k.name(name), Value: value, Path: "/", HttpOnly: true, Secure: k.secure,
		SameSite: http.SameSiteLaxMode,
	}
	if maxAge > 0 {
		ck.MaxAge = int(maxAge / time.Second)
	}
	c.SetCookie(ck)
	k.dropLegacy(c, name)
}

// ClearCookie deletes a cookie (and its legacy name).
func (k *Kit) ClearCookie(c echo.Context, name string) {
	if _, bound := boundCookies[name]; bound {
		k.state(c).sealed[name] = nil // gone: a rotation must not bring it back
	}
	c.SetCookie(&http.Cookie{Name: k.name(name), Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: k.secure, SameSite: http.SameSiteLaxMode})
	k.dropLegacy(c, name)
}

// dropLegacy expires the bare-named cookie of a prefixed one, if the
// browser sent it.
func (k *Kit) dropLegacy(c echo.Context, name string) {
	if !k.secure || !legacyNames[name] {
		return
	}
	if _, err := c.Cookie(name); err == nil {
		c.SetCookie(&http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	}
}

// Cookie is the named cookie as the request carried it (any size; the
// caller bounds what it reads).
func (k *Kit) Cookie(c echo.Context, name string) (*http.Cookie, error) {
	return c.Cookie(k.name(name))
}

// CookieValue is a cookie's value, "" when absent or oversized.
func (k *Kit) CookieValue(c echo.Context, name string) string {
	v, _ := k.cookieValue(c, name)
	return v
}

// cookieValue also says whether the value came from the legacy name.
func (k *Kit) cookieValue(c echo.Context, name string) (string, bool) {
	if ck, err := c.Cookie(k.name(name)); err == nil {
		if len(ck.Value) > 1024 {
			return "", false
		}
		return ck.Value, false
	}
	if k.secure && legacyNames[name] {
		if ck, err := c.Cookie(name); err == nil && len(ck.Value) <= 1024 {
			return ck.Value, true
		}
	}
	return "", false
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

// boundCookies are sealed cookies that belong to one browser handle: their
// associated data includes the handle's digest, so a handle planted later
// (or replaced by the browser's owner) makes them unreadable, and
// RotateBrowser re-seals them for the new handle. The value is the
// cookie's lifetime.
var boundCookies = map[string]time.Duration{CookieAccount: 0}

// SetSealed stores v as JSON sealed with the keyring (AES-GCM) under the
// cookie's name as associated data (and the browser handle's digest, for
// a bound cookie): the browser can neither read nor change it, nor pass
// one sealed cookie off as another.
func (k *Kit) SetSealed(c echo.Context, name string, v any, maxAge time.Duration) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	k.setSealedRaw(c, name, raw, maxAge)
	return nil
}

func (k *Kit) setSealedRaw(c echo.Context, name string, raw []byte, maxAge time.Duration) {
	ad := []byte(name)
	if _, bound := boundCookies[name]; bound {
		ad = boundAD(name, k.BoundBrowserHash(c))
		k.state(c).sealed[name] = raw
	}
	k.SetCookie(c, name, EncodeSealed(k.kr.Seal(raw, ad)), maxAge)
}

func boundAD(name string, browser []byte) []byte {
	return append([]byte(name+"\x00"), browser...)
}

// OpenSealed reads a cookie written by SetSealed into v (a bound cookie:
// as this response last set it, else as the request carried it, which
// must be sealed for the handle the request carried).
func (k *Kit) OpenSealed(c echo.Context, name string, v any) error {
	var raw []byte
	var err error
	if _, bound := boundCookies[name]; bound {
		var ok bool
		if raw, ok = k.openBound(c, name); !ok {
			return errors.New("web: no " + name + " for this browser handle")
		}
	} else if raw, err = k.openRaw(c, name, []byte(name)); err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}

// openBound is the plaintext of a bound cookie for this request.
func (k *Kit) openBound(c echo.Context, name string) ([]byte, bool) {
	st := k.state(c)
	if raw, ok := st.sealed[name]; ok {
		return raw, raw != nil
	}
	if st.sent.H == "" {
		return nil, false
	}
	raw, err := k.openRaw(c, name, boundAD(name, k.hashOf(st.sent.H)))
	return raw, err == nil
}

func (k *Kit) openRaw(c echo.Context, name string, ad []byte) ([]byte, error) {
	ck, err := c.Cookie(k.name(name))
	if err != nil {
		return nil, err
	}
	if len(ck.Value) > maxSealedCookie {
		return nil, errors.New("web: oversized cookie " + name)
	}
	sealed, err := DecodeSealed(ck.Value)
	if err != nil {
		return nil, err
	}
	return k.kr.Open(sealed, ad)
}

// --- the browser handle ---

// browserHandle is the content of the browser-handle cookie, sealed with
// the keyring (AES-GCM, the cookie's name as associated data). Only the
// server mints one: a value it did not seal is ignored and replaced, so
// nobody can choose a browser's handle, and a handle cannot be read from
// the cookie either. Sealing needs no table and holds across instances
// and restarts (every instance derives the same key from secret_key).
//
// What an attacker who can set a cookie for our host can still do is
// plant a handle the server minted for him. Everything bound to a handle
// therefore moves to a new one at every step that raises what the
// browser may do: each verified factor of a sign-in and its completion
// (MoveBrowser), a password or 2-step change and a reconfirmation
// (RotateBrowser), a sign-out (ResetBrowser).
// A planted handle is left behind at the victim's first step; the
// attacker cannot read the new one (HttpOnly, sealed).
type browserHandle struct {
	H string `json:"h"` // the handle: 256 random bits, base64url
	// Prev are the digests of this browser's earlier handles, newest
	// first: a sign-in bound to one of them (another tab, started before
	// a rotation) is taken over by the browser that proves it held it.
	Prev [][]byte `json:"p,omitempty"`
}

// maxPrevHandles bounds Prev (the cookie stays small).
const maxPrevHandles = 3

// browserState is what one request knows about its browser handle.
type browserState struct {
	loaded  bool
	sent    browserHandle // the valid handle the request carried (H "" if none)
	cur     browserHandle // the handle from now on (after a mint or rotation)
	rotated bool
	old     []byte // the digest the rotation replaced
	// sealed holds the plaintext of bound cookies set in this response
	// (nil: cleared), for reads and a later rotation in the same request.
	sealed map[string][]byte
}

const stateKey = "web.browser"

func (k *Kit) state(c echo.Context) *browserState {
	st, ok := c.Get(stateKey).(*browserState)
	if !ok {
		st = &browserState{sealed: map[string][]byte{}}
		c.Set(stateKey, st)
	}
	if !st.loaded {
		st.loaded = true
		if raw, err := k.openRaw(c, CookieBrowser, []byte(CookieBrowser)); err == nil {
			var h browserHandle
			if json.Unmarshal(raw, &h) == nil && len(h.H) == 43 {
				st.sent, st.cur = h, h
			}
		}
	}
	return st
}

func (k *Kit) writeHandle(c echo.Context, h browserHandle) {
	raw, err := json.Marshal(h)
	if err != nil { // cannot happen for this type
		panic(err)
	}
	k.SetCookie(c, CookieBrowser, EncodeSealed(k.kr.Seal(raw, []byte(CookieBrowser))), LongLived)
}

func (k *Kit) hashOf(handle string) []byte {
	if handle == "" {
		return nil
	}
	return k.kr.MACString(keyring.PurposeBrowser, handle)
}

// BrowserHandle returns this browser's handle, minting one (and setting
// the cookie) when the browser has none the server sealed.
func (k *Kit) BrowserHandle(c echo.Context) string {
	st := k.state(c)
	if st.cur.H == "" {
		st.cur = browserHandle{H: keyring.NewToken()}
		k.writeHandle(c, st.cur)
	}
	return st.cur.H
}

// BrowserHash is the digest of this browser's handle (nil without one).
func (k *Kit) BrowserHash(c echo.Context) []byte { return k.hashOf(k.state(c).cur.H) }

// BoundBrowserHash is the digest of this browser's handle, minting the
// handle when missing (to bind something new to this browser).
func (k *Kit) BoundBrowserHash(c echo.Context) []byte { return k.hashOf(k.BrowserHandle(c)) }

// HeldBrowser reports whether this browser holds, or held before a
// rotation, the handle whose digest is h.
func (k *Kit) HeldBrowser(c echo.Context, h []byte) bool {
	st := k.state(c)
	if Equal(h, k.hashOf(st.cur.H)) {
		return true
	}
	for _, p := range st.cur.Prev {
		if Equal(h, p) {
			return true
		}
	}
	return false
}

// RotateBrowser gives this browser a new handle, once per request (later
// calls return the same pair), and returns the digests of the old handle
// (nil if it had none) and the new one. The caller moves what it binds
// (the sign-in in progress) from old to new in the same breath; bound
// cookies (the account session) are re-sealed here. The old digest joins
// Prev, so the browser's other sign-ins in flight stay its own.
func (k *Kit) RotateBrowser(c echo.Context) (old, new []byte) {
	st := k.state(c)
	if st.rotated {
		return st.old, k.hashOf(st.cur.H)
	}
	return k.rotate(c, st, true)
}

// MoveBrowser is RotateBrowser for a sign-in that moves on: the new handle
// is derived from the current one and reason (the sign-in and its step)
// with a keyed hash, not drawn at random. Two requests the same browser
// sends for the same step (a double submit) move it to the same handle,
// so whichever answer the browser keeps, it holds the handle the sign-in
// is bound to. Only the server can compute it, and only a request that
// passed the step gets it.
func (k *Kit) MoveBrowser(c echo.Context, reason string) (old, new []byte) {
	st := k.state(c)
	if st.rotated {
		return st.old, k.hashOf(st.cur.H)
	}
	h := k.BrowserHandle(c)
	sum := k.kr.MACString(keyring.PurposeBrowserMove, h+"\x00"+reason)
	return k.rotateTo(c, st, base64.RawURLEncoding.EncodeToString(sum), true)
}

// ResetBrowser gives this browser a new handle with no history (sign-out:
// nothing of the old one follows the browser).
func (k *Kit) ResetBrowser(c echo.Context) {
	st := k.state(c)
	k.rotate(c, st, false)
}

func (k *Kit) rotate(c echo.Context, st *browserState, keep bool) (old, new []byte) {
	return k.rotateTo(c, st, keyring.NewToken(), keep)
}

func (k *Kit) rotateTo(c echo.Context, st *browserState, handle string, keep bool) (old, new []byte) {
	old = k.hashOf(st.cur.H)
	next := browserHandle{H: handle}
	if keep {
		if old != nil {
			next.Prev = append(next.Prev, old)
		}
		for _, p := range st.cur.Prev {
			if len(next.Prev) == maxPrevHandles {
				break
			}
			next.Prev = append(next.Prev, p)
		}
	}
	// The bound cookies follow the browser to its new handle.
	carry := map[string][]byte{}
	if keep {
		for name := range boundCookies {
			if raw, ok := k.openBound(c, name); ok {
				carry[name] = raw
			}
		}
	}
	st.cur, st.rotated, st.old = next, true, old
	k.writeHandle(c, next)
	for name, raw := range carry {
		k.setSealedRaw(c, name, raw, boundCookies[name])
	}
	return old, k.hashOf(next.H)
}

// CSRFToken is an HMAC of the browser handle: an attacker's page can
// neither read the cookie nor compute the token, and the token dies with
// the handle (RotateBrowser, ResetBrowser).
func (k *Kit) CSRFToken(c echo.Context) string {
	return hex.EncodeToString(k.kr.MACString(keyring.PurposeCSRF, k.BrowserHandle(c))[:16])
}

// CheckCSRF verifies the form's csrf field against the handle the request
// carried (a form made for an earlier handle is refused).
func (k *Kit) CheckCSRF(c echo.Context) error {
	h := k.state(c).sent.H
	got, err := hex.DecodeString(c.FormValue("csrf"))
	if h == "" || err != nil || len(got) != 16 {
		return Forbidden(MsgFormExpired, errors.New("csrf token missing or malformed"))
	}
	if !factor.Equal(got, k.kr.MACString(keyring.PurposeCSRF, h)[:16]) {
		return Forbidden(MsgFormExpired, errors.New("csrf token mismatch"))
	}
	return nil
}

// DeviceCookieMAC is the digest of this browser's trusted-device cookie
// (nil without one). A device cookie under its legacy name moves to the
// new one.
func (k *Kit) DeviceCookieMAC(c echo.Context) []byte {
	tok, legacy := k.cookieValue(c, CookieDevice)
	if tok == "" {
		return nil
	}
	if legacy {
		k.SetCookie(c, CookieDevice, tok, LongLived)
	}
	return k.kr.MACString(keyring.PurposeDevice, tok)
}

// Equal compares two digests in constant time; an empty a never matches.
func Equal(a, b []byte) bool { return len(a) > 0 && factor.Equal(a, b) }

// SessionStore finds a browser session by the digest of its cookie.
type SessionStore interface {
	GetSessionByTokenHash(ctx context.Context, tokenHash []byte) (storage.Session, error)
}

// SetSessionCookie sets the browser session cookie: for the stay-signed-in
// period, or until the browser closes.
func (k *Kit) SetSessionCookie(c echo.Context, tok string, staySignedIn bool) {
	var maxAge time.Duration
	if staySignedIn {
		maxAge = k.staySignedIn
	}
	k.SetCookie(c, CookieSession, tok, maxAge)
}

// CurrentSession is this browser's session, or zero. A session cookie
// under its legacy name moves to the new one.
func (k *Kit) CurrentSession(c echo.Context, st SessionStore) (storage.Session, error) {
	tok, legacy := k.cookieValue(c, CookieSession)
	if tok == "" {
		return storage.Session{}, nil
	}
	s, err := st.GetSessionByTokenHash(c.Request().Context(), k.kr.MACString(keyring.PurposeSession, tok))
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Session{}, nil
	}
	if err == nil && legacy {
		k.SetSessionCookie(c, tok, s.StaySignedIn)
	}
	return s, err
}
