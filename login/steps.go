package login

import (
	"encoding/hex"
	"errors"
	"net/http"
	"net/mail"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/login/factor"
	"github.com/latchkey/latchkey/login/flow"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
)

// Generic failure messages: the same text whatever went wrong, so that
// nobody learns which accounts exist.
const (
	msgBadCredentials = "The email or password is incorrect."
	msgBadCode        = "That code is not right, or it has expired."
	msgDisabled       = "This account is disabled. Contact your administrator."
)

// step loads a sign-in for a step handler and checks it is at want; if
// not (back button, another tab moved on), the browser goes back to the
// dispatcher, which knows where it is.
func (h *Handler) step(c echo.Context, want flow.Step) (*signin, bool, error) {
	s, err := h.load(c, requestID(c), false)
	if err != nil {
		return nil, false, err
	}
	if s.ar.Done || s.req.Step != want {
		return s, false, h.toDispatcher(c, s.ar.ID)
	}
	return s, true, nil
}

// requestID is the auth request id a page or form is about: a form
// carries it in its body, a page in its query.
func requestID(c echo.Context) string {
	if c.Request().Method == http.MethodPost {
		return c.FormValue("id")
	}
	return c.QueryParam("id")
}

func (h *Handler) toDispatcher(c echo.Context, id string) error {
	return c.Redirect(http.StatusSeeOther, "/login?authRequestID="+url.QueryEscape(id))
}

// loadOpen loads the sign-in that a sign-up or a password reset
// continues, which must not be finished; a POST's CSRF token is checked
// first.
func (h *Handler) loadOpen(c echo.Context) (*signin, error) {
	if c.Request().Method == http.MethodPost {
		if err := h.checkCSRF(c); err != nil {
			return nil, err
		}
	}
	s, err := h.load(c, requestID(c), false)
	if err != nil {
		return nil, err
	}
	if s.ar.Done {
		return nil, errBadRequest(msgSigninDone, nil)
	}
	return s, nil
}

// --- identifier ---

type identifyData struct {
	ID, Client, Email, SessionEmail string
	Signup                          bool
}

func (h *Handler) identifyPage(c echo.Context) error {
	s, ok, err := h.step(c, flow.StepIdentify)
	if !ok {
		return err
	}
	return h.renderIdentify(c, s, http.StatusOK, "", s.ar.LoginHint)
}

func (h *Handler) renderIdentify(c echo.Context, s *signin, status int, msg, email string) error {
	d := identifyData{ID: s.ar.ID, Client: s.client.Name, Email: email, Signup: h.cfg.SignupEnabled}
	if s.session.ID != "" && s.session.UserID != "" {
		// prompt=select_account: offer the signed-in account first.
		if u, err := h.store.GetUser(c.Request().Context(), s.session.UserID); err == nil {
			d.SessionEmail = u.Email
		}
	}
	return h.render(c, status, "identify", page{Title: "Sign in", Error: msg, Data: d})
}

// identifySubmit records who is signing in. An unknown email goes on to
// the password page all the same (no user enumeration); the password step
// then fails with the generic message.
func (h *Handler) identifySubmit(c echo.Context) error {
	if err := h.checkCSRF(c); err != nil {
		return err
	}
	s, ok, err := h.step(c, flow.StepIdentify)
	if !ok {
		return err
	}
	email, valid := normalizeEmail(c.FormValue("email"))
	if !valid {
		return h.renderIdentify(c, s, http.StatusUnprocessableEntity, "Enter a valid email address.", c.FormValue("email"))
	}
	if err := h.identify(c, s, email); err != nil {
		return err
	}
	return h.advanceSignin(c, s.ar.ID)
}

