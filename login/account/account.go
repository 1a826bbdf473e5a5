package account

import (
	"context"
	"embed"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"

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

// Store is what the account pages need from storage (*storage.Store
// satisfies it); the credential checks take their part (creds.Store).
type Store interface {
	creds.Store

	GetClient(ctx context.Context, id string) (storage.Client, error)

	GetSessionByTokenHash(ctx context.Context, tokenHash []byte) (storage.Session, error)
	UpdateSession(ctx context.Context, id string, fn func(*storage.Session) error) (storage.Session, error)
	DeleteSession(ctx context.Context, id string) error
	ListSessions(ctx context.Context, userID string) ([]storage.Session, error)

	ListTrustedDevices(ctx context.Context, userID string) ([]storage.TrustedDevice, error)
	DeleteTrustedDevice(ctx context.Context, userID, id string) error

	RevokeRefreshTokens(ctx context.Context, f storage.TokenFilter, now time.Time) error
	RevokeRefreshFamily(ctx context.Context, familyID string, now time.Time) error
	ListRefreshFamilies(ctx context.Context, userID string) ([]storage.RefreshToken, error)

	ListConsents(ctx context.Context, userID string) ([]storage.Consent, error)
	DeleteConsent(ctx context.Context, userID, clientID string) error
}

var _ Store = (*storage.Store)(nil)

// Config is the part of the configuration the account pages need.
type Config struct {
	Issuer       string
	SiteName     string
	Policy       flow.Policy   // the session idle rule
	EmailCodeTTL time.Duration // for the credential service
	Reconfirm    time.Duration // one identity reconfirmation covers this long
	TOTPIssuer   string
	// Demo turns on /demo, the built-in relying party (serve --demo).
	Demo bool
	// DemoClientSecret is the demo client's secret (generated at start).
	DemoClientSecret string
	// AccountClientSecret is the secret of the built-in account client.
	AccountClientSecret string
	// DefaultLanguage and PseudoLocale are as login.Config's: the
	// language of pages and mails when nothing names one, and whether
	// the pseudo-locale en-XA is offered.
	DefaultLanguage string
	PseudoLocale    bool
	// Theme is the operator's branding of pages and mails (nil: none).
	// It overrides this package's partials.html as account_partials.html.
	Theme *theme.Theme
}

// OP is what the account pages need from the OpenID provider.
type OP interface {
	// Handler is the OP's HTTP handler: the pages' relying party calls it
	// in-process.
	Handler() http.Handler
	// AuthenticateResource checks the access token of an account API
	// request, Bearer or DPoP (RFC 6750, RFC 9449), and says how to refuse.
	AuthenticateResource(r *http.Request) (op.AccessTokenInfo, *op.ResourceError)
}

// Deps are the collaborators.
type Deps struct {
	Store   Store
	Keyring *keyring.Keyring
	OP      OP
	// Outbox is woken when mail is queued (the instance's outbox worker);
	// nil: the worker finds the mail when it next looks.
	Outbox interface{ Kick() }
	Hasher *factor.PasswordHasher
	Now    func() time.Time
	Logger *slog.Logger
	// Metrics counts the reconfirmation codes and throttle hits of the
	// account pages; nil: none.
	Metrics Metrics
}

// Metrics is what the account pages count (the email codes of identity
// reconfirmation, the throttle); cmd wires Prometheus.
type Metrics interface {
	EmailCode(purpose, stage string)
	ThrottleHit(scope string)
}

// Handler serves the account pages, the demo and the account API.
type Handler struct {
	cfg   Config
	store Store
	op    OP
	creds *creds.Service
	web   *web.Kit
	now   func() time.Time
	log   *slog.Logger
}

// New builds the handler. A broken template fails here.
func New(cfg Config, d Deps) (*Handler, error) {
	if d.Store == nil || d.Keyring == nil || d.OP == nil {
		return nil, errors.New("account: store, keyring and OP are required")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if cfg.Reconfirm == 0 {
		cfg.Reconfirm = 5 * time.Minute
	}
	b, err := i18n.Load()
	if err != nil {
		return nil, err
	}
	langs, err := i18n.NewChooser(b, cfg.DefaultLanguage, cfg.PseudoLocale)
	if err != nil {
		return nil, err
	}
	kit, err := web.New(web.Config{Issuer: cfg.Issuer, SiteName: cfg.SiteName, Keyring: d.Keyring, Logger: d.Logger,
		StaySignedIn: cfg.Policy.StaySignedIn, Languages: langs, Theme: cfg.Theme, PartialsName: "account_partials.html"}, templateFS)
	if err != nil {
		return nil, err
	}
	cs, err := creds.New(creds.Config{Issuer: cfg.Issuer, SiteName: cfg.SiteName, EmailCodeTTL: cfg.EmailCodeTTL, TOTPIssuer: cfg.TOTPIssuer,
		Languages: langs, Theme: cfg.Theme},
		creds.Deps{Store: d.Store, Keyring: d.Keyring, Outbox: d.Outbox, Hasher: d.Hasher, Now: d.Now, Logger: d.Logger, Metrics: credsMetrics(d.Metrics)})
	if err != nil {
		return nil, err
	}
	return &Handler{cfg: cfg, store: d.Store, op: d.OP, creds: cs, web: kit, now: d.Now, log: d.Logger}, nil
}

// credsMetrics passes m on, keeping a nil interface nil (creds then
// counts nothing).
func credsMetrics(m Metrics) creds.Metrics {
	if m == nil {
		return nil
	}
	return m
}

// Register mounts the routes on e (the sign-in's Register installs the
// error handler and security headers for every page).
func (h *Handler) Register(e *echo.Echo) {
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
	e.GET("/account/security/passkeys", h.freshGET(h.passkeysPage))
	e.POST("/account/security/passkeys", h.freshPOST("/account/security/passkeys", h.passkeyAdd))
	e.POST("/account/security/passkeys/remove", h.freshPOST("/account/security/passkeys", h.passkeyRemove))
	e.GET("/account/security/password", h.freshGET(h.passwordChangePage))
	e.POST("/account/security/password", h.freshPOST("/account/security/password", h.passwordChangeSubmit))
	e.GET("/account/devices", h.withAccount(h.devicesPage))
	e.POST("/account/devices/remove", h.withAccount(h.devicesRemove))
	e.POST("/account/devices/signout-others", h.withAccount(h.devicesSignOutOthers))
	e.GET("/account/privacy", h.withAccount(h.privacyPage))
	e.POST("/account/privacy", h.withAccount(h.privacySubmit))
	e.GET("/account/language", h.withAccount(h.languagePage))
	e.POST("/account/language", h.withAccount(h.languageSubmit))
	e.Any("/api/v1/me/privacy", h.privacyAPI)
	if h.cfg.Demo {
		e.GET("/demo", h.demoStart)
		e.GET("/demo/callback", h.demoCallback)
	}
}

func (h *Handler) render(c echo.Context, status int, name string, p web.Page) error {
	return h.web.Render(c, status, name, p)
}

// audit writes an audit event with this request's address and browser.
func (h *Handler) audit(c echo.Context, e storage.AuditEvent) {
	h.creds.Audit(c.Request().Context(), h.web.From(c), e)
}

// notify queues the mandatory notification mail of a change made on its
// own (the revocations queue theirs with them: revokeOthers).
func (h *Handler) notify(c echo.Context, u storage.User, change i18n.Msg) bool {
	return h.creds.Notify(c.Request().Context(), u, change, h.web.From(c))
}

// The account pages (/account/…) are a relying party of our own OP, the
// built-in confidential client "account": signing in to them is an
// ordinary OIDC sign-in with the same second step as any product
// (selfRP), and every change first asks for an identity reconfirmation —
// a new authorization request with prompt=login and
// acr_values=urn:latchkey:acr:mfa:fresh, so the password and a fresh
// second factor (SPEC 3).
//
// After the callback the account session lives in a cookie sealed with
// the keyring (AES-GCM): who, which browser session (sid), when the
// identity was last reconfirmed. It is never trusted alone: every account
// request also resolves this browser's session cookie, which must still
// exist, be the same session and user, and not be idle-expired. Signing
// out anywhere (end_session, /logout, the Devices page of another
// browser, a password change elsewhere) therefore ends the account
// session at once.

// ClientID is the built-in client of the account pages.
const ClientID = "account"

const (
	// accountSessionMax caps an account session whatever the browser
	// session does.
	accountSessionMax = 12 * time.Hour
	// maxPrevSIDs bounds the browser sessions this browser's account
	// session replaced (see accountSession.Prev).
	maxPrevSIDs = 4
)

// RedirectURIs are what the account client is registered with.
func RedirectURIs(issuer string) (redirect, postLogout string) {
	return issuer + "/account/callback", issuer + "/logout/done"
}

// accountSession is the content of the lk_account cookie.
type accountSession struct {
	Sub string `json:"u"`
	SID string `json:"s"`
	// Prev are the earlier browser sessions of this browser that a
	// reconfirmation replaced (a fresh password sign-in starts a new
	// session). Products signed in through them are this browser's, so a
	// security change keeps their refresh tokens like the current
	// session's.
	Prev          []string  `json:"p,omitempty"`
	AuthTime      time.Time `json:"a"`
	ReconfirmedAt time.Time `json:"r"`
	Expires       time.Time `json:"e"`
}

// account is a live account session with what it resolves to.
type account struct {
	s    accountSession
	user storage.User
	sess storage.Session // this browser's session (the account session's sid)
}

func (a *account) sso() bool { return a.user.OrgID != "" }

// in is t in the user's time zone (UTC if none): the account pages show
// times where the user is.
func (a *account) in(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.In(i18n.Location(a.user.TimeZone))
}

func (h *Handler) accountRP() *selfRP {
	redirect, _ := RedirectURIs(h.web.Issuer())
	return &selfRP{
		h: h, clientID: ClientID, secret: h.cfg.AccountClientSecret, redirect: redirect, cookie: web.CookieAccountRP,
		scopes:  []string{oidc.ScopeOpenID, "email", "profile"},
		expired: i18n.M("account.signin_expired"),
		failed:  func(e string) i18n.Msg { return i18n.M("account.signin_error", "Error", e) },
	}
}

// readAccountCookie opens the lk_account cookie (whether or not its
// session is still alive).
func (h *Handler) readAccountCookie(c echo.Context) (accountSession, bool) {
	var s accountSession
	if err := h.web.OpenSealed(c, web.CookieAccount, &s); err != nil || s.Sub == "" || s.SID == "" {
		return accountSession{}, false
	}
	return s, true
}

// currentAccount resolves the account session, or nil when there is none
// or it is dead.
func (h *Handler) currentAccount(c echo.Context) (*account, error) {
	s, ok := h.readAccountCookie(c)
	if !ok {
		return nil, nil
	}
	now := h.now()
	if now.After(s.Expires) {
		return nil, nil
	}
	sess, err := h.web.CurrentSession(c, h.store)
	if err != nil {
		return nil, err
	}
	if sess.ID == "" || sess.ID != s.SID || sess.UserID != s.Sub {
		return nil, nil
	}
	if !h.sessionAlive(sess, now) {
		return nil, nil
	}
	ctx := c.Request().Context()
	u, err := h.store.GetUser(ctx, s.Sub)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil, nil
		}
		return nil, err
	}
	if u.Disabled {
		return nil, nil
	}
	// Using the account pages is activity in this browser.
	if now.Sub(sess.LastSeenAt) > time.Minute {
		if sess, err = h.store.UpdateSession(ctx, sess.ID, func(x *storage.Session) error {
			if now.After(x.LastSeenAt) {
				x.LastSeenAt = now
			}
			return nil
		}); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				return nil, nil
			}
			return nil, err
		}
	}
	return &account{s: s, user: u, sess: sess}, nil
}

