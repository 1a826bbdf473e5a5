package login

import (
	"context"
	"embed"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/login/factor"
	"github.com/latchkey/latchkey/login/flow"
	"github.com/latchkey/latchkey/login/i18n"
	"github.com/latchkey/latchkey/login/internal/creds"
	"github.com/latchkey/latchkey/login/internal/web"
	"github.com/latchkey/latchkey/login/theme"
	"github.com/latchkey/latchkey/op"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
)

//go:embed templates/*.html
var templateFS embed.FS

// Store is what the sign-in needs from storage (the consumer declares the
// narrow interface; *storage.Store satisfies it). The credential checks
// and their budgets take their part of it (creds.Store).
type Store interface {
	creds.Store

	GetUserByEmail(ctx context.Context, email string) (storage.User, error)
	CreateUser(ctx context.Context, u storage.User) (storage.User, error)

	GetClient(ctx context.Context, id string) (storage.Client, error)
	GetConsent(ctx context.Context, userID, clientID string) (storage.Consent, error)
	GrantConsent(ctx context.Context, userID, clientID string, scopes []string, now time.Time) (storage.Consent, error)

	CreateAuthRequest(ctx context.Context, ar storage.AuthRequest) error
	GetAuthRequest(ctx context.Context, id string) (storage.AuthRequest, error)
	UpdateAuthRequest(ctx context.Context, id string, fn func(*storage.AuthRequest) error) (storage.AuthRequest, error)

	CreateSession(ctx context.Context, s storage.Session) (storage.Session, error)
	GetSessionByTokenHash(ctx context.Context, tokenHash []byte) (storage.Session, error)
	UpdateSession(ctx context.Context, id string, fn func(*storage.Session) error) (storage.Session, error)
	DeleteSession(ctx context.Context, id string) error

	CreateTrustedDevice(ctx context.Context, d storage.TrustedDevice) (storage.TrustedDevice, error)
	GetTrustedDevice(ctx context.Context, userID string, tokenHash []byte) (storage.TrustedDevice, error)
	UpdateTrustedDevice(ctx context.Context, id string, fn func(*storage.TrustedDevice) error) (storage.TrustedDevice, error)

	RevokeRefreshTokens(ctx context.Context, f storage.TokenFilter, now time.Time) error

	CreateActionToken(ctx context.Context, t storage.ActionToken) (storage.ActionToken, error)
	GetActionToken(ctx context.Context, tokenHash []byte, purpose string, now time.Time) (storage.ActionToken, error)
	RedeemActionToken(ctx context.Context, tokenHash []byte, purpose string, now time.Time) (storage.ActionToken, error)

	GetLogoutRequest(ctx context.Context, id string, now time.Time) (storage.LogoutRequest, error)
	DeleteLogoutRequest(ctx context.Context, id string) error

	GetOrganization(ctx context.Context, id string) (storage.Organization, error)
	GetOrganizationByDomain(ctx context.Context, domain string) (storage.Organization, error)
	GetFederatedIdentity(ctx context.Context, orgID, subject string) (storage.FederatedIdentity, error)
	CreateFederatedIdentity(ctx context.Context, f storage.FederatedIdentity) error
	TouchFederatedIdentity(ctx context.Context, orgID, subject string, now time.Time) error
	CreateUpstreamState(ctx context.Context, s storage.UpstreamState) (storage.UpstreamState, error)
	RedeemUpstreamState(ctx context.Context, stateHash []byte, now time.Time) (storage.UpstreamState, error)

	GetDeviceAuthorization(ctx context.Context, id string) (storage.DeviceAuthorization, error)
	UpdateDeviceAuthorization(ctx context.Context, id string, fn func(*storage.DeviceAuthorization) error) (storage.DeviceAuthorization, error)
}

var _ Store = (*storage.Store)(nil)

// TrustedDeviceKeep is how long a trusted-device record is kept after it
// expired (storage.SweepPolicy.TrustedDeviceGrace): until then it still
// tells "trust expired" from "not trusted" and makes the browser known to
// the password throttle, as a known-browser record does for as long.
const TrustedDeviceKeep = creds.KnownBrowserFor

// Config is the part of the configuration the sign-in needs.
type Config struct {
	Issuer        string
	SiteName      string
	Policy        flow.Policy
	EmailCodeTTL  time.Duration
	SignupEnabled bool
	TOTPIssuer    string
	// ReconfirmClientID is the client whose prompt=login sign-ins asking
	// for a fresh factor are identity reconfirmations (the account pages):
	// their code mail is worded as such.
	ReconfirmClientID string
	// NewSignInMail mails an account that signs in from a browser it has
	// not used before (config notifications.new_sign_in).
	NewSignInMail bool
	// Demo: the home page links to /demo.
	Demo bool
	// DefaultLanguage is the language of pages and mails when neither the
	// product (ui_locales), the account nor the browser names one of
	// login/i18n's ("" = English).
	DefaultLanguage string
	// PseudoLocale offers the pseudo-locale en-XA (tests, translators).
	PseudoLocale bool
	// ClientNames are the names of built-in clients as messages (the
	// account pages: "Your account"), shown in the user's language
	// instead of the client's stored name.
	ClientNames map[string]i18n.Msg
	// Theme is the operator's branding of pages and mails (nil: none);
	// Register serves its files under theme.Prefix.
	Theme *theme.Theme
}

