package account

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/login/i18n"
	"github.com/latchkey/latchkey/login/internal/web"
	"github.com/latchkey/latchkey/storage/keyring"
)

// selfRP is a relying party of our own OP: the demo and the account pages
// sign people in exactly like any product would — authorization code with
// PKCE (S256), state and nonce, the code exchanged at the token endpoint
// with the client secret, the ID token verified with coreos/go-oidc
// against the published keys. The only shortcut is that the HTTP calls to
// the OP are served in-process (inProcess), without a network hop to our
// own port.
//
// The flow's secrets (state, nonce, PKCE verifier) and where to go
// afterwards travel in a cookie sealed with the keyring (AES-GCM, the
// cookie name as associated data), so nothing is stored for a flow that is
// never finished. One flow per browser and RP at a time: starting a second
// one replaces the first.
type selfRP struct {
	h        *Handler
	clientID string
	secret   string
	redirect string   // absolute redirect URI
	cookie   string   // name of the sealed state cookie
	scopes   []string // requested scopes
	// expired and failed are the error pages' messages (the sign-in
	// expired; the OP answered this error): both say what the user does
	// to start over.
	expired i18n.Msg
	failed  func(oauthError string) i18n.Msg
}

// rpFlow is one authorization request in flight.
type rpFlow struct {
	State    string    `json:"s"`
	Nonce    string    `json:"n"`
	Verifier string    `json:"v"`
	Started  time.Time `json:"t"`
	Expires  time.Time `json:"e"`
	// Return is where the caller goes after the callback (validated by the
	// caller; the demo does not use it).
	Return string `json:"r,omitempty"`
	// Reconfirm marks an identity reconfirmation of the account pages.
	Reconfirm bool `json:"c,omitempty"`
}

const rpFlowLifetime = 15 * time.Minute

func (r *selfRP) oauth() *oauth2.Config {
	return &oauth2.Config{
		ClientID:     r.clientID,
		ClientSecret: r.secret,
		RedirectURL:  r.redirect,
		Endpoint: oauth2.Endpoint{
			AuthURL:   r.h.web.Issuer() + "/authorize",
			TokenURL:  r.h.web.Issuer() + "/oauth/token",
			AuthStyle: oauth2.AuthStyleInHeader,
		},
		Scopes: r.scopes,
	}
}

// start seals a new flow (f's Return and Reconfirm are kept) in the state
// cookie and sends the browser to /authorize.
func (r *selfRP) start(c echo.Context, f rpFlow, opts ...oauth2.AuthCodeOption) error {
	now := r.h.now()
	f.State = keyring.RandomString(16)
	f.Nonce = keyring.RandomString(16)
	f.Verifier = oauth2.GenerateVerifier()
	f.Started = now
	f.Expires = now.Add(rpFlowLifetime)
	if err := r.h.web.SetSealed(c, r.cookie, f, rpFlowLifetime); err != nil {
		return err
	}
	opts = append([]oauth2.AuthCodeOption{oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier)}, opts...)
	return c.Redirect(http.StatusSeeOther, r.oauth().AuthCodeURL(f.State, opts...))
}

// rpResult is a verified sign-in.
type rpResult struct {
	Flow     rpFlow
	Token    *oauth2.Token
	RawID    string
	IDToken  *oidc.IDToken
	Claims   idClaims
	provider *oidc.Provider
	ctx      context.Context // carries the in-process HTTP client
}

// idClaims are the ID token claims the callers look at.
type idClaims struct {
	Subject  string   `json:"sub"`
	SID      string   `json:"sid"`
	ACR      string   `json:"acr"`
	AMR      []string `json:"amr"`
	AuthTime int64    `json:"auth_time"`
	Email    string   `json:"email"`
}

func (ic idClaims) hasAMR(m string) bool { return slices.Contains(ic.AMR, m) }

// finish handles the redirect back from the OP: the state must match the
// sealed flow of this browser, the code is exchanged (with the PKCE
// verifier and the client secret), the ID token is verified (signature,
// issuer, audience, expiry) and its nonce compared. The state cookie is
// single use: it is cleared whatever the outcome.
func (r *selfRP) finish(c echo.Context) (*rpResult, error) {
	expired := r.expired
	f, ferr := r.flow(c)
	state := c.QueryParam("state")
	matched := ferr == nil && !r.h.now().After(f.Expires) && state != "" && web.Equal([]byte(f.State), []byte(state))
	if matched {
		// Only a callback that matches this browser's flow may end it: a
		// forged link must not break a sign-in in progress.
		r.h.web.ClearCookie(c, r.cookie)
	}
	if e := c.QueryParam("error"); e != "" {
		return nil, web.BadRequest(r.failed(web.Truncate(e, 64)),
			errors.New("authorization error: "+web.Truncate(e, 64)+": "+web.Truncate(c.QueryParam("error_description"), 200)))
	}
	if !matched {
		if ferr == nil {
			ferr = errors.New("state mismatch or flow expired")
		}
		return nil, web.BadRequest(expired, ferr)
	}
	code := c.QueryParam("code")
	if code == "" || len(code) > 512 {
		return nil, web.BadRequest(expired, errors.New("missing or oversized code"))
	}

	ctx := oidc.ClientContext(c.Request().Context(), &http.Client{Transport: inProcess{r.h.op.Handler()}, Timeout: 10 * time.Second})
	tok, err := r.oauth().Exchange(ctx, code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		return nil, web.BadRequest(expired, errors.New("code exchange: "+err.Error()))
	}
	provider, err := oidc.NewProvider(ctx, r.h.web.Issuer())
	if err != nil {
		return nil, err
	}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: r.clientID}).Verify(ctx, rawID)
	if err != nil {
		return nil, web.BadRequest(expired, errors.New("id token: "+err.Error()))
	}
	if !web.Equal([]byte(idt.Nonce), []byte(f.Nonce)) {
		return nil, web.BadRequest(expired, errors.New("id token nonce mismatch"))
	}
	res := &rpResult{Flow: f, Token: tok, RawID: rawID, IDToken: idt, provider: provider, ctx: ctx}
	if err := idt.Claims(&res.Claims); err != nil {
		return nil, err
	}
	return res, nil
}

// flow opens this browser's sealed flow cookie.
func (r *selfRP) flow(c echo.Context) (rpFlow, error) {
	var f rpFlow
	err := r.h.web.OpenSealed(c, r.cookie, &f)
	return f, err
}

// userinfo calls the userinfo endpoint with the access token.
func (res *rpResult) userinfo() (map[string]any, error) {
	ui, err := res.provider.UserInfo(res.ctx, oauth2.StaticTokenSource(res.Token))
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if err := ui.Claims(&out); err != nil {
		return nil, err
	}
	return out, nil
}
