package admin

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/config"
	"github.com/latchkey/latchkey/op"
	"github.com/latchkey/latchkey/storage"
)

// Prefix is where the admin API is served.
const Prefix = "/admin/v1"

//go:embed openapi.json
var openAPI []byte

// OpenAPI is the API's OpenAPI 3 document.
func OpenAPI() []byte { return openAPI }

// TokenVerifier checks a client_credentials access token (the OP's).
type TokenVerifier interface {
	VerifyClientToken(ctx context.Context, token string) (op.ClientTokenInfo, error)
}

// API serves /admin/v1/.
type API struct {
	svc    *Service
	tokens TokenVerifier
	// ClientAddr is the client's address for the audit trail; nil: the
	// peer address.
	ClientAddr func(*http.Request) string
}

// NewAPI builds the HTTP front end of svc.
func NewAPI(svc *Service, tokens TokenVerifier) *API { return &API{svc: svc, tokens: tokens} }

// access levels of routes.
const (
	levelNone = iota // the OpenAPI document
	levelRead
	levelFull
)

// Route is one operation of the API.
type Route struct {
	Method, Path string // echo syntax: /users/:id
	level        int
	handle       func(*API, echo.Context, Actor) error
}

// routes is the one list of operations: Register mounts it, the OpenAPI
// test compares it with the document.
var routes = []Route{
	{http.MethodGet, "/openapi.json", levelNone, (*API).openapi},
	{http.MethodGet, "/users", levelRead, (*API).listUsers},
	{http.MethodPost, "/users", levelFull, (*API).createUser},
	{http.MethodGet, "/users/:id", levelRead, (*API).getUser},
	{http.MethodPatch, "/users/:id", levelFull, (*API).updateUser},
	{http.MethodDelete, "/users/:id", levelFull, (*API).deleteUser},
	{http.MethodPost, "/users/:id/disable", levelFull, (*API).disableUser},
	{http.MethodPost, "/users/:id/enable", levelFull, (*API).enableUser},
	{http.MethodPost, "/users/:id/reset-2fa", levelFull, (*API).resetSecondStep},
	{http.MethodPost, "/users/:id/send-reset", levelFull, (*API).sendReset},
	{http.MethodGet, "/users/:id/sessions", levelRead, (*API).listSessions},
	{http.MethodDelete, "/users/:id/sessions", levelFull, (*API).revokeSessions},
	{http.MethodDelete, "/users/:id/sessions/:sid", levelFull, (*API).revokeSession},
	{http.MethodGet, "/users/:id/trusted-browsers", levelRead, (*API).listTrustedBrowsers},
	{http.MethodDelete, "/users/:id/trusted-browsers/:did", levelFull, (*API).removeTrustedBrowser},
	{http.MethodGet, "/users/:id/grants", levelRead, (*API).listGrants},
	{http.MethodDelete, "/users/:id/grants/:gid", levelFull, (*API).revokeGrant},
	{http.MethodGet, "/clients", levelRead, (*API).listClients},
	{http.MethodPost, "/clients", levelFull, (*API).createClient},
	{http.MethodGet, "/clients/:id", levelRead, (*API).getClient},
	{http.MethodPatch, "/clients/:id", levelFull, (*API).updateClient},
	{http.MethodDelete, "/clients/:id", levelFull, (*API).deleteClient},
	{http.MethodPost, "/clients/:id/rotate-secret", levelFull, (*API).rotateSecret},
	{http.MethodGet, "/organizations", levelRead, (*API).listOrgs},
	{http.MethodPost, "/organizations", levelFull, (*API).createOrg},
	{http.MethodGet, "/organizations/:id", levelRead, (*API).getOrg},
	{http.MethodPatch, "/organizations/:id", levelFull, (*API).updateOrg},
	{http.MethodDelete, "/organizations/:id", levelFull, (*API).deleteOrg},
	{http.MethodGet, "/audit-events", levelRead, (*API).listAudit},
	{http.MethodGet, "/keys", levelRead, (*API).listKeys},
	{http.MethodPost, "/keys/rotate", levelFull, (*API).rotateKeys},
}

// Routes lists the operations as (method, path) with OpenAPI-style
// parameters ({id}), for the document test.
func Routes() [][2]string {
	out := make([][2]string, len(routes))
	for i, r := range routes {
		parts := strings.Split(r.Path, "/")
		for j, p := range parts {
			if strings.HasPrefix(p, ":") {
				parts[j] = "{" + p[1:] + "}"
			}
		}
		out[i] = [2]string{r.Method, Prefix + strings.Join(parts, "/")}
	}
	return out
}

