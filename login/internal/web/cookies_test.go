package web

import (
	"context"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
)

func testKit(t *testing.T, issuer string) *Kit {
	t.Helper()
	kr, err := keyring.New([]byte(strings.Repeat("k", keyring.MinSecretLen)))
	if err != nil {
		t.Fatal(err)
	}
	k, err := New(Config{Issuer: issuer, Keyring: kr, StaySignedIn: 30 * 24 * time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// call runs fn on a request carrying cookies and returns the cookies the
// response sets.
func call(t *testing.T, cookies []*http.Cookie, form url.Values, fn func(c echo.Context)) []*http.Cookie {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	if form != nil {
		req = httptest.NewRequest(http.MethodPost, "/", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, ck := range cookies {
		req.AddCookie(ck)
	}
	rec := httptest.NewRecorder()
	fn(echo.New().NewContext(req, rec))
	return (&http.Response{Header: rec.Header()}).Cookies()
}

// jar applies set cookies to what a browser holds (by name).
func jar(held, set []*http.Cookie) []*http.Cookie {
	m := map[string]*http.Cookie{}
	for _, ck := range held {
		m[ck.Name] = ck
	}
	for _, ck := range set {
		if ck.MaxAge < 0 {
			delete(m, ck.Name)
		} else {
			m[ck.Name] = &http.Cookie{Name: ck.Name, Value: ck.Value}
		}
	}
	out := make([]*http.Cookie, 0, len(m))
	for _, ck := range m {
		out = append(out, ck)
	}
	return out
}

// TestCookiesUseHostPrefixOnHTTPS: on an https issuer every cookie is a
// "__Host-" cookie (Secure, Path=/, no Domain), HttpOnly and SameSite=Lax;
// on http://localhost the bare names, without Secure.
func TestCookiesUseHostPrefixOnHTTPS(t *testing.T) {
	for issuer, prefix := range map[string]string{"https://id.example.com": "__Host-", "http://localhost:8080": ""} {
		k := testKit(t, issuer)
		set := call(t, nil, nil, func(c echo.Context) {
			k.SetSessionCookie(c, "tok", true)
			k.SetCookie(c, CookieDevice, "dev", LongLived)
			_ = k.SetSealed(c, CookieAccount, map[string]string{"a": "b"}, 0)
			_ = k.SetSealed(c, CookieReset, map[string]string{"a": "b"}, time.Minute)
			k.ClearCookie(c, CookieUpstream)
			k.CSRFToken(c)
		})
		names := map[string]bool{}
		for _, ck := range set {
			names[ck.Name] = true
			if !strings.HasPrefix(ck.Name, prefix) || ck.Path != "/" || ck.Domain != "" || !ck.HttpOnly ||
				ck.SameSite != http.SameSiteLaxMode || ck.Secure != (prefix != "") {
				t.Errorf("%s: %s", issuer, ck.String())
			}
		}
		for _, stem := range []string{CookieSession, CookieDevice, CookieAccount, CookieReset, CookieUpstream, CookieBrowser} {
			if !names[prefix+stem] {
				t.Errorf("%s: no %s%s among %v", issuer, prefix, stem, names)
			}
		}
	}
}

type oneSession struct{ tokenHash []byte }

func (s oneSession) GetSessionByTokenHash(_ context.Context, h []byte) (storage.Session, error) {
	if Equal(h, s.tokenHash) {
		return storage.Session{ID: "s1", UserID: "u1", StaySignedIn: true}, nil
	}
	return storage.Session{}, storage.ErrNotFound
}

// TestLegacyCookieNamesReadForOneRelease: after the move to "__Host-"
// names, a session or trusted-device cookie under its old bare name still
// counts (nobody is signed out or asked for a code by the upgrade) and is
// moved to the new name at once; the prefixed cookie wins when both are
// there. The old bare browser handle is not carried over.
func TestLegacyCookieNamesReadForOneRelease(t *testing.T) {
	k := testKit(t, "https://id.example.com")
	st := oneSession{tokenHash: k.kr.MACString(keyring.PurposeSession, "old-session")}
	held := []*http.Cookie{{Name: "lk_session", Value: "old-session"}, {Name: "id.secret", Value: "old-device"}, {Name: "lk_browser", Value: keyring.NewToken()}}
	var sess storage.Session
	var dev []byte
	var handle []byte
	set := call(t, held, nil, func(c echo.Context) {
		var err error
		if sess, err = k.CurrentSession(c, st); err != nil {
			t.Fatal(err)
		}
		dev = k.DeviceCookieMAC(c)
		handle = k.BrowserHash(c)
	})
	if sess.ID != "s1" || !Equal(dev, k.kr.MACString(keyring.PurposeDevice, "old-device")) || handle != nil {
		t.Fatalf("session %q, device %x, handle %x", sess.ID, dev, handle)
	}
	byName := map[string]*http.Cookie{}
	for _, ck := range set {
		byName[ck.Name] = ck
	}
	if ck := byName["__Host-lk_session"]; ck == nil || ck.Value != "old-session" || ck.MaxAge != 30*24*3600 {
		t.Errorf("session not moved: %v", ck)
	}
	if ck := byName["__Host-id.secret"]; ck == nil || ck.Value != "old-device" {
		t.Errorf("device cookie not moved: %v", ck)
	}
	for _, old := range []string{"lk_session", "id.secret"} {
		if ck := byName[old]; ck == nil || ck.MaxAge >= 0 {
			t.Errorf("%s not expired: %v", old, ck)
		}
	}
	// Both names: the prefixed one is the one that counts.
	both := []*http.Cookie{{Name: "lk_session", Value: "old-session"}, {Name: "__Host-lk_session", Value: "other"}}
	call(t, both, nil, func(c echo.Context) {
		if s, _ := k.CurrentSession(c, st); s.ID != "" {
			t.Error("the legacy name won over the prefixed one")
		}
	})
}

// TestBrowserHandleMintedOnlyByServer: a browser-handle cookie the server
// did not seal (a made-up value, one sealed under another key) is ignored
// and replaced, and a CSRF token computed for it is refused.
func TestBrowserHandleMintedOnlyByServer(t *testing.T) {
	k := testKit(t, "https://id.example.com")
	other := testKit(t, "https://id.example.com")
	otherKR, _ := keyring.New([]byte(strings.Repeat("o", keyring.MinSecretLen)))
	other.kr = otherKR
	foreign := call(t, nil, nil, func(c echo.Context) { other.BrowserHandle(c) })[0].Value
	for name, value := range map[string]string{"made up": keyring.NewToken(), "sealed elsewhere": foreign, "garbage": "%%%"} {
		held := []*http.Cookie{{Name: "__Host-lk_browser", Value: value}}
		var minted string
		set := call(t, held, nil, func(c echo.Context) {
			if k.BrowserHash(c) != nil {
				t.Errorf("%s: accepted as a handle", name)
			}
			minted = k.BrowserHandle(c)
		})
		if len(set) != 1 || set[0].Name != "__Host-lk_browser" || set[0].Value == value || minted == value {
			t.Errorf("%s: not replaced: %v", name, set)
		}
		tok := hex.EncodeToString(k.kr.MACString(keyring.PurposeCSRF, value)[:16])
		call(t, held, url.Values{"csrf": {tok}}, func(c echo.Context) {
			if k.CheckCSRF(c) == nil {
				t.Errorf("%s: a token for it was accepted", name)
			}
		})
	}
}

// TestBoundCookieFollowsRotation: the account session is sealed for the
// browser's handle; a rotation re-seals it for the new handle; with any
// other handle (an old one planted back) it cannot be read; a CSRF token
// of the old handle is refused.
func TestBoundCookieFollowsRotation(t *testing.T) {
	k := testKit(t, "https://id.example.com")
	type acct struct{ Sub string }
	held := jar(nil, call(t, nil, nil, func(c echo.Context) { _ = k.SetSealed(c, CookieAccount, acct{"u1"}, 0) }))
	var oldTok string
	oldHandle := ""
	for _, ck := range held {
		if ck.Name == "__Host-lk_browser" {
			oldHandle = ck.Value
		}
	}
	var old, next []byte
	rotated := jar(held, call(t, held, nil, func(c echo.Context) {
		oldTok = k.CSRFToken(c)
		var a acct
		if err := k.OpenSealed(c, CookieAccount, &a); err != nil || a.Sub != "u1" {
			t.Fatalf("before: %v %v", a, err)
		}
		old, next = k.RotateBrowser(c)
		if o2, n2 := k.RotateBrowser(c); !Equal(o2, old) || !Equal(n2, next) {
			t.Error("a second rotation in one request")
		}
		if err := k.OpenSealed(c, CookieAccount, &a); err != nil || a.Sub != "u1" {
			t.Fatalf("same request, after: %v %v", a, err)
		}
		if !k.HeldBrowser(c, old) || !k.HeldBrowser(c, next) {
			t.Error("the old handle is not remembered")
		}
	}))
	if Equal(old, next) || old == nil {
		t.Fatal("no new handle")
	}
	call(t, rotated, url.Values{"csrf": {oldTok}}, func(c echo.Context) {
		var a acct
		if err := k.OpenSealed(c, CookieAccount, &a); err != nil || a.Sub != "u1" {
			t.Errorf("after the rotation: %v %v", a, err)
		}
		if k.CheckCSRF(c) == nil {
			t.Error("the old handle's CSRF token was accepted")
		}
	})
	// The old handle planted back over the new one.
	planted := jar(rotated, []*http.Cookie{{Name: "__Host-lk_browser", Value: oldHandle}})
	call(t, planted, nil, func(c echo.Context) {
		var a acct
		if err := k.OpenSealed(c, CookieAccount, &a); err == nil {
			t.Error("the account session was read under a planted handle")
		}
	})
	// A sign-out's reset forgets the old handles.
	call(t, rotated, nil, func(c echo.Context) {
		k.ResetBrowser(c)
		if k.HeldBrowser(c, old) || k.HeldBrowser(c, next) {
			t.Error("a reset remembered old handles")
		}
	})
}

// TestMoveBrowserIsDeterministic: two requests of one browser moving the
// same sign-in on by the same step (a double submit) get the same new
// handle; another step, another sign-in or another browser do not; a
// later step starts from the new handle.
func TestMoveBrowserIsDeterministic(t *testing.T) {
	k := testKit(t, "https://id.example.com")
	held := jar(nil, call(t, nil, nil, func(c echo.Context) { k.BrowserHandle(c) }))
	other := jar(nil, call(t, nil, nil, func(c echo.Context) { k.BrowserHandle(c) }))
	move := func(cookies []*http.Cookie, reason string) (old, next []byte, after []*http.Cookie) {
		after = jar(cookies, call(t, cookies, nil, func(c echo.Context) { old, next = k.MoveBrowser(c, reason) }))
		return old, next, after
	}
	o1, n1, after := move(held, "ar1\x00password")
	o2, n2, _ := move(held, "ar1\x00password")
	if !Equal(o1, o2) || !Equal(n1, n2) || Equal(o1, n1) {
		t.Fatal("a double submit moved to different handles")
	}
	for name, cookies := range map[string][]*http.Cookie{"another browser": other} {
		if _, n, _ := move(cookies, "ar1\x00password"); Equal(n, n1) {
			t.Errorf("%s: same handle", name)
		}
	}
	if _, n, _ := move(held, "ar1\x00secondfactor"); Equal(n, n1) {
		t.Error("another step: same handle")
	}
	if _, n, _ := move(held, "ar2\x00password"); Equal(n, n1) {
		t.Error("another sign-in: same handle")
	}
	o3, n3, _ := move(after, "ar1\x00password")
	if !Equal(o3, n1) || Equal(n3, n1) {
		t.Error("a later move does not start from the moved handle")
	}
}