// sessionAlive applies the sign-in policy's inactivity rule (SPEC 2) to a
// browser session.
func (h *Handler) sessionAlive(s storage.Session, now time.Time) bool {
	return !h.cfg.Policy.SessionExpired(s.LastSeenAt, s.StaySignedIn, now)
}

// accountGETPages are the pages a sign-in or reconfirmation may return to.
var accountGETPages = map[string]bool{
	"/account/security":             true,
	"/account/security/totp":        true,
	"/account/security/totp/manage": true,
	"/account/security/totp/off":    true,
	"/account/security/backup-code": true,
	"/account/security/password":    true,
	"/account/security/passkeys":    true,
	"/account/devices":              true,
	"/account/privacy":              true,
	"/account/language":             true,
}

// safeReturn maps a path to an account page to return to (never an
// arbitrary URL: the value comes from the query string).
func safeReturn(p string) string {
	if accountGETPages[p] {
		return p
	}
	switch {
	case strings.HasPrefix(p, "/account/devices/"):
		return "/account/devices"
	case strings.HasPrefix(p, "/account/privacy/"):
		return "/account/privacy"
	case strings.HasPrefix(p, "/account/security/backup-code/"):
		return "/account/security"
	}
	return "/account/security"
}

type accountHandler func(c echo.Context, a *account) error

