package account

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/login/flow"
	"github.com/latchkey/latchkey/login/i18n"
	"github.com/latchkey/latchkey/login/internal/web"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
)

// The stubs embed nil interfaces: any call panics, so a test using them
// also proves that the request was refused before any storage, OP or mail
// work. The account pages are exercised end to end (as a relying party
// of the real OP) in cmd/latchkey.
type (
	untouchedStore  struct{ Store }
	untouchedOP     struct{ OP }
	untouchedOutbox struct{ Kicker interface{ Kick() } }
)

// sessionStore answers only what resolving an account session asks (this
// browser's session and its user); anything else panics.
type sessionStore struct {
	untouchedStore
	sess storage.Session
	user storage.User
}

func (s sessionStore) GetSessionByTokenHash(context.Context, []byte) (storage.Session, error) {
	if s.sess.ID == "" {
		return storage.Session{}, storage.ErrNotFound
	}
	return s.sess, nil
}

func (s sessionStore) GetUser(context.Context, string) (storage.User, error) { return s.user, nil }

func newTestHandler(t *testing.T, st Store) (*Handler, *keyring.Keyring) {
	t.Helper()
	kr, err := keyring.New([]byte(strings.Repeat("k", keyring.MinSecretLen)))
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{Issuer: "https://id.example.com", Demo: true, Policy: flow.Policy{SessionIdle: 24 * time.Hour}},
		Deps{Store: st, Keyring: kr, OP: untouchedOP{}, Outbox: untouchedOutbox{}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return h, kr
}

// signedInCookies are the cookies the pages set in a browser signed in to
// the account pages (its handle, its browser session, the account session
// sealed for that handle), made by the page machinery itself.
func signedInCookies(t *testing.T, h *Handler, s accountSession) []*http.Cookie {
	t.Helper()
	rec := httptest.NewRecorder()
	c := echo.New().NewContext(httptest.NewRequest(http.MethodGet, "/", nil), rec)
	h.web.SetSessionCookie(c, keyring.NewToken(), false)
	if err := h.web.SetSealed(c, web.CookieAccount, s, 0); err != nil {
		t.Fatal(err)
	}
	return (&http.Response{Header: rec.Header()}).Cookies()
}

// TestFormsCheckCSRF: every account form a browser can post is refused
// without this browser's CSRF token, with a forged one or with another
// browser's, before anything is changed (the store panics on anything
// but resolving the account session); without an account session a post
// changes nothing and goes to the page, which signs in. The account API
// is for bearer tokens and takes no cookies.
func TestFormsCheckCSRF(t *testing.T) {
	t.Parallel()
	now := time.Now()
	signedIn := sessionStore{sess: storage.Session{ID: "s1", UserID: "u1", LastSeenAt: now, AuthTime: now},
		user: storage.User{ID: "u1", Email: "u1@example.com"}}
	for _, withSession := range []bool{true, false} {
		st := signedIn
		if !withSession {
			st = sessionStore{}
		}
		h, kr := newTestHandler(t, st)
		e := echo.New()
		h.Register(e)
		e.HTTPErrorHandler = h.web.HandleError
		cookies := signedInCookies(t, h, accountSession{Sub: "u1", SID: "s1", AuthTime: now, ReconfirmedAt: now, Expires: now.Add(time.Hour)})
		other := hex.EncodeToString(kr.MACString(keyring.PurposeCSRF, keyring.NewToken())[:16])
		posts := 0
		for _, r := range e.Routes() {
			if r.Method != http.MethodPost || strings.HasPrefix(r.Path, "/api/") {
				continue
			}
			posts++
			for name, token := range map[string]string{"missing": "", "forged": strings.Repeat("ab", 16), "other browser's": other} {
				t.Run(fmt.Sprintf("%s/%s/session=%v", r.Path, name, withSession), func(t *testing.T) {
					form := url.Values{"id": {"x"}, "kind": {"session"}, "password": {"p"}, "new_password": {"q"}, "code": {"123456"}}
					if token != "" {
						form.Set("csrf", token)
					}
					req := httptest.NewRequest(http.MethodPost, r.Path, strings.NewReader(form.Encode()))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					for _, ck := range cookies {
						req.AddCookie(ck)
					}
					rec := httptest.NewRecorder()
					func() {
						defer func() {
							if p := recover(); p != nil {
								t.Fatalf("handled the form: %v\n%s", p, debug.Stack())
							}
						}()
						e.ServeHTTP(rec, req)
					}()
					switch {
					case !withSession && (rec.Code != http.StatusSeeOther || strings.HasPrefix(rec.Header().Get("Location"), "http")):
						t.Fatalf("without an account session: %d to %q", rec.Code, rec.Header().Get("Location"))
					case withSession && (rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "The form has expired")):
						t.Fatalf("status %d:\n%s", rec.Code, rec.Body.String())
					}
				})
			}
		}
		if posts < 7 {
			t.Fatalf("only %d POST routes", posts)
		}
	}
}

// TestTemplates renders the account pages that use the shared partials.
func TestTemplates(t *testing.T) {
	t.Parallel()
	h, _ := newTestHandler(t, untouchedStore{})
	render := func(name string, data any) string {
		t.Helper()
		c := echo.New().NewContext(httptest.NewRequest(http.MethodGet, "/", nil), httptest.NewRecorder())
		if err := h.render(c, http.StatusOK, name, web.Page{Title: i18n.M("error.title"), CSRF: "c0ffee", Data: data}); err != nil {
			t.Fatal(err)
		}
		return c.Response().Writer.(*httptest.ResponseRecorder).Body.String()
	}
	numeric := `autocomplete="one-time-code"`
	signout := `<form method="post" action="/logout" class="signout">` + "\n" + `<input type="hidden" name="csrf" value="c0ffee">`
	for _, tc := range []struct {
		page       string
		data       any
		want, not  []string
		currentNav string
	}{
		{"account_totp", totpData{Nav: "security"}, []string{numeric}, []string{signout}, "security"},
		{"account_security", securityData{Nav: "security"}, []string{signout}, nil, "security"},
		{"account_devices", devicesData{Nav: "devices"}, []string{signout}, nil, "devices"},
		{"account_privacy", privacyData{Nav: "privacy"}, []string{signout}, nil, "privacy"},
	} {
		t.Run(fmt.Sprintf("%s %+v", tc.page, tc.data), func(t *testing.T) {
			body := render(tc.page, tc.data)
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("missing %s", w)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(body, w) {
					t.Errorf("unexpected %s", w)
				}
			}
			want := fmt.Sprintf(`<a href="/account/%s" aria-current="page">`, tc.currentNav)
			if !strings.Contains(body, want) || strings.Count(body, `aria-current="page"`) != 1 {
				t.Errorf("navigation: want only %s", want)
			}
		})
	}
}

// Kick panics: nothing may be queued.
func (u untouchedOutbox) Kick() { u.Kicker.Kick() }
