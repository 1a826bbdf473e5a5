package login

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/storage/keyring"
)

// DemoClientID is the built-in demo relying party (serve --demo).
const DemoClientID = "demo"

// The demo is a real relying party: authorization code + PKCE through the
// front door, the code exchanged at the token endpoint, the ID token
// verified with coreos/go-oidc against the published JWKS. It talks to the
// OP in-process (no network hop to its own port), which is the only
// shortcut it takes.

type demoState struct {
	State, Nonce, Verifier string
	Expires                time.Time
}

func (h *Handler) demoOAuth() *oauth2.Config {
	return &oauth2.Config{
		ClientID:     DemoClientID,
		ClientSecret: h.cfg.DemoClientSecret,
		RedirectURL:  h.site.URL + "/demo/callback",
		Endpoint: oauth2.Endpoint{
			AuthURL:   h.site.URL + "/authorize",
			TokenURL:  h.site.URL + "/oauth/token",
			AuthStyle: oauth2.AuthStyleInHeader,
		},
		Scopes: []string{oidc.ScopeOpenID, "email", "profile", "privacy"},
	}
}

// DemoRedirectURIs are what the demo client is registered with.
func DemoRedirectURIs(issuer string) (redirect, postLogout string) {
	return issuer + "/demo/callback", issuer + "/demo?signed_out=1"
}

func (h *Handler) demoStart(c echo.Context) error {
	if c.QueryParam("signed_out") != "" {
		return h.render(c, http.StatusOK, "error", page{Title: "Signed out",
			Data: errorData{Message: "You signed out through the end-session endpoint. Open /demo to sign in again."}})
	}
	st := demoState{State: keyring.RandomString(16), Nonce: keyring.RandomString(16), Verifier: oauth2.GenerateVerifier(),
		Expires: h.now().Add(15 * time.Minute)}
	raw, _ := json.Marshal(st)
	h.setCookie(c, cookieDemo, encodeSealed(h.kr.Seal(raw, []byte(cookieDemo))), 15*time.Minute)
	u := h.demoOAuth().AuthCodeURL(st.State, oidc.Nonce(st.Nonce), oauth2.S256ChallengeOption(st.Verifier))
	return c.Redirect(http.StatusSeeOther, u)
}

type demoData struct {
	ClientID, Claims, Userinfo, LogoutURL string
}

func (h *Handler) demoCallback(c echo.Context) error {
	if e := c.QueryParam("error"); e != "" {
		return errBadRequest("The sign-in ended with "+e+": "+c.QueryParam("error_description")+". Open /demo to try again.", nil)
	}
	sealed, err := decodeSealed(cookieValue(c, cookieDemo))
	if err != nil {
		return errBadRequest("The demo sign-in expired. Open /demo to start again.", err)
	}
	raw, err := h.kr.Open(sealed, []byte(cookieDemo))
	if err != nil {
		return errBadRequest("The demo sign-in expired. Open /demo to start again.", err)
	}
	var st demoState
	if err := json.Unmarshal(raw, &st); err != nil || h.now().After(st.Expires) || c.QueryParam("state") != st.State {
		return errBadRequest("The demo sign-in does not match this browser. Open /demo to start again.", errors.New("demo state mismatch"))
	}
	h.clearCookie(c, cookieDemo)

	ctx := oidc.ClientContext(c.Request().Context(), &http.Client{Transport: inProcess{h.op.Handler()}, Timeout: 10 * time.Second})
	tok, err := h.demoOAuth().Exchange(ctx, c.QueryParam("code"), oauth2.VerifierOption(st.Verifier))
	if err != nil {
		return errBadRequest("The code exchange failed: "+err.Error(), err)
	}
	provider, err := oidc.NewProvider(ctx, h.site.URL)
	if err != nil {
		return err
	}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: DemoClientID}).Verify(ctx, rawID)
	if err != nil {
		return errBadRequest("The ID token did not verify: "+err.Error(), err)
	}
	if idt.Nonce != st.Nonce {
		return errBadRequest("The ID token nonce does not match.", nil)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return err
	}
	ui, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		return errBadRequest("The userinfo call failed: "+err.Error(), err)
	}
	var uiClaims map[string]any
	_ = ui.Claims(&uiClaims)
	_, postLogout := DemoRedirectURIs(h.site.URL)
	logout := h.site.URL + "/end_session?" + url.Values{
		"id_token_hint": {rawID}, "post_logout_redirect_uri": {postLogout}, "client_id": {DemoClientID},
	}.Encode()
	return h.render(c, http.StatusOK, "demo", page{Title: "You are signed in", Data: demoData{
		ClientID: DemoClientID, Claims: prettyJSON(claims), Userinfo: prettyJSON(uiClaims), LogoutURL: logout,
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
