package op

// The authorization endpoint and pushed authorization requests, ours
// rather than zitadel's: zitadel ignores request_uri, answers errors that
// cannot go back to the client as text/plain, sends form_post errors as
// query parameters, has no RFC 9207 iss and no PAR. The rules an
// authorization request must meet are written once (checkAuthRequest)
// and applied at /authorize and at /par.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
)

const (
	authorizePath = "/authorize"
	parPath       = "/par"
	// parURNPrefix starts every request_uri we issue (RFC 9126 §2.2).
	parURNPrefix = "urn:ietf:params:oauth:request_uri:"
	// parLifetime: a pushed request is good this long, once (RFC 9126 §2.2
	// suggests a short lifetime; issue 12 says 60 s).
	parLifetime = 60 * time.Second
)

// authProblem is a refused authorization request. toClient: the client
// and its redirect_uri are valid, so the error goes back to it (RFC 6749
// §4.1.2.1); otherwise the user gets our error page (§3.1.2.4) and the
// client, at /par, a 400.
type authProblem struct {
	code        string
	description string
	toClient    bool
}

func pageProblem(format string, args ...any) *authProblem {
	return &authProblem{code: "invalid_request", description: fmt.Sprintf(format, args...)}
}

func clientProblem(code, format string, args ...any) *authProblem {
	return &authProblem{code: code, description: fmt.Sprintf(format, args...), toClient: true}
}

// authorize serves GET and POST /authorize (OIDC Core §3.1.2.1).
func (o *OP) authorize(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		if err := r.ParseForm(); err != nil {
			o.page(w, r, http.StatusBadRequest, pageMsg("error.authorize.unreadable"))
			return
		}
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, o.opts.MaxBodyBytes)
		if err := parseForm(r); err != nil {
			o.page(w, r, http.StatusBadRequest, pageMsg("error.authorize.unreadable"))
			return
		}
	default:
		w.Header().Set("Allow", "GET, POST")
		o.page(w, r, http.StatusMethodNotAllowed, pageMsg("error.authorize.method"))
		return
	}
	ctx := r.Context()
	params := r.Form
	pushed := false
	if ru := params.Get("request_uri"); ru != "" {
		if !strings.HasPrefix(ru, parURNPrefix) {
			// OIDC Core §6.2: request_uri values we did not issue are not
			// fetched; say so, to the client when its redirect is valid
			// (a client that put state only in the request object gets no
			// state back: it is in the object we do not read).
			if _, p := o.clientAndRedirect(ctx, params); p != nil {
				o.refuse(w, r, params, p)
				return
			}
			o.refuse(w, r, params, clientProblem("request_uri_not_supported", "only request_uri values from this provider's pushed authorization request endpoint are accepted"))
			return
		}
		pr, err := o.storage.store.RedeemPushedRequest(ctx, o.storage.kr.MACString(keyring.PurposePAR, ru), o.opts.Now())
		if err != nil {
			if unavailable(err) {
				o.opts.Logger.ErrorContext(ctx, "authorize: redeem pushed request: database unavailable", "err", err)
				o.unavailablePage(w, r)
				return
			}
			if !errors.Is(err, storage.ErrNotFound) {
				o.opts.Logger.Error("authorize: redeem pushed request", "err", err)
				o.page(w, r, http.StatusInternalServerError, pageMsg("error.authorize.start_failed"))
				return
			}
			o.page(w, r, http.StatusBadRequest, pageMsg("error.authorize.request_uri"))
			return
		}
		if cid := params.Get("client_id"); cid != pr.ClientID {
			o.page(w, r, http.StatusBadRequest, pageMsg("error.authorize.request_uri_client", "ClientID", cid))
			return
		}
		params = url.Values{}
		for k, v := range pr.Params {
			params.Set(k, v)
		}
		pushed = true
	}
	c, req, hint, prob := o.checkAuthRequest(ctx, params, pushed)
	if prob != nil {
		o.refuse(w, r, params, prob)
		return
	}
	ar, err := o.storage.CreateAuthRequest(ctx, req, hint)
	if err != nil {
		var oe *oidc.Error
		if unavailable(err) {
			// RFC 6749 §4.1.2.1: the client learns it, and may retry.
			o.opts.Logger.ErrorContext(ctx, "authorize: create auth request: database unavailable", "err", err)
			o.refuse(w, r, params, clientProblem(codeUnavailable, descUnavailable))
			return
		}
		if errors.As(err, &oe) && oe.ErrorType != oidc.ServerError {
			o.refuse(w, r, params, clientProblem(string(oe.ErrorType), "%s", oe.Description))
			return
		}
		o.opts.Logger.Error("authorize: create auth request", "err", err)
		o.refuse(w, r, params, clientProblem("server_error", "the sign-in could not start"))
		return
	}
	http.Redirect(w, r, c.LoginURL(ar.GetID()), http.StatusFound)
}