// withAccount runs fn with a live account session. Without one, a page
// (GET) starts the sign-in of the account client and comes back; a change
// (POST) is not applied and the browser goes to the page, which signs in.
func (h *Handler) withAccount(fn accountHandler) echo.HandlerFunc {
	return func(c echo.Context) error {
		a, err := h.currentAccount(c)
		if err != nil {
			return err
		}
		if a == nil {
			if h.web.CookieValue(c, web.CookieAccount) != "" {
				h.web.ClearCookie(c, web.CookieAccount)
			}
			ret := safeReturn(c.Request().URL.Path)
			if m := c.Request().Method; m == http.MethodGet || m == http.MethodHead {
				return h.accountRP().start(c, rpFlow{Return: ret})
			}
			return c.Redirect(http.StatusSeeOther, ret)
		}
		h.web.SetAccountLanguage(c, a.user.Language)
		return fn(c, a)
	}
}

// fresh: the identity was reconfirmed within cfg.Reconfirm (5 minutes).
func (h *Handler) fresh(a *account) bool {
	r, now := a.s.ReconfirmedAt, h.now()
	return !r.IsZero() && !r.After(now) && now.Sub(r) <= h.cfg.Reconfirm
}

// startReconfirm sends the browser to reconfirm its identity: a new
// authorization request of the account client asking for a new password
// sign-in and a fresh second factor, in the account pages' language. ret
// is where to come back.
func (h *Handler) startReconfirm(c echo.Context, a *account, ret string) error {
	return h.accountRP().start(c, rpFlow{Return: safeReturn(ret), Reconfirm: true},
		oauth2.SetAuthURLParam("prompt", "login"),
		oauth2.SetAuthURLParam("acr_values", flow.ACRMFAFresh),
		oauth2.SetAuthURLParam("login_hint", a.user.Email),
		oauth2.SetAuthURLParam("ui_locales", h.web.Lang(c)))
}