// Register mounts the API on e.
func (a *API) Register(e *echo.Echo) {
	g := e.Group(Prefix)
	for _, r := range routes {
		g.Add(r.Method, r.Path, a.handler(r))
	}
}

// handler authorises a request for its route and runs it.
func (a *API) handler(r Route) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "no-store")
		actor := Actor{IP: a.clientAddr(c.Request()), UserAgent: truncate(c.Request().UserAgent(), 300)}
		if r.level != levelNone {
			id, err := a.authorise(c, r.level)
			if err != nil {
				return a.fail(c, err)
			}
			actor.ClientID = id
		}
		if err := cleanInput(c); err != nil {
			return a.fail(c, err)
		}
		if err := r.handle(a, c, actor); err != nil {
			return a.fail(c, err)
		}
		return nil
	}
}

func (a *API) clientAddr(r *http.Request) string {
	if a.ClientAddr != nil {
		return a.ClientAddr(r)
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// apiError is an error answered with a status and an OAuth-style code.
type apiError struct {
	status      int
	code, desc  string
	scopeNeeded string
}

func (e *apiError) Error() string { return e.code + ": " + e.desc }

// authorise checks the bearer token (RFC 6750) and that its client still
// holds the access the route needs; it returns the client's id.
func (a *API) authorise(c echo.Context, level int) (string, error) {
	h := c.Request().Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", &apiError{status: http.StatusUnauthorized, code: "invalid_token", desc: "a bearer token from the client_credentials grant is required"}
	}
	ctx := c.Request().Context()
	info, err := a.tokens.VerifyClientToken(ctx, strings.TrimSpace(token))
	if err != nil {
		if errors.Is(err, op.ErrInvalidToken) {
			return "", &apiError{status: http.StatusUnauthorized, code: "invalid_token", desc: "the token is invalid, expired, revoked or not a client_credentials token"}
		}
		return "", err
	}
	cl, err := a.svc.d.Store.GetClient(ctx, info.ClientID)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return "", &apiError{status: http.StatusUnauthorized, code: "invalid_token", desc: "the token's client no longer exists"}
		}
		return "", err
	}
	need, held := op.ScopeAdmin, slices.Contains(info.Scopes, op.ScopeAdmin) && cl.AdminAccess == storage.AdminFull
	if level == levelRead {
		need = op.ScopeAdminRead
		held = held || (slices.Contains(info.Scopes, op.ScopeAdminRead) || slices.Contains(info.Scopes, op.ScopeAdmin)) &&
			(cl.AdminAccess == storage.AdminRead || cl.AdminAccess == storage.AdminFull)
	}
	if !held {
		return "", &apiError{status: http.StatusForbidden, code: "insufficient_scope", scopeNeeded: need,
			desc: "this needs a token with the scope " + need + ", of a client granted it (client create --admin)"}
	}
	return info.ClientID, nil
}

// fail answers an error as JSON: the operator's message for ours, a
// generic one with an error id (logged) for a fault.
func (a *API) fail(c echo.Context, err error) error {
	var ae *apiError
	var ie *InvalidError
	switch {
	case storage.IsUnavailable(err):
		// The database is out of reach: come back, nothing is wrong with
		// the request or the token.
		a.svc.d.Logger.ErrorContext(c.Request().Context(), "admin API: database unavailable", "route", c.Path(), "err", err)
		c.Response().Header().Set("Retry-After", "10")
		ae = &apiError{status: http.StatusServiceUnavailable, code: "temporarily_unavailable", desc: "the database is temporarily unavailable; retry later"}
	case errors.As(err, &ae):
	case errors.As(err, &ie):
		ae = &apiError{status: http.StatusBadRequest, code: "invalid_request", desc: ie.Msg}
	case errors.Is(err, ErrNotFound):
		ae = &apiError{status: http.StatusNotFound, code: "not_found", desc: err.Error()}
	case errors.Is(err, ErrConflict):
		ae = &apiError{status: http.StatusConflict, code: "conflict", desc: err.Error()}
	default:
		id := errorID()
		a.svc.d.Logger.ErrorContext(c.Request().Context(), "admin API request failed", "error_id", id, "route", c.Path(), "err", err)
		ae = &apiError{status: http.StatusInternalServerError, code: "server_error", desc: "internal error " + id}
	}
	if ae.status < 500 {
		a.svc.d.Logger.InfoContext(c.Request().Context(), "admin API request refused", "status", ae.status, "route", c.Path(), "error", ae.code)
	}
	switch ae.status {
	case http.StatusUnauthorized:
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="latchkey admin", error="invalid_token"`)
	case http.StatusForbidden:
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="latchkey admin", error="insufficient_scope", scope="`+ae.scopeNeeded+`"`)
	}
	return c.JSON(ae.status, map[string]string{"error": ae.code, "error_description": ae.desc})
}

