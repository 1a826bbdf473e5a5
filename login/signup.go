package login

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/login/factor"
	"github.com/latchkey/latchkey/login/flow"
	"github.com/latchkey/latchkey/login/i18n"
	"github.com/latchkey/latchkey/login/internal/creds"
	"github.com/latchkey/latchkey/login/internal/web"
	"github.com/latchkey/latchkey/storage"
)

// Self-service sign-up (SPEC 3b), reached from the identifier page of a
// sign-in in progress (/signup?id=<auth request>):
//
//  1. email, name, password (checked like every new password);
//  2. an email code proves the address;
//  3. only then is the account created (verified), and the pending
//     sign-in continues as if the user had just entered the password and
//     an email code: the dispatcher offers "Trust this device" and shows
//     the first backup code.
//
// No account exists before the address is proven: nobody can squat an
// address with an unverified account, and an unverified account can never
// sign in. The choices of step 1 wait in a cookie sealed with the keyring
// (the password only as its argon2id hash), bound to this browser; the code
// is bound to this browser and this flow like any email code.
//
// No enumeration: for an address that already has an account, the page
// says exactly the same ("we sent a code"), the form takes the same time
// (the password is hashed either way), and the owner gets a mail saying
// someone tried to create an account with their address — no code, so the
// code page accepts nothing. One exception, by design: an account that
// was never verified (an operator created it and nobody proved the
// address) and is older than 24 hours does not block the owner of the
// address — sign-up proceeds, and once the code proves the address the
// old account is replaced (its password, factors, sessions, trusted
// devices and tokens are removed; its id and region stay).

const (
	signupLifetime  = 30 * time.Minute
	unverifiedGrace = 24 * time.Hour
	maxNameRunes    = 100
)

// signupFlow is the content of the lk_signup cookie.
type signupFlow struct {
	Flow    string    `json:"f"` // the email code's context
	AR      string    `json:"a"` // the auth request it continues
	Email   string    `json:"m"`
	Name    string    `json:"n"`
	PHC     string    `json:"p"` // hash of the chosen password; "" when the address has an account
	SentAt  time.Time `json:"s"`
	Expires time.Time `json:"e"`
}

func (f signupFlow) exists() bool { return f.PHC == "" }

// signupSubject stands for the account-to-be in the email-code table:
// derived from the address, so the per-address send budget holds across
// sign-up attempts.
func (h *Handler) signupSubject(f signupFlow) creds.Recipient {
	return creds.Recipient{ID: h.creds.StandIn("su", f.Email), Email: f.Email, Name: f.Name}
}

type signupData struct {
	ID, Email, Name string
}

func (h *Handler) signupEnabled() error {
	if !h.cfg.SignupEnabled {
		return web.NotFound(web.MsgNotFound)
	}
	return nil
}

// signupPage is GET /signup?id=… (without id: an entry point, entry.go)
func (h *Handler) signupPage(c echo.Context) error {
	if err := h.signupEnabled(); err != nil {
		return err
	}
	if requestID(c) == "" {
		return h.enter(c, entrySignup) // opened directly: an entry point
	}
	s, err := h.loadOpen(c)
	if err != nil {
		return err
	}
	email := ""
	if e, ok := factor.NormalizeEmail(s.ar.LoginHint); ok {
		email = e
	}
	return h.renderSignup(c, http.StatusOK, i18n.Msg{}, signupData{ID: s.ar.ID, Email: email})
}

func (h *Handler) renderSignup(c echo.Context, status int, msg i18n.Msg, d signupData) error {
	return h.render(c, status, "signup", web.Page{Title: i18n.M("signup.title"), Error: msg, Data: d})
}