type reconfirmData struct {
	Nav    string
	Return string
	For    time.Duration // how long a reconfirmation lasts
}

// needReconfirm answers a change posted after the reconfirmation went
// stale: nothing is applied; the page offers to confirm and come back.
func (h *Handler) needReconfirm(c echo.Context, ret string) error {
	return h.render(c, http.StatusForbidden, "account_reconfirm", web.Page{Title: i18n.M("account.reconfirm.title"),
		Data: reconfirmData{Nav: "security", Return: safeReturn(ret), For: h.cfg.Reconfirm}})
}

// accountReconfirm is GET /account/reconfirm?return=…
func (h *Handler) accountReconfirm(c echo.Context, a *account) error {
	return h.startReconfirm(c, a, c.QueryParam("return"))
}

// accountCallback is the account client's redirect URI.
func (h *Handler) accountCallback(c echo.Context) error {
	res, err := h.accountRP().finish(c)
	if err != nil {
		return err
	}
	now := h.now()
	cl := res.Claims
	if cl.Subject == "" || cl.SID == "" {
		return web.BadRequest(i18n.M("account.signin_incomplete"), errors.New("id token without sub or sid"))
	}
	// The OP finished the sign-in in this browser: its session is ours.
	sess, err := h.web.CurrentSession(c, h.store)
	if err != nil {
		return err
	}
	if sess.ID != cl.SID || sess.UserID != cl.Subject {
		return web.BadRequest(i18n.M("account.other_browser"),
			errors.New("account callback: sid of the id token is not this browser's session"))
	}
	ns := accountSession{Sub: cl.Subject, SID: cl.SID, AuthTime: time.Unix(cl.AuthTime, 0).UTC(), Expires: now.Add(accountSessionMax)}
	prior, hadPrior := h.readAccountCookie(c)
	if hadPrior && prior.Sub == cl.Subject && !now.After(prior.Expires) {
		ns.Prev = slices.Clone(prior.Prev)
		if prior.SID != cl.SID && !slices.Contains(ns.Prev, prior.SID) {
			ns.Prev = append(ns.Prev, prior.SID)
		}
		if len(ns.Prev) > maxPrevSIDs {
			ns.Prev = ns.Prev[len(ns.Prev)-maxPrevSIDs:]
		}
	}
	if res.Flow.Reconfirm {
		// A reconfirmation counts only if this very sign-in asked for the
		// password and a second factor (acr mfa:fresh, amr pwd), for the
		// same person, and authenticated after we asked for it (auth_time
		// is the password's time, in whole seconds).
		authAt := time.Unix(cl.AuthTime, 0)
		ok := cl.ACR == flow.ACRMFAFresh && cl.hasAMR(flow.AMRPassword) && cl.AuthTime > 0 &&
			!authAt.Before(res.Flow.Started.Truncate(time.Second)) && !authAt.After(now.Add(time.Second)) &&
			(!hadPrior || prior.Sub == cl.Subject)
		if ok {
			// A privilege change: a new browser handle, before the account
			// session is sealed to it below.
			h.web.RotateBrowser(c)
			ns.ReconfirmedAt = now
			h.audit(c, storage.AuditEvent{UserID: cl.Subject, Email: cl.Email, ClientID: ClientID, Event: "account.reconfirmed"})
		} else {
			h.audit(c, storage.AuditEvent{UserID: cl.Subject, Email: cl.Email, ClientID: ClientID, Event: "account.reconfirm_failed",
				Reason: "acr " + cl.ACR + ", amr " + strings.Join(cl.AMR, " ")})
		}
	}
	if err := h.web.SetSealed(c, web.CookieAccount, ns, 0); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, safeReturn(res.Flow.Return))
}