// identify records who is signing in: the user of that email, or a
// stand-in for an email with no account (no enumeration).
func (h *Handler) identify(c echo.Context, s *signin, email string) error {
	ctx := c.Request().Context()
	u, err := h.store.GetUserByEmail(ctx, email)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	_, uerr := h.store.UpdateAuthRequest(ctx, s.ar.ID, func(a *storage.AuthRequest) error {
		a.LoginHint = email
		if err == nil {
			a.UserID = u.ID
		} else {
			a.UserID = unknownUser(h, email)
		}
		a.PasswordAt, a.SecondFactorAt, a.SecondFactorMethod = time.Time{}, time.Time{}, ""
		// An upstream sign-in vouches for the user it linked, nobody else.
		a.FederatedAt, a.UpstreamAuthTime, a.UpstreamAMR = time.Time{}, time.Time{}, nil
		return nil
	})
	return uerr
}

// unknownUser is a stand-in user id for an email with no account: the
// policy then asks for a password like for anyone, and the password step
// fails. It is derived from the email so it is stable, and it can never
// equal a real id (storage ids never contain '~').
func unknownUser(h *Handler, email string) string {
	return "~" + strings.ToLower(keyringHex(h, email))
}

// keyringHex is a short keyed digest of an email-derived string: a key
// that identifies an account without revealing (or enumerating) it.
func keyringHex(h *Handler, s string) string {
	return hex.EncodeToString(h.kr.MACString(keyring.PurposeIdentifier, s)[:12])
}

// restart forgets who was signing in ("Use another account").
func (h *Handler) restart(c echo.Context) error {
	if err := h.checkCSRF(c); err != nil {
		return err
	}
	s, err := h.load(c, c.FormValue("id"), false)
	if err != nil {
		return err
	}
	if s.ar.Done {
		return h.toDispatcher(c, s.ar.ID)
	}
	if _, err := h.store.UpdateAuthRequest(c.Request().Context(), s.ar.ID, func(a *storage.AuthRequest) error {
		a.UserID, a.PasswordAt, a.SecondFactorAt, a.SecondFactorMethod = "", time.Time{}, time.Time{}, ""
		a.RememberChosen, a.StaySignedIn, a.BackupCodeShown = false, false, false
		a.FederatedAt, a.UpstreamAuthTime, a.UpstreamAMR = time.Time{}, time.Time{}, nil
		a.Prompt = appendOnce(a.Prompt, "select_account")
		return nil
	}); err != nil {
		return err
	}
	return h.toDispatcher(c, s.ar.ID)
}

func appendOnce(xs []string, v string) []string {
	for _, x := range xs {
		if x == v {
			return xs
		}
	}
	return append(xs, v)
}