// signupSubmit is POST /signup.
func (h *Handler) signupSubmit(c echo.Context) error {
	if err := h.signupEnabled(); err != nil {
		return err
	}
	s, err := h.loadOpen(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	now := h.now()
	rawEmail, name, password := c.FormValue("email"), strings.TrimSpace(c.FormValue("name")), c.FormValue("password")
	d := signupData{ID: s.ar.ID, Email: web.Truncate(rawEmail, 254), Name: web.Truncate(name, 4*maxNameRunes)}
	email, ok := factor.NormalizeEmail(rawEmail)
	if !ok {
		return h.renderSignup(c, http.StatusUnprocessableEntity, i18n.M("identify.invalid_email"), d)
	}
	if msg := checkName(name); !msg.IsZero() {
		return h.renderSignup(c, http.StatusUnprocessableEntity, msg, d)
	}
	if err := factor.CheckNewPassword(password, email); err != nil {
		return h.renderSignup(c, http.StatusUnprocessableEntity, web.SignupPasswordMessage(err), d)
	}
	domain := emailDomain(email)
	if org, err := h.store.GetOrganizationByDomain(ctx, domain); err == nil {
		return h.renderSignup(c, http.StatusUnprocessableEntity, i18n.M("signup.org_domain", "Domain", domain, "Org", org.Name), d)
	} else if !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	// Every sign-up counts against the address it comes from (mail
	// bombing, mass creation); the back-off forgives after a day.
	_, wait, err := h.creds.Try(ctx, creds.SignupLimits(web.ClientIP(c))...)
	if err != nil {
		return err
	} else if wait > 0 {
		return h.renderSignup(c, http.StatusTooManyRequests, web.TooMany(wait), d)
	}

	// Hash in every case: the answer takes the same time whether or not
	// the address has an account.
	phc, err := h.creds.HashPassword(password)
	if err != nil {
		return err
	}
	existing, err := h.store.GetUserByEmail(ctx, email)
	switch {
	case errors.Is(err, storage.ErrNotFound):
	case err != nil:
		return err
	case replaceable(existing, now):
		h.log.Info("sign-up for an unverified account older than the grace period", "user", existing.ID)
	default:
		phc = "" // the "exists" path
	}
	f := signupFlow{Flow: storage.NewID(), AR: s.ar.ID, Email: email, Name: name, PHC: phc, SentAt: now, Expires: now.Add(signupLifetime)}
	var owner *storage.User
	if f.exists() {
		owner = &existing
	}
	refused, err := h.sendSignupCode(c, f, owner)
	if err != nil {
		return err
	}
	if err := h.web.SetSealed(c, web.CookieSignup, f, signupLifetime); err != nil {
		return err
	}
	if !refused.IsZero() {
		// The budget of the address's stand-in is the same whether or not
		// it has an account: saying so tells nothing, and the page must
		// not claim a code that was not sent.
		return h.renderSignupCodeRefused(c, f, refused)
	}
	return c.Redirect(http.StatusSeeOther, "/signup/code?id="+s.ar.ID)
}

// sendSignupCode queues the sign-up's code, or, for an address with an
// account (owner), the same rows with the owner's warning instead: the
// page and its timing say the same either way. It returns the refusal
// (resend gap, budget) to show, if any.
func (h *Handler) sendSignupCode(c echo.Context, f signupFlow, owner *storage.User) (i18n.Msg, error) {
	return h.creds.SendSignupCode(c.Request().Context(), h.signupSubject(f), f.Flow, owner, h.boundFrom(c))
}

// renderSignupCodeRefused is the code page when no code went out.
func (h *Handler) renderSignupCodeRefused(c echo.Context, f signupFlow, msg i18n.Msg) error {
	return h.render(c, http.StatusTooManyRequests, "signup_code", web.Page{Title: i18n.M("signup.code.title"), Error: msg,
		Data: signupCodeData{ID: f.AR, Email: f.Email, TTL: h.creds.EmailCodeTTL(), NotSent: true}})
}

// replaceable: an account nobody ever proved the address of, old enough
// that no sign-up or invitation of its own is still under way.
func replaceable(u storage.User, now time.Time) bool {
	return !u.EmailVerified && u.OrgID == "" && !u.Disabled && now.Sub(u.CreatedAt) > unverifiedGrace
}

func checkName(name string) i18n.Msg {
	switch {
	case name == "":
		return i18n.M("signup.name_missing")
	case !utf8.ValidString(name) || utf8.RuneCountInString(name) > maxNameRunes:
		return i18n.M("signup.name_too_long")
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return i18n.M("signup.name_control")
		}
	}
	return i18n.Msg{}
}