func errorID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// cleanInput refuses path and query values with NUL or invalid UTF-8:
// no identifier, email or type contains them, and PostgreSQL refuses them
// in text with an error that would otherwise be a 500.
func cleanInput(c echo.Context) error {
	for _, v := range c.ParamValues() {
		if !cleanText(v) {
			return invalid("the path holds a NUL byte or invalid UTF-8")
		}
	}
	for _, vs := range c.QueryParams() {
		for _, v := range vs {
			if !cleanText(v) {
				return invalid("a query parameter holds a NUL byte or invalid UTF-8")
			}
		}
	}
	return nil
}

func cleanText(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// decode reads a JSON body strictly: unknown fields are refused, and so
// is a NUL anywhere in it (JSON can carry one only as \u0000).
func decode(c echo.Context, v any) error {
	raw, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &apiError{status: http.StatusRequestEntityTooLarge, code: "invalid_request", desc: "the body is too large"}
		}
		return err
	}
	if !utf8.Valid(raw) || strings.Contains(string(raw), `\u0000`) || strings.ContainsRune(string(raw), 0) {
		return invalid("the body holds a NUL byte or invalid UTF-8")
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalid("the body is not the JSON this operation takes: %v", err)
	}
	if dec.More() {
		return invalid("the body holds more than one JSON value")
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalid("the body holds more than one JSON value")
	}
	return nil
}