// normalizeEmail trims and validates an address; the comparison key is
// case-insensitive in storage.
func normalizeEmail(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 254 || strings.ContainsAny(s, " \t\r\n<>\"") {
		return "", false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || !strings.Contains(s[strings.LastIndexByte(s, '@'):], ".") {
		return "", false
	}
	return s, true
}

// --- password ---

type passwordData struct {
	ID, Email, Reasons string
}

func (h *Handler) passwordPage(c echo.Context) error {
	s, ok, err := h.step(c, flow.StepPassword)
	if !ok {
		return err
	}
	return h.renderPassword(c, s, http.StatusOK, "")
}

func (h *Handler) renderPassword(c echo.Context, s *signin, status int, msg string) error {
	email := s.ar.LoginHint
	if s.hasUser {
		email = s.user.Email
	}
	d := passwordData{ID: s.ar.ID, Email: email}
	for _, r := range s.req.Reasons {
		if r == flow.ReasonPromptLogin || r == flow.ReasonMaxAge || r == flow.ReasonIdle {
			d.Reasons = h.reasonText([]flow.Reason{r})
		}
	}
	return h.render(c, status, "password", page{Title: "Enter your password", Error: msg, Data: d})
}

func (h *Handler) passwordSubmit(c echo.Context) error {
	if err := h.checkCSRF(c); err != nil {
		return err
	}
	s, ok, err := h.step(c, flow.StepPassword)
	if !ok {
		return err
	}
	ctx := c.Request().Context()
	now := h.now()
	password := c.FormValue("password")
	email := s.ar.LoginHint
	if s.hasUser {
		email = s.user.Email
	}
	// Throttle by the typed account (known or not: no enumeration) and by
	// the client address.
	keys := []string{"pwd:acct:" + keyringHex(h, strings.ToLower(email)), "pwd:ip:" + clientIP(c)}
	if wait, err := h.throttled(c, keys, now); err != nil {
		return err
	} else if wait > 0 {
		return h.renderPassword(c, s, http.StatusTooManyRequests, tooMany(wait))
	}
	valid := false
	if s.hasUser && s.user.PasswordHash != "" && len(password) <= factor.MaxPasswordBytes {
		ok, rehash, err := h.hasher.Verify(s.user.PasswordHash, password)
		if err != nil {
			h.log.Error("stored password hash unreadable", "user", s.user.ID, "err", err)
		}
		valid = ok
		if ok && rehash {
			h.rehash(c, s.user.ID, password)
		}
	} else {
		h.hasher.DummyVerify(password) // same time as a real check
	}
	if !valid {
		h.failed(c, keys, now)
		if s.hasUser {
			h.audit(c, storage.AuditEvent{UserID: s.user.ID, Email: s.user.Email, ClientID: s.ar.ClientID, Event: "signin.failure", Reason: "wrong password"})
		}
		return h.renderPassword(c, s, http.StatusUnauthorized, msgBadCredentials)
	}
	h.succeeded(c, keys[:1])
	if s.user.Disabled {
		h.audit(c, storage.AuditEvent{UserID: s.user.ID, Email: s.user.Email, ClientID: s.ar.ClientID, Event: "signin.failure", Reason: "account disabled"})
		return h.renderPassword(c, s, http.StatusForbidden, msgDisabled)
	}
	if _, err := h.store.UpdateAuthRequest(ctx, s.ar.ID, func(a *storage.AuthRequest) error {
		a.UserID = s.user.ID
		a.PasswordAt = now
		return nil
	}); err != nil {
		return err
	}
	return h.advanceSignin(c, s.ar.ID)
}

// rehash upgrades a hash made with weaker parameters, after a successful
// sign-in (the only time we have the password).
func (h *Handler) rehash(c echo.Context, userID, password string) {
	phc, err := h.hasher.Hash(password)
	if err != nil {
		return
	}
	if _, err := h.store.UpdateUser(c.Request().Context(), userID, func(u *storage.User) error {
		u.PasswordHash = phc
		return nil
	}); err != nil {
		h.log.Warn("password rehash", "err", err)
	}
}

// --- throttling ---

// throttled returns how long the caller must wait (0: go ahead).
func (h *Handler) throttled(c echo.Context, keys []string, now time.Time) (time.Duration, error) {
	var wait time.Duration
	for _, k := range keys {
		t, err := h.store.GetThrottle(c.Request().Context(), k)
		if err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				continue
			}
			return 0, err
		}
		wait = max(wait, h.backoff.Wait(t.Failures, t.LastFailureAt, now))
	}
	return wait, nil
}

func (h *Handler) failed(c echo.Context, keys []string, now time.Time) {
	for _, k := range keys {
		if _, err := h.store.UpdateThrottle(c.Request().Context(), k, func(t *storage.Throttle) error {
			// Failures older than the longest delay are forgiven.
			if now.Sub(t.LastFailureAt) > 24*time.Hour {
				t.Failures = 0
			}
			t.Failures++
			t.LastFailureAt = now
			t.BlockedUntil = h.backoff.RetryAt(t.Failures, now)
			return nil
		}); err != nil {
			h.log.Error("throttle update", "err", err)
		}
	}
}

func (h *Handler) succeeded(c echo.Context, keys []string) {
	for _, k := range keys {
		if err := h.store.DeleteThrottle(c.Request().Context(), k); err != nil && !errors.Is(err, storage.ErrNotFound) {
			h.log.Error("throttle reset", "err", err)
		}
	}
}

func tooMany(wait time.Duration) string {
	wait = wait.Round(time.Second)
	if wait < time.Second {
		wait = time.Second
	}
	return "Too many attempts. Try again in " + flow.HumanDuration(wait) + "."
}

// msgJustSent answers a resend asked for within resendGap of the last code.
func msgJustSent(wait time.Duration) string {
	return "We just sent a code. Wait " + flow.HumanDuration(wait) + " before asking for another."
}