// readSignupFlow opens this browser's sign-up for the auth request id.
func (h *Handler) readSignupFlow(c echo.Context, id string) (signupFlow, bool) {
	var f signupFlow
	if err := h.web.OpenSealed(c, web.CookieSignup, &f); err != nil || f.AR != id || h.now().After(f.Expires) {
		return signupFlow{}, false
	}
	return f, true
}

type signupCodeData struct {
	ID, Email string
	TTL       time.Duration
	NotSent   bool // no code went out (refused): the page must not say one did
}

func (h *Handler) renderSignupCode(c echo.Context, f signupFlow, status int, errMsg, notice i18n.Msg) error {
	return h.render(c, status, "signup_code", web.Page{Title: i18n.M("signup.code.title"), Error: errMsg, Notice: notice,
		Data: signupCodeData{ID: f.AR, Email: f.Email, TTL: h.creds.EmailCodeTTL()}})
}

// signupStep loads the sign-up flow of a code page or code form.
func (h *Handler) signupStep(c echo.Context) (signupFlow, *signin, bool, error) {
	if err := h.signupEnabled(); err != nil {
		return signupFlow{}, nil, false, err
	}
	s, err := h.loadOpen(c)
	if err != nil {
		return signupFlow{}, nil, false, err
	}
	f, ok := h.readSignupFlow(c, s.ar.ID)
	if !ok {
		return f, s, false, c.Redirect(http.StatusSeeOther, "/signup?id="+s.ar.ID)
	}
	return f, s, true, nil
}

// signupCodePage is GET /signup/code?id=…
func (h *Handler) signupCodePage(c echo.Context) error {
	f, _, ok, err := h.signupStep(c)
	if !ok {
		return err
	}
	if status, errMsg, notice, ok := h.web.TakeFlash(c); ok {
		return h.renderSignupCode(c, f, status, errMsg, notice) // back from a POST
	}
	return h.renderSignupCode(c, f, http.StatusOK, i18n.Msg{}, i18n.Msg{})
}

// signupCodeBack ends a POST of the code page: back to its GET saying
// errMsg or notice (redirect after POST, web.SeeOther).
func (h *Handler) signupCodeBack(c echo.Context, f signupFlow, status int, errMsg, notice i18n.Msg) error {
	return h.web.SeeOther(c, "/signup/code?id="+url.QueryEscape(f.AR), status, errMsg, notice,
		func() error { return h.renderSignupCode(c, f, status, errMsg, notice) })
}

// signupCodeSend is POST /signup/code/send ("Get code by email"): the same
// answer whether or not a code was really sent.
func (h *Handler) signupCodeSend(c echo.Context) error {
	f, _, ok, err := h.signupStep(c)
	if !ok {
		return err
	}
	now := h.now()
	if gap := now.Sub(f.SentAt); gap < creds.ResendGap && gap >= 0 {
		return h.signupCodeBack(c, f, http.StatusTooManyRequests, creds.MsgJustSent(creds.ResendGap-gap), i18n.Msg{})
	}
	var owner *storage.User
	if f.exists() {
		u, err := h.store.GetUserByEmail(c.Request().Context(), f.Email)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		owner = &u // gone meanwhile: the same rows, to nobody
	}
	if refused, err := h.sendSignupCode(c, f, owner); err != nil {
		return err
	} else if !refused.IsZero() {
		return h.renderSignupCodeRefused(c, f, refused)
	}
	f.SentAt = now
	if err := h.web.SetSealed(c, web.CookieSignup, f, signupLifetime); err != nil {
		return err
	}
	return h.signupCodeBack(c, f, http.StatusOK, i18n.Msg{}, i18n.M("code.sent_new"))
}

