package login

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/login/factor"
	"github.com/latchkey/latchkey/login/flow"
	"github.com/latchkey/latchkey/login/mail"
	"github.com/latchkey/latchkey/op"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config is the part of the configuration the pages need.
type Config struct {
	Issuer        string
	SiteName      string
	Policy        flow.Policy
	EmailCodeTTL  time.Duration
	Reconfirm     time.Duration // one identity reconfirmation covers this long
	SignupEnabled bool
	TOTPIssuer    string
	// Demo turns on /demo, the built-in relying party (serve --demo).
	Demo bool
	// DemoClientSecret is the demo client's secret (generated at start).
	DemoClientSecret string
	// AccountClientSecret is the secret of the built-in account client
	// (the account pages are a relying party of this OP).
	AccountClientSecret string
}

// OP is what login needs from the OpenID provider.
type OP interface {
	// Respond issues the code for a Done auth request and sends the browser
	// back to the client.
	Respond(w http.ResponseWriter, r *http.Request, ar storage.AuthRequest)
	// RespondError sends an OAuth error to the client of an auth request.
	RespondError(w http.ResponseWriter, r *http.Request, ar storage.AuthRequest, code, description string)
	// Handler is the OP's HTTP handler (the demo relying party calls it
	// in-process).
	Handler() http.Handler
	// VerifyAccessToken checks a user's access token for the account API
	// (op.ErrInvalidToken when it is not valid).
	VerifyAccessToken(ctx context.Context, token string) (op.AccessTokenInfo, error)
}

// Deps are the collaborators.
type Deps struct {
	Store   Store
	Keyring *keyring.Keyring
	OP      OP
	Mailer  mail.Mailer
	Hasher  *factor.PasswordHasher
	Now     func() time.Time
	Logger  *slog.Logger
	// Federation opens organisations' identity providers (single
	// sign-on); nil turns SSO off (an SSO user gets a clear error page).
	Federation Federation
}

// Handler serves the login and account pages.
type Handler struct {
	cfg    Config
	store  Store
	kr     *keyring.Keyring
	op     OP
	mailer mail.Mailer
	hasher *factor.PasswordHasher
	now    func() time.Time
	log    *slog.Logger
	fed    Federation

	tmpl   map[string]*template.Template
	secure bool // Secure cookies (issuer is not plain-http localhost)
	site   mail.Site

	// Back-off for wrong passwords and codes: a few free tries, then
	// exponential delays capped at 15 minutes (never a permanent lock that
	// an attacker could use to keep a user out).
	backoff factor.Backoff
}

// New builds the handler.
func New(cfg Config, d Deps) (*Handler, error) {
	if d.Store == nil || d.Keyring == nil || d.OP == nil || d.Mailer == nil {
		return nil, errors.New("login: store, keyring, OP and mailer are required")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Hasher == nil {
		d.Hasher = factor.NewPasswordHasher(factor.DefaultPasswordParams)
	}
	if cfg.SiteName == "" {
		cfg.SiteName = "Latchkey"
	}
	if cfg.TOTPIssuer == "" {
		cfg.TOTPIssuer = cfg.SiteName
	}
	if cfg.EmailCodeTTL == 0 {
		cfg.EmailCodeTTL = 10 * time.Minute
	}
	if cfg.Reconfirm == 0 {
		cfg.Reconfirm = 5 * time.Minute
	}
	u, err := url.Parse(cfg.Issuer)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("login: bad issuer %q", cfg.Issuer)
	}
	h := &Handler{
		cfg: cfg, store: d.Store, kr: d.Keyring, op: d.OP, mailer: d.Mailer, hasher: d.Hasher,
		now: d.Now, log: d.Logger, fed: d.Federation,
		secure:  u.Scheme == "https",
		site:    mail.Site{Name: cfg.SiteName, URL: strings.TrimSuffix(cfg.Issuer, "/")},
		backoff: factor.Backoff{Free: 5, Base: time.Second, Max: 15 * time.Minute},
	}
	if err := h.parseTemplates(); err != nil {
		return nil, err
	}
	return h, nil
}