// refuse answers a refused authorization request: to the client when it
// can be, else with our error page.
func (o *OP) refuse(w http.ResponseWriter, r *http.Request, params url.Values, p *authProblem) {
	if p.toClient {
		mode := params.Get("response_mode")
		if !validResponseMode(mode) {
			mode = ""
		}
		o.sendAuthResponse(w, r, params.Get("redirect_uri"), mode, url.Values{
			"error": {p.code}, "error_description": {p.description}, "state": {params.Get("state")},
		})
		return
	}
	status := http.StatusBadRequest
	switch p.code {
	case codeUnavailable:
		o.unavailablePage(w, r)
		return
	case "server_error":
		status = http.StatusInternalServerError
	}
	o.page(w, r, status, pageMsg("error.authorize.invalid", "Detail", p.description))
}

// checkAuthRequest applies every rule of an authorization request (at
// /authorize, and at /par before the request is stored) and returns the
// client, the parsed request and the subject of a valid id_token_hint.
func (o *OP) checkAuthRequest(ctx context.Context, params url.Values, pushed bool) (*client, *oidc.AuthRequest, string, *authProblem) {
	c, prob := o.clientAndRedirect(ctx, params)
	if prob != nil {
		return nil, nil, "", prob
	}
	// From here the client and its redirect are known good: errors go back
	// to it, with its state.
	for k, v := range params {
		if len(v) > 1 {
			return nil, nil, "", clientProblem("invalid_request", "%s is given more than once", k)
		}
	}
	switch {
	case !validResponseMode(params.Get("response_mode")):
		return nil, nil, "", clientProblem("invalid_request", "unsupported response_mode")
	case params.Get("request") != "":
		return nil, nil, "", clientProblem("request_not_supported", "request objects are not supported; use pushed authorization requests")
	case params.Get("request_uri") != "":
		return nil, nil, "", clientProblem("invalid_request", "a pushed request must not contain request_uri")
	case params.Get("response_type") == "":
		return nil, nil, "", clientProblem("invalid_request", "response_type is missing")
	case params.Get("response_type") != string(oidc.ResponseTypeCode):
		// RFC 6749 §4.1.2.1: only the authorization code flow is offered.
		return nil, nil, "", clientProblem("unsupported_response_type", "only response_type=code is supported")
	case !pushed && (o.opts.RequirePAR || c.c.RequirePAR):
		return nil, nil, "", clientProblem("invalid_request", "this client must send its authorization requests to the pushed authorization request endpoint first (RFC 9126)")
	case !c.hasGrant(GrantAuthorizationCode):
		return nil, nil, "", clientProblem("unauthorized_client", "the client may not use the authorization code grant")
	}
	req := new(oidc.AuthRequest)
	if err := o.provider.Decoder().Decode(req, params); err != nil {
		return nil, nil, "", clientProblem("invalid_request", "a parameter could not be read (max_age must be a whole number of seconds)")
	}
	var err error
	req.MaxAge, err = zop.ValidateAuthReqPrompt(req.Prompt, req.MaxAge)
	if err == nil {
		req.Scopes, err = zop.ValidateAuthReqScopes(c, req.Scopes)
	}
	if err == nil {
		err = pkceRule(c, req)
	}
	if err != nil {
		return nil, nil, "", oidcProblem(err)
	}
	if !validAuthRequestText(req) {
		// NUL or invalid UTF-8 (state=%FF, login_hint=a%00b): the client's
		// mistake, answered at its redirect, never stored.
		return nil, nil, "", clientProblem("invalid_request", "%s", msgInvalidText)
	}
	hint, err := zop.ValidateAuthReqIDTokenHint(zop.ContextWithIssuer(ctx, o.opts.Issuer), req.IDTokenHint, o.provider.IDTokenHintVerifier(zop.ContextWithIssuer(ctx, o.opts.Issuer)))
	if err != nil {
		return nil, nil, "", oidcProblem(err)
	}
	return c, req, hint, nil
}