// accountHome is GET /account.
func (h *Handler) accountHome(c echo.Context) error {
	return c.Redirect(http.StatusSeeOther, "/account/security")
}

// --- after a change ---

// revokeOthers ends the user's grants for cause (a password or 2-step
// change, or "sign out everywhere else") as storage.RevokeCause's table
// says, keeping this browser: its session, the products signed in
// through it (and through the sessions of this browser a reconfirmation
// replaced), and, for "sign out everywhere else", its trust. change, when
// set, changes the user row in the same transaction, and so does the
// mandatory notification of notice (the words of the change) go to the
// outbox: it is sent if and only if the change stands.
func (h *Handler) revokeOthers(c echo.Context, a *account, cause storage.RevokeCause, change func(*storage.User) error, notice i18n.Msg) error {
	devs, err := h.store.ListTrustedDevices(c.Request().Context(), a.user.ID)
	if err != nil {
		return err
	}
	keep := storage.Keep{SessionIDs: append([]string{a.sess.ID}, a.s.Prev...), DeviceID: h.thisDevice(c, devs)}
	if _, err = h.creds.RevokeAndNotify(c.Request().Context(), a.user, storage.Revocation{Cause: cause, Keep: keep, User: change}, notice, h.web.From(c)); err != nil {
		return err
	}
	// A privilege change: the browser gets a new handle, the account
	// session follows it (a bound cookie), forms made before it die.
	h.web.RotateBrowser(c)
	return nil
}

// thisDevice is the id of this browser's trusted-device record among devs
// ("" if none).
func (h *Handler) thisDevice(c echo.Context, devs []storage.TrustedDevice) string {
	mac := h.web.DeviceCookieMAC(c)
	if mac == nil {
		return ""
	}
	for _, d := range devs {
		if web.Equal(d.TokenHash, mac) {
			return d.ID
		}
	}
	return ""
}

// doneURL is where a change redirects: the page with a fixed message key
// (never free text from the query string) and whether the notice mail
// failed.
func doneURL(path, key string, mailed bool) string {
	u := path + "?done=" + key
	if !mailed {
		u += "&mail=failed"
	}
	return u
}

// msgMailFailed says a change's notification mail could not be sent.
var msgMailFailed = i18n.M("account.mail_failed")

// doneMessages are the confirmations a page shows after a change.
var doneMessages = map[string]i18n.Msg{
	"totp-on":         i18n.M("account.done.totp_on"),
	"totp-updated":    i18n.M("account.done.totp_updated"),
	"totp-off":        i18n.M("account.done.totp_off"),
	"backup":          i18n.M("account.done.backup"),
	"password":        i18n.M("account.done.password"),
	"privacy":         i18n.M("account.done.privacy"),
	"language":        i18n.M("account.done.language"),
	"passkey-added":   i18n.M("account.done.passkey_added"),
	"passkey-removed": i18n.M("account.done.passkey_removed"),
	"device":          i18n.M("account.done.device"),
	"session":         i18n.M("account.done.session"),
	"product":         i18n.M("account.done.product"),
	"others":          i18n.M("account.done.others"),
}

// doneNotice turns ?done= and ?mail= into the page's notice and error.
func doneNotice(c echo.Context) (notice, errMsg i18n.Msg) {
	notice = doneMessages[c.QueryParam("done")]
	if !notice.IsZero() && c.QueryParam("mail") == "failed" {
		errMsg = msgMailFailed
	}
	return notice, errMsg
}