// Register mounts the routes on e and installs the error handler.
func (h *Handler) Register(e *echo.Echo) {
	e.HTTPErrorHandler = h.handleError
	e.Use(h.securityHeaders)
	static, _ := fs.Sub(staticFS, "static")
	e.GET("/static/*", echo.WrapHandler(http.StripPrefix("/static/", staticHandler(static))))

	e.GET("/login", h.dispatch)
	e.GET("/login/identify", h.identifyPage)
	e.POST("/login/identify", h.identifySubmit)
	e.POST("/login/restart", h.restart)
	e.GET("/login/password", h.passwordPage)
	e.POST("/login/password", h.passwordSubmit)
	e.GET("/login/code", h.codePage)
	e.POST("/login/code", h.codeSubmit)
	e.POST("/login/code/send", h.codeSend)
	e.GET("/login/remember", h.rememberPage)
	e.POST("/login/remember", h.rememberSubmit)
	e.GET("/login/backup-code", h.backupCodePage)
	e.POST("/login/backup-code", h.backupCodeSubmit)

	e.GET("/device", h.devicePage)
	e.POST("/device", h.deviceSubmit)
	e.GET("/device/confirm", h.deviceConfirmPage)
	e.POST("/device/confirm", h.deviceConfirmSubmit)

	e.GET("/logout", h.logoutPage)
	e.POST("/logout", h.logoutSubmit)
	e.GET("/logout/done", h.logoutDone)

	// Single sign-on: the round trip to an organisation's IdP.
	e.GET("/federation/start", h.federationStart)
	e.GET("/federation/callback", h.federationCallback)

	// Account pages (a relying party of this OP), sign-up, password reset,
	// set-password links and the account API.
	e.GET("/account", h.accountHome)
	e.GET("/account/callback", h.accountCallback)
	e.GET("/account/reconfirm", h.withAccount(h.accountReconfirm))
	e.GET("/account/security", h.withAccount(h.securityPage))
	e.GET("/account/security/totp", h.freshGET(h.totpSetupPage))
	e.POST("/account/security/totp", h.freshPOST("/account/security/totp", h.totpSetupSubmit))
	e.GET("/account/security/totp/manage", h.securityChange(h.totpManagePage))
	e.GET("/account/security/totp/off", h.freshGET(h.totpOffPage))
	e.POST("/account/security/totp/off", h.freshPOST("/account/security/totp/off", h.totpOffSubmit))
	e.GET("/account/security/backup-code", h.freshGET(h.backupPage))
	e.POST("/account/security/backup-code", h.freshPOST("/account/security/backup-code", h.backupGenerate))
	e.GET("/account/security/backup-code/show", h.securityChange(h.backupShowPage))
	e.POST("/account/security/backup-code/saved", h.securityChange(h.backupSaved))
	e.GET("/account/security/password", h.freshGET(h.passwordChangePage))
	e.POST("/account/security/password", h.freshPOST("/account/security/password", h.passwordChangeSubmit))
	e.GET("/account/devices", h.withAccount(h.devicesPage))
	e.POST("/account/devices/remove", h.withAccount(h.devicesRemove))
	e.POST("/account/devices/signout-others", h.withAccount(h.devicesSignOutOthers))
	e.GET("/account/privacy", h.withAccount(h.privacyPage))
	e.POST("/account/privacy", h.withAccount(h.privacySubmit))
	e.GET("/account/set-password", h.setPasswordPage)
	e.POST("/account/set-password", h.setPasswordSubmit)
	e.Any("/api/v1/me/privacy", h.privacyAPI)
	e.GET("/signup", h.signupPage)
	e.POST("/signup", h.signupSubmit)
	e.GET("/signup/code", h.signupCodePage)
	e.POST("/signup/code", h.signupCodeSubmit)
	e.POST("/signup/code/send", h.signupCodeSend)
	e.GET("/forgot", h.forgotPage)
	e.POST("/forgot", h.forgotSubmit)
	e.POST("/forgot/code", h.forgotCodeSubmit)
	e.POST("/forgot/code/send", h.forgotCodeSend)
	e.POST("/forgot/second", h.forgotSecondSubmit)
	e.POST("/forgot/password", h.forgotPasswordSubmit)

	if h.cfg.Demo {
		e.GET("/demo", h.demoStart)
		e.GET("/demo/callback", h.demoCallback)
	}
	e.GET("/", h.home)
}