// clientAndRedirect checks what decides where an error may go: a
// registered client, and a redirect_uri registered for it.
func (o *OP) clientAndRedirect(ctx context.Context, params url.Values) (*client, *authProblem) {
	clientID := params.Get("client_id")
	if clientID == "" {
		return nil, pageProblem("client_id is missing.")
	}
	c, err := o.storage.client(ctx, clientID)
	if err != nil {
		var oe *oidc.Error
		if unavailable(err) {
			// Whether the client exists cannot be known: a page, 503.
			o.opts.Logger.ErrorContext(ctx, "authorize: client lookup: database unavailable", "err", err)
			return nil, &authProblem{code: codeUnavailable, description: descUnavailable}
		}
		if errors.As(err, &oe) && oe.ErrorType == oidc.ServerError {
			o.opts.Logger.ErrorContext(ctx, "authorize: client lookup", "client_id", clientID, "err", err)
			return nil, &authProblem{code: "server_error", description: "the client could not be looked up"}
		}
		return nil, pageProblem("client_id %q is not a registered application.", clientID)
	}
	redirect := params.Get("redirect_uri")
	switch {
	case redirect == "":
		return nil, pageProblem("redirect_uri is missing.")
	case !c.redirectAllowed(redirect):
		return nil, pageProblem("redirect_uri %q is not registered for %q.", redirect, clientID)
	}
	return c, nil
}

func oidcProblem(err error) *authProblem {
	if unavailable(err) {
		return clientProblem(codeUnavailable, descUnavailable)
	}
	var oe *oidc.Error
	if errors.As(err, &oe) {
		return clientProblem(string(oe.ErrorType), "%s", oe.Description)
	}
	return clientProblem("server_error", "the request could not be checked")
}

// pkceRule is our PKCE policy (zitadel accepts plain and none): S256
// only, and mandatory for public clients (RFC 9700 §2.1.1, RFC 8252
// §8.1).
func pkceRule(c *client, req *oidc.AuthRequest) error {
	if req.CodeChallenge != "" && req.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	}
	if req.CodeChallenge == "" && req.CodeChallengeMethod != "" {
		return oidc.ErrInvalidRequest().WithDescription("code_challenge_method without code_challenge")
	}
	if c.c.Public && req.CodeChallenge == "" {
		return oidc.ErrInvalidRequest().WithDescription("PKCE (code_challenge with S256) is required for this client")
	}
	return nil
}

func validResponseMode(m string) bool {
	switch oidc.ResponseMode(m) {
	case "", oidc.ResponseModeQuery, oidc.ResponseModeFragment, oidc.ResponseModeFormPost:
		return true
	}
	return false
}