// signupCodeSubmit is POST /signup/code: the code proves the address; the
// account is created and the sign-in continues.
func (h *Handler) signupCodeSubmit(c echo.Context) error {
	f, s, ok, err := h.signupStep(c)
	if !ok {
		return err
	}
	ctx := c.Request().Context()
	now := h.now()
	subject := h.signupSubject(f).ID
	try, wait, err := h.creds.Try(ctx, creds.CodeLimits(subject, web.ClientIP(c))...)
	if err != nil {
		return err
	} else if wait > 0 {
		return h.signupCodeBack(c, f, http.StatusTooManyRequests, web.TooMany(wait), i18n.Msg{})
	}
	valid := false
	if !f.exists() {
		if valid, err = h.creds.VerifyEmailCode(ctx, subject, creds.PurposeSignup, f.Flow, c.FormValue("code"), h.web.BrowserHash(c)); err != nil {
			return err
		}
	}
	if !valid {
		return h.signupCodeBack(c, f, http.StatusUnauthorized, msgBadCode, i18n.Msg{})
	}
	try.Succeeded(ctx)
	h.web.ClearCookie(c, web.CookieSignup)
	u, replaced, err := h.createSignedUpUser(c, f)
	if err != nil {
		return err
	}
	if _, err := h.progress(c, s, func(a *storage.AuthRequest) error {
		if a.Done {
			return web.BadRequest(i18n.M("signup.already_done"), nil)
		}
		a.UserID, a.LoginHint = u.ID, u.Email
		a.PasswordAt, a.SecondFactorAt, a.SecondFactorMethod = now, now, string(flow.MethodEmail)
		a.FederatedAt, a.UpstreamAMR, a.UpstreamAuthTime = time.Time{}, nil, time.Time{}
		a.RememberChosen, a.StaySignedIn, a.BackupCodeShown, a.BackupCodeSealed = false, false, false, nil
		return nil
	}); err != nil {
		return err
	}
	ev := storage.AuditEvent{UserID: u.ID, Email: u.Email, ClientID: s.ar.ClientID, Event: "signup"}
	if replaced {
		ev.Reason = "replaced an unverified account"
	}
	h.audit(c, ev)
	return h.toDispatcher(c, s.ar.ID)
}

// createSignedUpUser creates the proven account, or replaces an
// unverified one past its grace period.
func (h *Handler) createSignedUpUser(c echo.Context, f signupFlow) (storage.User, bool, error) {
	ctx := c.Request().Context()
	now := h.now()
	// The language the browser asks for (a supported one, or none: the
	// account then follows the browser it is used in).
	lang := h.web.Languages().MatchAccept(c.Request().Header.Get("Accept-Language"))
	u, err := h.store.CreateUser(ctx, storage.User{Email: f.Email, Name: f.Name, PasswordHash: f.PHC, EmailVerified: true,
		NeedsBackupCode: true, PasswordChangedAt: now, CreatedAt: now, UpdatedAt: now, Language: lang})
	if err == nil {
		return u, false, nil
	}
	if !errors.Is(err, storage.ErrConflict) {
		return u, false, err
	}
	taken := web.BadRequest(i18n.M("signup.taken"), errors.New("sign-up: address taken meanwhile"))
	existing, err := h.store.GetUserByEmail(ctx, f.Email)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return u, false, taken
		}
		return u, false, err
	}
	if !replaceable(existing, now) {
		return u, false, taken
	}
	// The new owner's choices, and nothing of the old, unproven account
	// (its factors, sessions, trusted devices and tokens), in one
	// transaction.
	var replaced storage.User
	if _, err := h.creds.Revoke(ctx, existing.ID, storage.Revocation{Cause: storage.RevokeAccountReplaced, User: func(x *storage.User) error {
		if !replaceable(*x, now) {
			return taken
		}
		x.Name, x.PasswordHash, x.PasswordChangedAt = f.Name, f.PHC, now
		x.EmailVerified, x.NeedsBackupCode = true, true
		x.PrivacyProductImprovement, x.PrivacyPersonalisedOffers, x.PrivacyUpdatedAt = false, false, time.Time{}
		x.CreatedAt, x.UpdatedAt = now, now
		x.Language, x.TimeZone = lang, ""
		replaced = *x
		return nil
	}}); err != nil {
		return u, false, err
	}
	return replaced, true, nil
}