// Languages is the language chooser of cfg.
func (cfg Config) Languages() (*i18n.Chooser, error) {
	b, err := i18n.Load()
	if err != nil {
		return nil, err
	}
	return i18n.NewChooser(b, cfg.DefaultLanguage, cfg.PseudoLocale)
}

// OP is what the sign-in needs from the OpenID provider.
type OP interface {
	// Respond issues the code for a Done auth request and sends the browser
	// back to the client.
	Respond(w http.ResponseWriter, r *http.Request, ar storage.AuthRequest)
	// RespondError sends an OAuth error to the client of an auth request.
	RespondError(w http.ResponseWriter, r *http.Request, ar storage.AuthRequest, code, description string)
}

// Metrics is what the sign-in counts for the operator. cmd wires a
// Prometheus implementation (this package never imports one); nil counts
// nothing.
type Metrics interface {
	// SignIn counts one outcome of a sign-in step: "success" (with the
	// second step it used — "email", "totp", "backup", "trusted_device",
	// "session", "sso" or "none" — and the acr it earned), "wrong_password",
	// "wrong_code", "throttled" or "disabled".
	SignIn(outcome, secondStep, acr string)
	// EmailCode counts codes by purpose and stage ("queued", "sent",
	// "failed").
	EmailCode(purpose, stage string)
	// ThrottleHit counts attempts refused by the throttle, by scope.
	ThrottleHit(scope string)
}

type noMetrics struct{}

func (noMetrics) SignIn(string, string, string) {}
func (noMetrics) EmailCode(string, string)      {}
func (noMetrics) ThrottleHit(string)            {}

// Deps are the collaborators.
type Deps struct {
	Store   Store
	Keyring *keyring.Keyring
	OP      OP
	// Outbox is woken when mail is queued (the instance's outbox worker,
	// login/mail/outbox); nil: the worker finds it when it next looks.
	Outbox interface{ Kick() }
	Hasher *factor.PasswordHasher
	Now    func() time.Time
	Logger *slog.Logger
	// Federation opens organisations' identity providers (single
	// sign-on); nil turns SSO off (an SSO user gets a clear error page).
	Federation Federation
	// Metrics counts sign-ins, codes and throttle hits; nil: none.
	Metrics Metrics
	// Verifier does the checks a guess pays for (argon2id, TOTP, code
	// digests); nil: login/factor's over Hasher. Tests count its calls.
	Verifier creds.Verifier
}

// Handler serves the sign-in pages.
type Handler struct {
	cfg   Config
	store Store
	kr    *keyring.Keyring
	op    OP
	creds *creds.Service
	web   *web.Kit
	now   func() time.Time
	log   *slog.Logger
	fed   Federation
	// metrics: Deps.Metrics, or a no-op.
	metrics Metrics
}