// redirectAllowed: uri is a redirect URI of this client. Exact matches of
// a registered URI, and for native clients the loopback rule of RFC 8252
// §7.3 and §8.3: a registered http://127.0.0.1/… or http://[::1]/…
// admits http://127.0.0.1:PORT and http://[::1]:PORT with any port from
// 1 to 65535 and the registered path and query — nothing else (not
// localhost, not https, not another address, no user info, no fragment).
func (c *client) redirectAllowed(uri string) bool {
	if strings.Contains(uri, "#") {
		return false // RFC 6749 §3.1.2
	}
	if slices.Contains(c.c.RedirectURIs, uri) {
		return true
	}
	if c.c.AppType != storage.AppTypeNative {
		return false
	}
	u, ok := loopbackRedirect(uri, true)
	if !ok {
		return false
	}
	for _, reg := range c.c.RedirectURIs {
		ru, ok := loopbackRedirect(reg, false)
		if ok && ru.EscapedPath() == u.EscapedPath() && ru.RawQuery == u.RawQuery {
			return true
		}
	}
	return false
}

// loopbackRedirect parses an http URI on a loopback IP literal
// (127.0.0.1 or ::1). withPort: it must name a port, 1–65535, in its
// canonical form.
func loopbackRedirect(raw string, withPort bool) (*url.URL, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.User != nil || u.Opaque != "" || u.Fragment != "" {
		return nil, false
	}
	host, port := u.Hostname(), u.Port()
	switch host {
	case "127.0.0.1":
		if u.Host != host && u.Host != host+":"+port {
			return nil, false
		}
	case "::1":
		if u.Host != "[::1]" && u.Host != "[::1]:"+port {
			return nil, false
		}
	default:
		return nil, false
	}
	if net.ParseIP(host) == nil {
		return nil, false
	}
	if withPort {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			return nil, false
		}
	}
	return u, true
}

// par serves POST /par (RFC 9126): the client authenticates as at the
// token endpoint, the request is checked now as /authorize would, and
// stored for one use within 60 s under a request_uri we hand back.
func (o *OP) par(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		tokenError(w, http.StatusMethodNotAllowed, "invalid_request", "the pushed authorization request endpoint takes POST", false)
		return
	}
	ctx := r.Context()
	c, fail := o.authenticateClient(ctx, r, parPath, true)
	if fail != nil {
		fail.write(w)
		return
	}
	params := url.Values{}
	for k, v := range r.PostForm {
		switch k {
		case "client_secret", "client_assertion", "client_assertion_type":
			continue
		}
		params[k] = v
	}
	if id := params.Get("client_id"); id != "" && id != c.c.ID {
		tokenError(w, http.StatusBadRequest, "invalid_request", "client_id does not match the authenticated client", false)
		return
	}
	params.Set("client_id", c.c.ID)
	if params.Get("request_uri") != "" {
		tokenError(w, http.StatusBadRequest, "invalid_request", "request_uri is not allowed in a pushed authorization request (RFC 9126 §2.1)", false)
		return
	}
	if _, _, _, prob := o.checkAuthRequest(ctx, params, true); prob != nil {
		status := http.StatusBadRequest
		switch prob.code {
		case "server_error":
			status = http.StatusInternalServerError
		case codeUnavailable:
			status = http.StatusServiceUnavailable
			setRetryAfter(w.Header())
		}
		tokenError(w, status, prob.code, prob.description, false)
		return
	}
	flat := make(map[string]string, len(params))
	for k := range params {
		flat[k] = params.Get(k)
	}
	uri := parURNPrefix + keyring.NewToken()
	now := o.opts.Now()
	if _, err := o.storage.store.CreatePushedRequest(ctx, storage.PushedRequest{
		RequestURIHash: o.storage.kr.MACString(keyring.PurposePAR, uri), ClientID: c.c.ID, Params: flat,
		CreatedAt: now, ExpiresAt: now.Add(parLifetime),
	}); err != nil {
		o.internalError(w, r, "par: store", err)
		return
	}
	setNoStoreJSON(w.Header())
	w.WriteHeader(http.StatusCreated)
	b := append([]byte(`{"request_uri":`), appendJSONString(nil, uri)...)
	b = append(b, `,"expires_in":`...)
	b = strconv.AppendInt(b, int64(parLifetime/time.Second), 10)
	_, _ = w.Write(append(b, '}'))
}
