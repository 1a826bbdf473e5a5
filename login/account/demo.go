package account

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/labstack/echo/v4"
	"github.com/latchkey/latchkey/login/i18n"
	"github.com/latchkey/latchkey/login/internal/web"
)

// DemoClientID is the built-in demo relying party (serve --demo).
const DemoClientID = "demo"

// The demo is a real relying party (selfRP): authorization code + PKCE
// through the front door, the code exchanged at the token endpoint, the ID
// token verified with coreos/go-oidc against the published JWKS. It talks
// to the OP in-process (no network hop to its own port), which is the only
// shortcut it takes.

func (h *Handler) demoRP() *selfRP {
	redirect, _ := DemoRedirectURIs(h.web.Issuer())
	return &selfRP{
		h: h, clientID: DemoClientID, secret: h.cfg.DemoClientSecret, redirect: redirect, cookie: web.CookieDemo,
		scopes:  []string{oidc.ScopeOpenID, "email", "profile", "privacy"},
		expired: i18n.M("demo.again"),
		failed:  func(e string) i18n.Msg { return i18n.M("demo.error", "Error", e) },
	}
}

// DemoRedirectURIs are what the demo client is registered with.
func DemoRedirectURIs(issuer string) (redirect, postLogout string) {
	return issuer + "/demo/callback", issuer + "/demo?signed_out=1"
}

func (h *Handler) demoStart(c echo.Context) error {
	if c.QueryParam("signed_out") != "" {
		// Not a dead end: the page links to where one signs in again.
		return h.render(c, http.StatusOK, "demo_signed_out", web.Page{Title: i18n.M("demo.signed_out_title")})
	}
	return h.demoRP().start(c, rpFlow{})
}

type demoData struct {
	ClientID, Claims, Userinfo, LogoutURL string
	// AuthTime is the ID token's auth_time, also shown as a date (UTC:
	// the demo is a product, it does not know the account's zone).
	AuthTime     int64
	AuthTimeDate time.Time
}

func (h *Handler) demoCallback(c echo.Context) error {
	res, err := h.demoRP().finish(c)
	if err != nil {
		return err
	}
	var claims map[string]any
	if err := res.IDToken.Claims(&claims); err != nil {
		return err
	}
	uiClaims, err := res.userinfo()
	if err != nil {
		return web.BadRequest(i18n.M("demo.userinfo_failed"), err)
	}
	_, postLogout := DemoRedirectURIs(h.web.Issuer())
	logout := h.web.Issuer() + "/end_session?" + url.Values{
		"id_token_hint": {res.RawID}, "post_logout_redirect_uri": {postLogout}, "client_id": {DemoClientID},
	}.Encode()
	return h.render(c, http.StatusOK, "demo", web.Page{Title: i18n.M("demo.title"), Data: demoData{
		ClientID: DemoClientID, Claims: prettyJSON(claims), Userinfo: prettyJSON(uiClaims), LogoutURL: logout,
		AuthTime: res.Claims.AuthTime, AuthTimeDate: time.Unix(res.Claims.AuthTime, 0).UTC(),
	}})
}

func prettyJSON(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// inProcess serves HTTP requests with a handler, without a network hop.
type inProcess struct{ h http.Handler }

func (t inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Context().Err() != nil {
		return nil, r.Context().Err()
	}
	rec := httptest.NewRecorder()
	r2 := r.Clone(context.WithoutCancel(r.Context()))
	r2.RequestURI = r.URL.RequestURI()
	r2.RemoteAddr = "127.0.0.1:0"
	t.h.ServeHTTP(rec, r2)
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}