// limitParam reads ?limit= (1…500, default 100).
func limitParam(c echo.Context) (int, error) {
	v := c.QueryParam("limit")
	if v == "" {
		return 100, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 500 {
		return 0, invalid("limit: a number from 1 to 500")
	}
	return n, nil
}

// --- views ---

func ts(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

type userView struct {
	ID            string     `json:"id"`
	Email         string     `json:"email"`
	EmailVerified bool       `json:"email_verified"`
	Name          string     `json:"name"`
	Region        string     `json:"region"`
	Disabled      bool       `json:"disabled"`
	Organization  string     `json:"organization_id,omitempty"`
	CreatedAt     *time.Time `json:"created_at"`
	UpdatedAt     *time.Time `json:"updated_at"`
}

func viewUser(u storage.User) userView {
	return userView{ID: u.ID, Email: u.Email, EmailVerified: u.EmailVerified, Name: u.Name, Region: u.Region,
		Disabled: u.Disabled, Organization: u.OrgID, CreatedAt: ts(u.CreatedAt), UpdatedAt: ts(u.UpdatedAt)}
}

type sessionView struct {
	ID             string     `json:"id"`
	CreatedAt      *time.Time `json:"created_at"`
	LastSeenAt     *time.Time `json:"last_seen_at"`
	AuthTime       *time.Time `json:"auth_time"`
	SecondFactorAt *time.Time `json:"second_factor_at"`
	AMR            []string   `json:"amr"`
	StaySignedIn   bool       `json:"stay_signed_in"`
	UserAgent      string     `json:"user_agent"`
	IP             string     `json:"ip"`
}

func viewSessions(ss []storage.Session) []sessionView {
	out := make([]sessionView, 0, len(ss))
	for _, s := range ss {
		out = append(out, sessionView{ID: s.ID, CreatedAt: ts(s.CreatedAt), LastSeenAt: ts(s.LastSeenAt), AuthTime: ts(s.AuthTime),
			SecondFactorAt: ts(s.SecondFactorAt), AMR: nonNil(s.AMR), StaySignedIn: s.StaySignedIn, UserAgent: s.UserAgent, IP: s.IP})
	}
	return out
}

type browserView struct {
	ID         string     `json:"id"`
	CreatedAt  *time.Time `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	UserAgent  string     `json:"user_agent"`
	IP         string     `json:"ip"`
}

func viewBrowsers(ds []storage.TrustedDevice) []browserView {
	out := make([]browserView, 0, len(ds))
	for _, d := range ds {
		out = append(out, browserView{ID: d.ID, CreatedAt: ts(d.CreatedAt), ExpiresAt: ts(d.ExpiresAt), LastUsedAt: ts(d.LastUsedAt),
			UserAgent: d.UserAgent, IP: d.IP})
	}
	return out
}

type grantView struct {
	ID         string     `json:"id"`
	ClientID   string     `json:"client_id"`
	Scopes     []string   `json:"scopes"`
	SessionID  string     `json:"session_id,omitempty"`
	CreatedAt  *time.Time `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

func viewGrants(fs []storage.RefreshToken) []grantView {
	out := make([]grantView, 0, len(fs))
	for _, f := range fs {
		out = append(out, grantView{ID: f.FamilyID, ClientID: f.ClientID, Scopes: nonNil(f.Scopes), SessionID: f.SessionID,
			CreatedAt: ts(f.FamilyCreatedAt), LastUsedAt: ts(f.LastUsedAt)})
	}
	return out
}

func nonNil(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}

type userDetailView struct {
	userView
	Methods struct {
		Password      bool `json:"password"`
		Authenticator bool `json:"authenticator"`
		BackupCode    bool `json:"backup_code"`
	} `json:"methods"`
	Sessions        []sessionView `json:"sessions"`
	TrustedBrowsers []browserView `json:"trusted_browsers"`
	Grants          []grantView   `json:"grants"`
	LastSignIn      *time.Time    `json:"last_sign_in"`
}

// DetailJSON is the JSON form of a user's detail ("user show --json").
func DetailJSON(d UserDetail) any { return viewDetail(d) }

func viewDetail(d UserDetail) userDetailView {
	v := userDetailView{userView: viewUser(d.User), Sessions: viewSessions(d.Sessions),
		TrustedBrowsers: viewBrowsers(d.TrustedBrowsers), Grants: viewGrants(d.Grants)}
	v.Methods.Password, v.Methods.Authenticator, v.Methods.BackupCode = d.Password, d.Authenticator, d.BackupCode
	if d.LastSignIn != nil {
		v.LastSignIn = ts(d.LastSignIn.At)
	}
	return v
}

type clientView struct {
	ID                     string          `json:"id"`
	Name                   string          `json:"name"`
	LogoURI                string          `json:"logo_uri"`
	Public                 bool            `json:"public"`
	Type                   string          `json:"type"`
	RedirectURIs           []string        `json:"redirect_uris"`
	PostLogoutRedirectURIs []string        `json:"post_logout_redirect_uris"`
	GrantTypes             []string        `json:"grant_types"`
	AccessTokenFormat      string          `json:"access_token_format"`
	AccessTokenLifetime    config.Duration `json:"access_token_lifetime"`
	IDTokenLifetime        config.Duration `json:"id_token_lifetime"`
	DefaultACR             string          `json:"default_acr"`
	Admin                  string          `json:"admin"`
	// IDTokenSignedResponseAlg: "" when none is registered (keys.algorithm).
	IDTokenSignedResponseAlg string     `json:"id_token_signed_response_alg"`
	Source                   string     `json:"source"`
	CreatedAt                *time.Time `json:"created_at"`
	UpdatedAt                *time.Time `json:"updated_at"`
	// Secret is set once: in the answer that generated it.
	Secret string `json:"secret,omitempty"`
}

func viewClient(c storage.Client) clientView {
	return clientView{ID: c.ID, Name: c.Name, LogoURI: c.LogoURI, Public: c.Public, Type: c.AppType, RedirectURIs: nonNil(c.RedirectURIs),
		PostLogoutRedirectURIs: nonNil(c.PostLogoutRedirectURIs), GrantTypes: nonNil(c.GrantTypes),
		AccessTokenFormat: c.AccessTokenFormat, AccessTokenLifetime: config.Duration(c.AccessTokenLifetime),
		IDTokenLifetime: config.Duration(c.IDTokenLifetime), DefaultACR: c.DefaultACR, Admin: c.AdminAccess,
		IDTokenSignedResponseAlg: c.IDTokenSigningAlg,
		Source:                   c.Source, CreatedAt: ts(c.CreatedAt), UpdatedAt: ts(c.UpdatedAt)}
}

type orgView struct {
	ID               string     `json:"id"`
	Name             string     `json:"name"`
	Domains          []string   `json:"domains"`
	Issuer           string     `json:"issuer"`
	ClientID         string     `json:"client_id"`
	Scopes           []string   `json:"scopes"`
	ClaimEmail       string     `json:"claim_email"`
	ClaimName        string     `json:"claim_name"`
	ClaimGroups      string     `json:"claim_groups"`
	TrustUpstreamMFA bool       `json:"trust_upstream_mfa"`
	JIT              bool       `json:"jit"`
	Source           string     `json:"source"`
	CreatedAt        *time.Time `json:"created_at"`
	UpdatedAt        *time.Time `json:"updated_at"`
}

func viewOrg(o storage.Organization) orgView {
	return orgView{ID: o.ID, Name: o.Name, Domains: nonNil(o.Domains), Issuer: o.Issuer, ClientID: o.ClientID,
		Scopes: nonNil(o.Scopes), ClaimEmail: o.ClaimEmail, ClaimName: o.ClaimName, ClaimGroups: o.ClaimGroups,
		TrustUpstreamMFA: o.TrustUpstreamMFA, JIT: o.JITProvisioning, Source: o.Source,
		CreatedAt: ts(o.CreatedAt), UpdatedAt: ts(o.UpdatedAt)}
}

// AuditView is an audit event as the API and "audit list --json" show it.
type AuditView struct {
	ID        int64             `json:"id"`
	At        *time.Time        `json:"at"`
	Type      string            `json:"type"`
	UserID    string            `json:"user_id,omitempty"`
	Email     string            `json:"email,omitempty"`
	ClientID  string            `json:"client_id,omitempty"`
	IP        string            `json:"ip,omitempty"`
	UserAgent string            `json:"user_agent,omitempty"`
	Reason    string            `json:"reason,omitempty"`
	Details   map[string]string `json:"details,omitempty"`
}

// ViewAudit is the JSON form of an audit event.
func ViewAudit(e storage.AuditEvent) AuditView {
	return AuditView{ID: e.ID, At: ts(e.At), Type: e.Event, UserID: e.UserID, Email: e.Email, ClientID: e.ClientID,
		IP: e.IP, UserAgent: e.UserAgent, Reason: e.Reason, Details: e.Details}
}

type keyView struct {
	ID        string          `json:"id"`
	Algorithm string          `json:"algorithm"`
	CreatedAt *time.Time      `json:"created_at"`
	NotBefore *time.Time      `json:"signs_from"`
	RetireAt  *time.Time      `json:"signs_until"`
	ExpiresAt *time.Time      `json:"published_until"`
	PublicJWK json.RawMessage `json:"public_jwk"`
}

// --- handlers ---

func (a *API) openapi(c echo.Context, _ Actor) error {
	return c.Blob(http.StatusOK, "application/json", openAPI)
}

func (a *API) listUsers(c echo.Context, _ Actor) error {
	n, err := limitParam(c)
	if err != nil {
		return err
	}
	q := storage.UserQuery{EmailPrefix: c.QueryParam("email_prefix"), Limit: n}
	if cur := c.QueryParam("cursor"); cur != "" {
		b, err := base64.RawURLEncoding.DecodeString(cur)
		if err != nil {
			return invalid("cursor: not a cursor this API gave")
		}
		q.After = string(b)
	}
	us, err := a.svc.SearchUsers(c.Request().Context(), q)
	if err != nil {
		return err
	}
	page := struct {
		Users      []userView `json:"users"`
		NextCursor string     `json:"next_cursor,omitempty"`
	}{Users: make([]userView, 0, len(us))}
	for _, u := range us {
		page.Users = append(page.Users, viewUser(u))
	}
	if len(us) == n {
		page.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(strings.ToLower(us[len(us)-1].Email)))
	}
	return c.JSON(http.StatusOK, page)
}

func (a *API) createUser(c echo.Context, actor Actor) error {
	var in struct {
		Email        string `json:"email"`
		Name         string `json:"name"`
		Region       string `json:"region"`
		Password     string `json:"password"`
		SendPassword bool   `json:"send_set_password_link"`
	}
	if err := decode(c, &in); err != nil {
		return err
	}
	ctx := c.Request().Context()
	u, err := a.svc.CreateUser(ctx, actor, NewUser{Email: in.Email, Name: in.Name, Region: in.Region, Password: in.Password})
	if err != nil {
		return err
	}
	if in.SendPassword && in.Password == "" {
		if _, err := a.svc.SendSetPasswordLink(ctx, actor, u.ID); err != nil {
			return err
		}
	}
	return c.JSON(http.StatusCreated, viewUser(u))
}

func (a *API) getUser(c echo.Context, _ Actor) error {
	ctx := c.Request().Context()
	u, err := a.svc.User(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	d, err := a.svc.Detail(ctx, u)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, viewDetail(d))
}

func (a *API) updateUser(c echo.Context, actor Actor) error {
	var in struct {
		Name   *string `json:"name"`
		Region *string `json:"region"`
	}
	if err := decode(c, &in); err != nil {
		return err
	}
	u, err := a.svc.UpdateUser(c.Request().Context(), actor, c.Param("id"), UserChange{Name: in.Name, Region: in.Region})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, viewUser(u))
}

func (a *API) deleteUser(c echo.Context, actor Actor) error {
	if _, err := a.svc.DeleteUser(c.Request().Context(), actor, c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (a *API) disableUser(c echo.Context, actor Actor) error { return a.setDisabled(c, actor, true) }
func (a *API) enableUser(c echo.Context, actor Actor) error  { return a.setDisabled(c, actor, false) }

func (a *API) setDisabled(c echo.Context, actor Actor, disabled bool) error {
	u, err := a.svc.SetDisabled(c.Request().Context(), actor, c.Param("id"), disabled)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, viewUser(u))
}

func (a *API) resetSecondStep(c echo.Context, actor Actor) error {
	_, mailed, err := a.svc.ResetSecondStep(c.Request().Context(), actor, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]bool{"reset": true, "notified": mailed})
}

func (a *API) sendReset(c echo.Context, actor Actor) error {
	if _, err := a.svc.SendSetPasswordLink(c.Request().Context(), actor, c.Param("id")); err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]bool{"sent": true})
}

