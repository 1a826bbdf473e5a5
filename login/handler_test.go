package login

import (
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/login/flow"
	"github.com/latchkey/latchkey/login/i18n"
	"github.com/latchkey/latchkey/login/internal/web"
	"github.com/latchkey/latchkey/storage/keyring"
)

// The stubs embed nil interfaces: any call panics, so a test using them
// also proves that the request was refused before any storage, OP or mail
// work.
type (
	untouchedStore  struct{ Store }
	untouchedOP     struct{ OP }
	untouchedOutbox struct{ Kicker interface{ Kick() } }
)

func newTestHandler(t *testing.T) *Handler {
	t.Helper()
	kr, err := keyring.New([]byte(strings.Repeat("k", keyring.MinSecretLen)))
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{Issuer: "https://id.example.com", SignupEnabled: true, Demo: true},
		Deps{Store: untouchedStore{}, Keyring: kr, OP: untouchedOP{}, Outbox: untouchedOutbox{},
			Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestFormsCheckCSRF: every form of the sign-in a browser can post is
// refused without the CSRF token, with a forged one or with another
// browser's, before anything is read or changed (the stubs panic when
// touched). The account pages have the same test in login/account.
func TestFormsCheckCSRF(t *testing.T) {
	t.Parallel()
	h := newTestHandler(t)
	e := echo.New()
	h.Register(e)
	browser := &http.Cookie{Name: web.CookieBrowser, Value: keyring.NewToken()}
	// A genuine token, of another browser (an attacker's own).
	other := hex.EncodeToString(h.kr.MACString(keyring.PurposeCSRF, keyring.NewToken())[:16])
	posts := 0
	for _, r := range e.Routes() {
		if r.Method != http.MethodPost || strings.HasPrefix(r.Path, "/api/") {
			continue
		}
		posts++
		for name, token := range map[string]string{"missing": "", "forged": strings.Repeat("ab", 16), "other browser's": other} {
			t.Run(r.Path+"/"+name, func(t *testing.T) {
				form := url.Values{"id": {"ar1"}, "email": {"a@example.com"}, "code": {"123456"}, "choice": {"approve"}}
				if token != "" {
					form.Set("csrf", token)
				}
				req := httptest.NewRequest(http.MethodPost, r.Path, strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.AddCookie(browser)
				rec := httptest.NewRecorder()
				func() {
					defer func() {
						if p := recover(); p != nil {
							t.Fatalf("handled the form before checking its CSRF token: %v\n%s", p, debug.Stack())
						}
					}()
					e.ServeHTTP(rec, req)
				}()
				if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "The form has expired") {
					t.Fatalf("status %d:\n%s", rec.Code, rec.Body.String())
				}
			})
		}
	}
	if posts < 19 {
		t.Fatalf("only %d POST routes", posts)
	}
}

// TestTemplates renders the pages that use the shared partials.
func TestTemplates(t *testing.T) {
	t.Parallel()
	h := newTestHandler(t)
	render := func(name string, data any) string {
		t.Helper()
		c := echo.New().NewContext(httptest.NewRequest(http.MethodGet, "/", nil), httptest.NewRecorder())
		if err := h.render(c, http.StatusOK, name, web.Page{Title: i18n.M("error.title"), CSRF: "c0ffee", Data: data}); err != nil {
			t.Fatal(err)
		}
		return c.Response().Writer.(*httptest.ResponseRecorder).Body.String()
	}
	numeric, backup := `autocomplete="one-time-code"`, `<label for="code">Backup code</label>`
	for _, tc := range []struct {
		page       string
		data       any
		want, not  []string
		currentNav string
	}{
		{"code", codeData{Method: string(flow.MethodEmail)}, []string{numeric}, []string{backup}, ""},
		{"code", codeData{Method: string(flow.MethodBackup)}, []string{backup}, []string{numeric}, ""},
		{"forgot_second", forgotData{Method: string(flow.MethodBackup)}, []string{backup}, []string{numeric}, ""},
		{"forgot_second", forgotData{Method: string(flow.MethodTOTP)}, []string{numeric}, []string{backup}, ""},
		{"forgot_code", forgotData{}, []string{numeric}, nil, ""},
		{"signup_code", signupCodeData{}, []string{numeric}, nil, ""},
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
			if tc.currentNav != "" {
				want := fmt.Sprintf(`<a href="/account/%s" aria-current="page">`, tc.currentNav)
				if !strings.Contains(body, want) || strings.Count(body, `aria-current="page"`) != 1 {
					t.Errorf("navigation: want only %s", want)
				}
			}
		})
	}
}

// Kick panics: nothing may be queued.
func (u untouchedOutbox) Kick() { u.Kicker.Kick() }