func staticHandler(fsys fs.FS) http.Handler {
	fileServer := http.FileServerFS(fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		fileServer.ServeHTTP(w, r)
	})
}

// securityHeaders sends the headers every page needs (SPEC 9): no framing,
// no sniffing, no referrer leaks of auth request ids, a strict CSP (the
// pages use no scripts; inline styles are not used either).
func (h *Handler) securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		hd := c.Response().Header()
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self' *; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("Cache-Control", "no-store")
		if h.secure {
			hd.Set("Strict-Transport-Security", "max-age=31536000")
		}
		return next(c)
	}
}

// --- templates ---

// page is the data every template gets.
type page struct {
	Site   string
	Title  string
	CSRF   string
	Error  string
	Notice string
	Data   any
}

func (h *Handler) parseTemplates() error {
	funcs := template.FuncMap{
		"fmtTime": func(t time.Time) string {
			if t.IsZero() {
				return "never"
			}
			return t.UTC().Format("2 Jan 2006, 15:04 UTC")
		},
		"fmtDate": func(t time.Time) string { return t.UTC().Format("2 Jan 2006") },
	}
	// Every page is parsed into its own copy of the layout and the shared
	// partials, so that each page's {{define "content"}} stays its own.
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html")
	if err != nil {
		return fmt.Errorf("login: templates: %w", err)
	}
	entries, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return err
	}
	h.tmpl = map[string]*template.Template{}
	for _, p := range entries {
		name := strings.TrimPrefix(p, "templates/")
		if name == "layout.html" || name == "partials.html" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(templateFS, p)
		if err != nil {
			return fmt.Errorf("login: template %s: %w", name, err)
		}
		h.tmpl[strings.TrimSuffix(name, ".html")] = t
	}
	return nil
}

// render writes a page. The CSRF token is filled from the browser handle.
func (h *Handler) render(c echo.Context, status int, name string, p page) error {
	t, ok := h.tmpl[name]
	if !ok {
		return fmt.Errorf("login: no template %q", name)
	}
	p.Site = h.cfg.SiteName
	if p.CSRF == "" {
		p.CSRF = h.csrfToken(c)
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "layout.html", p); err != nil {
		return fmt.Errorf("login: render %s: %w", name, err)
	}
	return c.HTML(status, b.String())
}

// --- cookies ---

const (
	cookieBrowser = "lk_browser" // random handle: binds sign-ins, codes and CSRF to this browser
	cookieSession = "lk_session" // browser session token
	cookieDevice  = "id.secret"  // trusted-device token (issue: "HttpOnly cookie id.secret")
	cookieDemo    = "lk_demo"    // the demo relying party's state
)

func (h *Handler) setCookie(c echo.Context, name, value string, maxAge time.Duration) {
	ck := &http.Cookie{
		Name: name, Value: value, Path: "/", HttpOnly: true, Secure: h.secure,
		SameSite: http.SameSiteLaxMode,
	}
	if maxAge > 0 {
		ck.MaxAge = int(maxAge / time.Second)
	}
	c.SetCookie(ck)
}

func (h *Handler) clearCookie(c echo.Context, name string) {
	c.SetCookie(&http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: h.secure, SameSite: http.SameSiteLaxMode})
}

// maxSealedCookie bounds what openSealedCookie reads (the sign-up's, the
// largest, holds a password hash and a name).
const maxSealedCookie = 3072

// setSealedCookie stores v as JSON sealed with the keyring (AES-GCM) under
// the cookie's name as associated data: the browser can neither read nor
// change it, nor pass one sealed cookie off as another.
func (h *Handler) setSealedCookie(c echo.Context, name string, v any, maxAge time.Duration) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	h.setCookie(c, name, encodeSealed(h.kr.Seal(raw, []byte(name))), maxAge)
	return nil
}