func (a *API) detail(c echo.Context) (UserDetail, error) {
	ctx := c.Request().Context()
	u, err := a.svc.User(ctx, c.Param("id"))
	if err != nil {
		return UserDetail{}, err
	}
	return a.svc.Detail(ctx, u)
}

func (a *API) listSessions(c echo.Context, _ Actor) error {
	d, err := a.detail(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"sessions": viewSessions(d.Sessions)})
}

func (a *API) revokeSessions(c echo.Context, actor Actor) error {
	n, err := a.svc.RevokeSessions(c.Request().Context(), actor, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]int{"sessions_ended": n})
}

func (a *API) revokeSession(c echo.Context, actor Actor) error {
	if err := a.svc.RevokeSession(c.Request().Context(), actor, c.Param("id"), c.Param("sid")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (a *API) listTrustedBrowsers(c echo.Context, _ Actor) error {
	d, err := a.detail(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"trusted_browsers": viewBrowsers(d.TrustedBrowsers)})
}

func (a *API) removeTrustedBrowser(c echo.Context, actor Actor) error {
	if err := a.svc.RemoveTrustedBrowser(c.Request().Context(), actor, c.Param("id"), c.Param("did")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (a *API) listGrants(c echo.Context, _ Actor) error {
	d, err := a.detail(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"grants": viewGrants(d.Grants)})
}

func (a *API) revokeGrant(c echo.Context, actor Actor) error {
	if err := a.svc.RevokeGrant(c.Request().Context(), actor, c.Param("id"), c.Param("gid")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (a *API) listClients(c echo.Context, _ Actor) error {
	cs, err := a.svc.Clients(c.Request().Context())
	if err != nil {
		return err
	}
	out := make([]clientView, 0, len(cs))
	for _, cl := range cs {
		out = append(out, viewClient(cl))
	}
	return c.JSON(http.StatusOK, map[string]any{"clients": out})
}

// clientInput is a new client (the config file's client, in JSON).
type clientInput struct {
	ID                     string          `json:"id"`
	Name                   string          `json:"name"`
	LogoURI                string          `json:"logo_uri"`
	Secret                 string          `json:"secret"`
	Public                 bool            `json:"public"`
	Type                   string          `json:"type"`
	RedirectURIs           []string        `json:"redirect_uris"`
	PostLogoutRedirectURIs []string        `json:"post_logout_redirect_uris"`
	GrantTypes             []string        `json:"grant_types"`
	AccessTokenFormat      string          `json:"access_token_format"`
	AccessTokenLifetime    config.Duration `json:"access_token_lifetime"`
	IDTokenLifetime        config.Duration `json:"id_token_lifetime"`
	DefaultACR             string          `json:"default_acr"`
	Admin                  string          `json:"admin"`
	// IDTokenSignedResponseAlg: RS256 or ES256; empty: keys.algorithm.
	IDTokenSignedResponseAlg string `json:"id_token_signed_response_alg"`
}

func (a *API) createClient(c echo.Context, actor Actor) error {
	var in clientInput
	if err := decode(c, &in); err != nil {
		return err
	}
	cl, secret, err := a.svc.CreateClient(c.Request().Context(), actor, config.Client{ID: in.ID, Name: in.Name, LogoURI: in.LogoURI, Secret: in.Secret,
		Public: in.Public, Type: in.Type, RedirectURIs: in.RedirectURIs, PostLogoutRedirectURIs: in.PostLogoutRedirectURIs,
		GrantTypes: in.GrantTypes, AccessTokenFormat: in.AccessTokenFormat, AccessTokenLifetime: in.AccessTokenLifetime,
		IDTokenLifetime: in.IDTokenLifetime, DefaultACR: in.DefaultACR, Admin: in.Admin,
		IDTokenSignedResponseAlg: in.IDTokenSignedResponseAlg})
	if err != nil {
		return err
	}
	v := viewClient(cl)
	v.Secret = secret
	return c.JSON(http.StatusCreated, v)
}

func (a *API) getClient(c echo.Context, _ Actor) error {
	cl, err := a.svc.Client(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, viewClient(cl))
}

func (a *API) updateClient(c echo.Context, actor Actor) error {
	var in struct {
		Name                     *string   `json:"name"`
		LogoURI                  *string   `json:"logo_uri"`
		RedirectURIs             *[]string `json:"redirect_uris"`
		PostLogoutRedirectURIs   *[]string `json:"post_logout_redirect_uris"`
		GrantTypes               *[]string `json:"grant_types"`
		AccessTokenFormat        *string   `json:"access_token_format"`
		DefaultACR               *string   `json:"default_acr"`
		Admin                    *string   `json:"admin"`
		IDTokenSignedResponseAlg *string   `json:"id_token_signed_response_alg"`
	}
	if err := decode(c, &in); err != nil {
		return err
	}
	cl, err := a.svc.UpdateClient(c.Request().Context(), actor, c.Param("id"), ClientChange{Name: in.Name, LogoURI: in.LogoURI, RedirectURIs: in.RedirectURIs,
		PostLogoutRedirectURIs: in.PostLogoutRedirectURIs, GrantTypes: in.GrantTypes, AccessTokenFormat: in.AccessTokenFormat,
		DefaultACR: in.DefaultACR, Admin: in.Admin, IDTokenSignedResponseAlg: in.IDTokenSignedResponseAlg})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, viewClient(cl))
}

func (a *API) deleteClient(c echo.Context, actor Actor) error {
	if _, err := a.svc.DeleteClient(c.Request().Context(), actor, c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (a *API) rotateSecret(c echo.Context, actor Actor) error {
	secret, err := a.svc.RotateClientSecret(c.Request().Context(), actor, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"client_id": c.Param("id"), "secret": secret})
}

func (a *API) listOrgs(c echo.Context, _ Actor) error {
	os, err := a.svc.Orgs(c.Request().Context())
	if err != nil {
		return err
	}
	out := make([]orgView, 0, len(os))
	for _, o := range os {
		out = append(out, viewOrg(o))
	}
	return c.JSON(http.StatusOK, map[string]any{"organizations": out})
}

func (a *API) createOrg(c echo.Context, actor Actor) error {
	var in struct {
		Name             string   `json:"name"`
		Domains          []string `json:"domains"`
		Issuer           string   `json:"issuer"`
		ClientID         string   `json:"client_id"`
		ClientSecret     string   `json:"client_secret"`
		Scopes           []string `json:"scopes"`
		ClaimEmail       string   `json:"claim_email"`
		ClaimName        string   `json:"claim_name"`
		ClaimGroups      string   `json:"claim_groups"`
		TrustUpstreamMFA bool     `json:"trust_upstream_mfa"`
		JIT              *bool    `json:"jit"`
	}
	if err := decode(c, &in); err != nil {
		return err
	}
	o, err := a.svc.CreateOrg(c.Request().Context(), actor, config.Organization{Name: in.Name, Domains: in.Domains, Issuer: in.Issuer,
		ClientID: in.ClientID, ClientSecret: in.ClientSecret, Scopes: in.Scopes,
		Claims: config.Claims{Email: in.ClaimEmail, Name: in.ClaimName, Groups: in.ClaimGroups}, TrustUpstreamMFA: in.TrustUpstreamMFA, JIT: in.JIT})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, viewOrg(o))
}

func (a *API) getOrg(c echo.Context, _ Actor) error {
	o, err := a.svc.Org(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, viewOrg(o))
}

func (a *API) updateOrg(c echo.Context, actor Actor) error {
	var in struct {
		Domains          *[]string `json:"domains"`
		Issuer           *string   `json:"issuer"`
		ClientID         *string   `json:"client_id"`
		ClientSecret     *string   `json:"client_secret"`
		Scopes           *[]string `json:"scopes"`
		ClaimEmail       *string   `json:"claim_email"`
		ClaimName        *string   `json:"claim_name"`
		ClaimGroups      *string   `json:"claim_groups"`
		TrustUpstreamMFA *bool     `json:"trust_upstream_mfa"`
		JIT              *bool     `json:"jit"`
	}
	if err := decode(c, &in); err != nil {
		return err
	}
	ctx := c.Request().Context()
	o, err := a.svc.Org(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	o, err = a.svc.UpdateOrg(ctx, actor, o.ID, OrgChange{Domains: in.Domains, Issuer: in.Issuer, ClientID: in.ClientID,
		ClientSecret: in.ClientSecret, Scopes: in.Scopes, ClaimEmail: in.ClaimEmail, ClaimName: in.ClaimName,
		ClaimGroups: in.ClaimGroups, TrustUpstreamMFA: in.TrustUpstreamMFA, JIT: in.JIT})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, viewOrg(o))
}

func (a *API) deleteOrg(c echo.Context, actor Actor) error {
	if _, err := a.svc.DeleteOrg(c.Request().Context(), actor, c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// AuditQuery is the filter of the audit list, from the API's query or the
// CLI's flags: user, event types (comma-separated), a time range
// (RFC 3339 or YYYY-MM-DD), a cursor and a page size.
func AuditQuery(userID, types, since, until, cursor string, limit int) (storage.AuditFilter, error) {
	f := storage.AuditFilter{UserID: userID, Limit: limit}
	for _, t := range strings.Split(types, ",") {
		if t = strings.TrimSpace(t); t != "" {
			f.Events = append(f.Events, t)
		}
	}
	var err error
	if f.Since, err = parseTime(since); err != nil {
		return f, invalid("since: %v", err)
	}
	if f.Until, err = parseTime(until); err != nil {
		return f, invalid("until: %v", err)
	}
	if cursor != "" {
		atMs, id, ok := strings.Cut(cursor, ".")
		ms, err1 := strconv.ParseInt(atMs, 10, 64)
		n, err2 := strconv.ParseInt(id, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			return f, invalid("cursor: not a cursor this API gave")
		}
		f.Before = &storage.AuditCursor{At: time.UnixMilli(ms).UTC(), ID: n}
	}
	return f, nil
}

// AuditCursor is the cursor that continues after e.
func AuditCursor(e storage.AuditEvent) string {
	return strconv.FormatInt(e.At.UnixMilli(), 10) + "." + strconv.FormatInt(e.ID, 10)
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return time.Time{}, fmt.Errorf("want RFC 3339 (2025-04-09T12:00:00Z) or a date (2025-04-09)")
	}
	return t.UTC(), nil
}

func (a *API) listAudit(c echo.Context, _ Actor) error {
	n, err := limitParam(c)
	if err != nil {
		return err
	}
	f, err := AuditQuery(c.QueryParam("user_id"), c.QueryParam("type"), c.QueryParam("since"), c.QueryParam("until"), c.QueryParam("cursor"), n)
	if err != nil {
		return err
	}
	es, err := a.svc.Audit(c.Request().Context(), f)
	if err != nil {
		return err
	}
	page := struct {
		Events     []AuditView `json:"events"`
		NextCursor string      `json:"next_cursor,omitempty"`
	}{Events: make([]AuditView, 0, len(es))}
	for _, e := range es {
		page.Events = append(page.Events, ViewAudit(e))
	}
	if len(es) == n {
		page.NextCursor = AuditCursor(es[len(es)-1])
	}
	return c.JSON(http.StatusOK, page)
}

func (a *API) listKeys(c echo.Context, _ Actor) error {
	ks, err := a.svc.SigningKeys(c.Request().Context())
	if err != nil {
		return err
	}
	out := make([]keyView, 0, len(ks))
	for _, k := range ks {
		out = append(out, keyView{ID: k.ID, Algorithm: k.Algorithm, CreatedAt: ts(k.CreatedAt), NotBefore: ts(k.NotBefore),
			RetireAt: ts(k.RetireAt), ExpiresAt: ts(k.ExpiresAt), PublicJWK: json.RawMessage(k.PublicJWK)})
	}
	return c.JSON(http.StatusOK, map[string]any{"keys": out})
}

func (a *API) rotateKeys(c echo.Context, actor Actor) error {
	emergency := false
	switch c.QueryParam("now") {
	case "", "false":
	case "true":
		emergency = true
	default:
		return &apiError{status: http.StatusBadRequest, code: "invalid_request", desc: "now must be true or false"}
	}
	if err := a.svc.RotateKeys(c.Request().Context(), actor, emergency); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]bool{"rotated": true})
}