// New builds the handler. A broken template fails here.
func New(cfg Config, d Deps) (*Handler, error) {
	if d.Store == nil || d.Keyring == nil || d.OP == nil {
		return nil, errors.New("login: store, keyring and OP are required")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Metrics == nil {
		d.Metrics = noMetrics{}
	}
	langs, err := cfg.Languages()
	if err != nil {
		return nil, err
	}
	kit, err := web.New(web.Config{Issuer: cfg.Issuer, SiteName: cfg.SiteName, Keyring: d.Keyring, Logger: d.Logger,
		StaySignedIn: cfg.Policy.StaySignedIn, Languages: langs, Theme: cfg.Theme}, templateFS)
	if err != nil {
		return nil, err
	}
	cs, err := creds.New(creds.Config{Issuer: cfg.Issuer, SiteName: cfg.SiteName, EmailCodeTTL: cfg.EmailCodeTTL, TOTPIssuer: cfg.TOTPIssuer,
		Languages: langs, Theme: cfg.Theme},
		creds.Deps{Store: d.Store, Keyring: d.Keyring, Outbox: d.Outbox, Hasher: d.Hasher, Now: d.Now, Logger: d.Logger,
			Metrics: d.Metrics, Verifier: d.Verifier})
	if err != nil {
		return nil, err
	}
	return &Handler{cfg: cfg, store: d.Store, kr: d.Keyring, op: d.OP, creds: cs, web: kit,
		now: d.Now, log: d.Logger, fed: d.Federation, metrics: d.Metrics}, nil
}

// ErrorPages renders error pages outside echo; the OP uses it for bad
// /authorize requests, naming the message by its id in login/i18n's
// catalogue, with name/value arguments. It needs nothing but the
// configuration, so it exists before the OP does.
func ErrorPages(cfg Config, kr *keyring.Keyring, logger *slog.Logger) (func(w http.ResponseWriter, r *http.Request, status int, msgID string, args ...string), error) {
	langs, err := cfg.Languages()
	if err != nil {
		return nil, err
	}
	kit, err := web.New(web.Config{Issuer: cfg.Issuer, SiteName: cfg.SiteName, Keyring: kr, Logger: logger, Languages: langs, Theme: cfg.Theme}, nil)
	if err != nil {
		return nil, err
	}
	return kit.ErrorPage, nil
}

// PageWords gives the OP the words of its own two pages (the form_post
// response, the page that leaves the site after a form) in the language
// of a request (its browser's, or the default).
func PageWords(cfg Config) (func(r *http.Request) op.PageWords, error) {
	langs, err := cfg.Languages()
	if err != nil {
		return nil, err
	}
	return func(r *http.Request) op.PageWords {
		return pageWords(langs.Localizer(i18n.Prefs{Accept: r.Header.Get("Accept-Language")}))
	}, nil
}

func pageWords(l *i18n.Localizer) op.PageWords {
	return op.PageWords{FormPostTitle: l.T("away.form_post_title"), FormPostText: l.T("away.form_post_text"),
		FormPostButton: l.T("button.continue"), AwayTitle: l.T("away.title"), AwayLink: l.T("away.link"), Lang: l.Lang()}
}

// redirectAway is op.RedirectAway with its page in this request's
// language.
func (h *Handler) redirectAway(c echo.Context, target string) {
	op.RedirectAwayWords(c.Response(), c.Request(), target, http.StatusSeeOther, pageWords(h.web.Localizer(c)))
}

// Register mounts the routes on e and installs the error handler, the
// security headers and the check that refuses text no browser sends (for
// every page, the account pages' too).
func (h *Handler) Register(e *echo.Echo) {
	e.HTTPErrorHandler = h.web.HandleError
	e.Use(h.web.SecurityHeaders)
	e.Use(h.web.RejectInvalidText)
	e.GET("/static/*", echo.WrapHandler(web.Static()))
	if h.cfg.Theme != nil {
		e.GET(theme.Prefix+"*", echo.WrapHandler(h.cfg.Theme))
	}

	e.GET("/login", h.dispatch)
	e.GET("/login/identify", h.identifyPage)
	e.POST("/login/identify", h.identifySubmit)
	e.POST("/login/restart", h.restart)
	e.GET("/login/password", h.passwordPage)
	e.POST("/login/password", h.passwordSubmit)
	e.GET("/login/code", h.codePage)
	e.POST("/login/code", h.codeSubmit)
	e.POST("/login/code/send", h.codeSend)
	e.POST("/login/passkey", h.passkeySubmit)
	e.GET("/login/remember", h.rememberPage)
	e.POST("/login/remember", h.rememberSubmit)
	e.GET("/login/backup-code", h.backupCodePage)
	e.POST("/login/backup-code", h.backupCodeSubmit)
	e.GET("/login/consent", h.consentPage)
	e.POST("/login/consent", h.consentSubmit)

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

	// Account lifecycle: sign-up, password reset, set-password links.
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
	e.GET("/account/set-password", h.setPasswordPage)
	e.POST("/account/set-password", h.setPasswordSubmit)

	e.GET("/", h.home)
}

// render writes one of the sign-in's pages.
func (h *Handler) render(c echo.Context, status int, name string, p web.Page) error {
	return h.web.Render(c, status, name, p)
}

// audit writes an audit event with this request's address and browser.
func (h *Handler) audit(c echo.Context, e storage.AuditEvent) {
	h.creds.Audit(c.Request().Context(), h.web.From(c), e)
}

// currentSession is this browser's session, or zero.
func (h *Handler) currentSession(c echo.Context) (storage.Session, error) {
	return h.web.CurrentSession(c, h.store)
}

type homeData struct{ Demo bool }

func (h *Handler) home(c echo.Context) error {
	return h.render(c, http.StatusOK, "home", web.Page{Title: i18n.M("home.title"), Data: homeData{Demo: h.cfg.Demo}})
}

// sendCode queues a code for (to, purpose, contextID) bound to this
// browser; wording "" words the mail as purpose. It returns a message for
// the user when it did not.
func (h *Handler) sendCode(c echo.Context, to creds.Recipient, purpose, contextID, wording string) (i18n.Msg, error) {
	return h.creds.SendCode(c.Request().Context(), to, purpose, contextID, wording, h.boundFrom(c))
}

// boundFrom is who is asking, with this browser's handle (made now if
// missing) to bind a code to.
func (h *Handler) boundFrom(c echo.Context) creds.From {
	from := h.web.From(c)
	from.BrowserHash = h.web.BoundBrowserHash(c)
	return from
}

// notify queues the notification mail of a security change.
func (h *Handler) notify(c echo.Context, u storage.User, change i18n.Msg) bool {
	return h.creds.Notify(c.Request().Context(), u, change, h.web.From(c))
}