// openSealedCookie reads a cookie written by setSealedCookie into v.
func (h *Handler) openSealedCookie(c echo.Context, name string, v any) error {
	ck, err := c.Cookie(name)
	if err != nil {
		return err
	}
	if len(ck.Value) > maxSealedCookie {
		return errors.New("login: oversized cookie " + name)
	}
	sealed, err := decodeSealed(ck.Value)
	if err != nil {
		return err
	}
	raw, err := h.kr.Open(sealed, []byte(name))
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}

func cookieValue(c echo.Context, name string) string {
	ck, err := c.Cookie(name)
	if err != nil || len(ck.Value) > 1024 {
		return ""
	}
	return ck.Value
}

// browserHandle returns this browser's handle, creating the cookie when
// missing. The handle is a random 256-bit value; only its HMAC is stored.
func (h *Handler) browserHandle(c echo.Context) string {
	if v := cookieValue(c, cookieBrowser); len(v) >= 32 {
		return v
	}
	if v, ok := c.Get(cookieBrowser).(string); ok {
		return v
	}
	v := keyring.NewToken()
	h.setCookie(c, cookieBrowser, v, 400*24*time.Hour)
	c.Set(cookieBrowser, v)
	return v
}

// browserHash is the digest of this browser's handle ("" cookie → nil).
func (h *Handler) browserHash(c echo.Context) []byte {
	v := cookieValue(c, cookieBrowser)
	if len(v) < 32 {
		if s, ok := c.Get(cookieBrowser).(string); ok {
			v = s
		} else {
			return nil
		}
	}
	return h.kr.MACString(keyring.PurposeBrowser, v)
}

// --- CSRF ---

// csrfToken is an HMAC of the browser handle: an attacker's page cannot
// read the cookie, so cannot forge the token (double submit, signed).
func (h *Handler) csrfToken(c echo.Context) string {
	return hex.EncodeToString(h.kr.MACString(keyring.PurposeCSRF, h.browserHandle(c))[:16])
}

// checkCSRF verifies the form's csrf field.
func (h *Handler) checkCSRF(c echo.Context) error {
	v := cookieValue(c, cookieBrowser)
	got, err := hex.DecodeString(c.FormValue("csrf"))
	if v == "" || err != nil || len(got) != 16 {
		return errForbidden("The form has expired. Go back, reload the page and try again.", errors.New("csrf token missing or malformed"))
	}
	if !factor.Equal(got, h.kr.MACString(keyring.PurposeCSRF, v)[:16]) {
		return errForbidden("The form has expired. Go back, reload the page and try again.", errors.New("csrf token mismatch"))
	}
	return nil
}

// --- request facts ---

// clientIP is the peer address. X-Forwarded-For is not trusted: a
// deployment behind a proxy sets echo's IPExtractor in cmd.
func clientIP(c echo.Context) string {
	ip := c.RealIP()
	if host, _, err := net.SplitHostPort(ip); err == nil {
		return host
	}
	return ip
}

func userAgent(c echo.Context) string {
	return truncate(c.Request().UserAgent(), 300)
}

// newErrorID is a short random id shown to the user and logged.
func newErrorID() string {
	b := make([]byte, 6)
	_, _ = io.ReadFull(rand.Reader, b)
	return hex.EncodeToString(b)
}

// audit writes an audit event; failures are logged, never fatal.
func (h *Handler) audit(c echo.Context, e storage.AuditEvent) {
	if e.At.IsZero() {
		e.At = h.now()
	}
	if c != nil {
		e.IP = clientIP(c)
		e.UserAgent = userAgent(c)
	}
	ctx := context.Background()
	if c != nil {
		ctx = c.Request().Context()
	}
	if err := h.store.CreateAuditEvent(ctx, e); err != nil {
		h.log.Error("audit event", "err", err, "event", e.Event)
	}
}
