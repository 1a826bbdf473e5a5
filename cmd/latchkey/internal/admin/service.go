package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/latchkey/latchkey/config"
	"github.com/latchkey/latchkey/login/factor"
	"github.com/latchkey/latchkey/login/i18n"
	"github.com/latchkey/latchkey/login/mail"
	"github.com/latchkey/latchkey/login/theme"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
)

// Store is what the administrative actions need (*storage.Store).
type Store interface {
	GetUser(ctx context.Context, id string) (storage.User, error)
	GetUserByEmail(ctx context.Context, email string) (storage.User, error)
	CreateUser(ctx context.Context, u storage.User) (storage.User, error)
	UpdateUser(ctx context.Context, id string, fn func(*storage.User) error) (storage.User, error)
	SearchUsers(ctx context.Context, q storage.UserQuery) ([]storage.User, error)
	RevokeUserGrants(ctx context.Context, userID string, r storage.Revocation, now time.Time) (storage.Revoked, error)
	EnqueueBackchannelLogouts(ctx context.Context, userID string, sessionIDs []string, cause string, now time.Time) ([]storage.BackchannelLogout, error)

	ListSessions(ctx context.Context, userID string) ([]storage.Session, error)
	DeleteSession(ctx context.Context, id string) error
	RevokeRefreshTokens(ctx context.Context, f storage.TokenFilter, now time.Time) error
	ListTrustedDevices(ctx context.Context, userID string) ([]storage.TrustedDevice, error)
	DeleteTrustedDevice(ctx context.Context, userID, id string) error
	ListRefreshFamilies(ctx context.Context, userID string) ([]storage.RefreshToken, error)
	RevokeRefreshFamily(ctx context.Context, familyID string, now time.Time) error
	ListTOTP(ctx context.Context, userID string) ([]storage.TOTPCredential, error)
	GetBackupCode(ctx context.Context, userID string) (storage.BackupCode, error)
	CreateActionToken(ctx context.Context, t storage.ActionToken) (storage.ActionToken, error)

	CreateClient(ctx context.Context, c storage.Client) error
	GetClient(ctx context.Context, id string) (storage.Client, error)
	ListClients(ctx context.Context) ([]storage.Client, error)
	UpdateClient(ctx context.Context, id string, fn func(*storage.Client) error) (storage.Client, error)
	DeleteClient(ctx context.Context, id string) error

	CreateOrganization(ctx context.Context, o storage.Organization) (storage.Organization, error)
	GetOrganization(ctx context.Context, id string) (storage.Organization, error)
	GetOrganizationByName(ctx context.Context, name string) (storage.Organization, error)
	ListOrganizations(ctx context.Context) ([]storage.Organization, error)
	UpdateOrganization(ctx context.Context, id string, fn func(*storage.Organization) error) (storage.Organization, error)
	DeleteOrganization(ctx context.Context, id string) error

	CreateAuditEvent(ctx context.Context, e storage.AuditEvent) error
	ListAuditEvents(ctx context.Context, f storage.AuditFilter) ([]storage.AuditEvent, error)
	ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error)
}

var _ Store = (*storage.Store)(nil)

// Keys rotates the signing keys (the OP's): planned, or at once for a
// compromised key.
type Keys interface {
	RotateKeys(ctx context.Context) error
	RotateKeysNow(ctx context.Context) error
}

// Deps are the collaborators.
type Deps struct {
	Store   Store
	Keyring *keyring.Keyring
	// Keys rotates signing keys; nil: rotation is refused.
	Keys Keys
	// Outbox takes set-password links and notices; nil: links are
	// refused and no notice is sent.
	Outbox Outbox
	// Config is the validated configuration: the issuer, the site name,
	// and the rules a client or an organisation must meet.
	Config *config.Config
	// Theme gives the mails their logo and templates (nil: built-in).
	Theme  *theme.Theme
	Now    func() time.Time
	Logger *slog.Logger
}

// Outbox is the durable outbox (outbox.Queue): Send queues a message on
// its own (a set-password link); Row seals one for the transaction of the
// change it tells of (a storage.Revocation's Mail), and Kick wakes
// delivery once that transaction has committed.
type Outbox interface {
	mail.Mailer
	Row(m mail.Message) (storage.OutboxMessage, error)
	Kick()
}

// Service carries out administrative actions.
type Service struct {
	d Deps
}

// New builds the service.
func New(d Deps) (*Service, error) {
	if d.Store == nil || d.Keyring == nil || d.Config == nil {
		return nil, errors.New("admin: store, keyring and config are required")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	return &Service{d: d}, nil
}

// Actor is who acts: a client of the admin API, or the command line.
type Actor struct {
	ClientID  string // the API client; "" on the command line
	IP        string
	UserAgent string
}

// CommandLine is the actor of the CLI.
var CommandLine = Actor{}

func (a Actor) via() string {
	if a.ClientID == "" {
		return "command line"
	}
	return "admin API"
}

// Errors callers map onto exit codes and HTTP statuses.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
)

// InvalidError is input the action refuses; its message is for the
// operator.
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return e.Msg }

func invalid(format string, args ...any) error {
	return &InvalidError{Msg: fmt.Sprintf(format, args...)}
}

// storeErr maps storage's sentinels onto ours, with what was looked for.
func storeErr(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrNotFound):
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	case errors.Is(err, storage.ErrConflict):
		return fmt.Errorf("%s: %w", what, ErrConflict)
	}
	return err
}

// audit records an administrative action with its actor.
func (s *Service) audit(ctx context.Context, a Actor, e storage.AuditEvent) {
	e.At = s.d.Now()
	e.ClientID = a.ClientID
	e.IP, e.UserAgent = a.IP, a.UserAgent
	if e.Reason == "" {
		e.Reason = a.via()
	}
	if e.Details == nil {
		e.Details = map[string]string{}
	}
	e.Details["via"] = a.via()
	if err := s.d.Store.CreateAuditEvent(context.WithoutCancel(ctx), e); err != nil {
		s.d.Logger.ErrorContext(ctx, "audit event", "err", err, "event", e.Event)
	}
}

func (s *Service) site() mail.Site {
	return s.d.Theme.MailSite(mail.Site{Name: s.d.Config.SiteName, URL: strings.TrimSuffix(s.d.Config.Issuer, "/")})
}

// --- users ---

// User finds a user by id.
func (s *Service) User(ctx context.Context, id string) (storage.User, error) {
	u, err := s.d.Store.GetUser(ctx, id)
	return u, storeErr(err, "user "+id)
}

// UserByEmail finds a user by email.
func (s *Service) UserByEmail(ctx context.Context, email string) (storage.User, error) {
	u, err := s.d.Store.GetUserByEmail(ctx, email)
	return u, storeErr(err, "no user with email "+email)
}

// SearchUsers pages through users by email (prefix optional).
func (s *Service) SearchUsers(ctx context.Context, q storage.UserQuery) ([]storage.User, error) {
	return s.d.Store.SearchUsers(ctx, q)
}

// NewUser describes a user to create. Password "" leaves the user without
// one (they set it with a link).
type NewUser struct {
	Email, Name, Region, Password string
}

// CreateUser creates a user (a first backup code is shown at their first
// sign-in, as for every new account).
func (s *Service) CreateUser(ctx context.Context, a Actor, n NewUser) (storage.User, error) {
	// The same rule as the sign-up and sign-in forms: an address goes into
	// mail headers, pages and logs as it is.
	email, ok := factor.NormalizeEmail(n.Email)
	if !ok {
		return storage.User{}, invalid("email: %q is not a plain address such as ada@example.com", n.Email)
	}
	if err := checkText("name", n.Name, 200); err != nil {
		return storage.User{}, err
	}
	if err := checkText("region", n.Region, 32); err != nil {
		return storage.User{}, err
	}
	now := s.d.Now()
	u := storage.User{Email: email, Name: n.Name, Region: n.Region, NeedsBackupCode: true, CreatedAt: now, UpdatedAt: now}
	if n.Password != "" {
		if err := factor.CheckNewPassword(n.Password, email); err != nil {
			return storage.User{}, invalid("password refused: %v", err)
		}
		phc, err := factor.NewPasswordHasher(factor.DefaultPasswordParams).Hash(n.Password)
		if err != nil {
			return storage.User{}, err
		}
		u.PasswordHash, u.PasswordChangedAt = phc, now
	}
	u, err := s.d.Store.CreateUser(ctx, u)
	if err != nil {
		return storage.User{}, storeErr(err, "a user with email "+email+" exists already")
	}
	s.audit(ctx, a, storage.AuditEvent{UserID: u.ID, Email: u.Email, Event: "user.created"})
	return u, nil
}

// checkText refuses control characters and overlong values.
func checkText(field, v string, max int) error {
	if len(v) > max {
		return invalid("%s: at most %d bytes", field, max)
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return invalid("%s: control characters are not allowed", field)
		}
	}
	if !utf8.ValidString(v) {
		return invalid("%s: not valid UTF-8", field)
	}
	return nil
}

// UserChange is a change of a user's profile; nil fields stay.
type UserChange struct {
	Name, Region *string
}

// UpdateUser changes a user's name or region.
func (s *Service) UpdateUser(ctx context.Context, a Actor, id string, ch UserChange) (storage.User, error) {
	if ch.Name != nil {
		if err := checkText("name", *ch.Name, 200); err != nil {
			return storage.User{}, err
		}
	}
	if ch.Region != nil {
		if err := checkText("region", *ch.Region, 32); err != nil {
			return storage.User{}, err
		}
	}
	now := s.d.Now()
	u, err := s.d.Store.UpdateUser(ctx, id, func(u *storage.User) error {
		if ch.Name != nil {
			u.Name = *ch.Name
		}
		if ch.Region != nil {
			u.Region = *ch.Region
		}
		u.UpdatedAt = now
		return nil
	})
	if err != nil {
		return storage.User{}, storeErr(err, "user "+id)
	}
	details := map[string]string{}
	if ch.Name != nil {
		details["name"] = *ch.Name
	}
	if ch.Region != nil {
		details["region"] = *ch.Region
	}
	s.audit(ctx, a, storage.AuditEvent{UserID: u.ID, Email: u.Email, Event: "user.updated", Details: details})
	return u, nil
}

// revoke ends a user's grants (storage.RevokeUserGrants) and tells the
// products that got tokens in the ended sessions (back-channel logout,
// delivered from a running server's background).
func (s *Service) revoke(ctx context.Context, id string, r storage.Revocation, now time.Time) (storage.Revoked, error) {
	rv, err := s.d.Store.RevokeUserGrants(ctx, id, r, now)
	if err != nil {
		return rv, err
	}
	s.endedSessions(ctx, id, rv.SessionIDs, string(r.Cause))
	return rv, nil
}

// endedSessions queues the back-channel logouts of ended sessions; a
// failure is logged (the sessions have ended either way).
func (s *Service) endedSessions(ctx context.Context, userID string, sessionIDs []string, cause string) {
	if _, err := s.d.Store.EnqueueBackchannelLogouts(context.WithoutCancel(ctx), userID, sessionIDs, cause, s.d.Now()); err != nil {
		s.d.Logger.Error("queue back-channel logouts", "err", err, "user", userID)
	}
}

// SetDisabled disables (ending every session, grant and trusted browser
// with the change, in one transaction) or enables a user.
func (s *Service) SetDisabled(ctx context.Context, a Actor, id string, disabled bool) (storage.User, error) {
	now := s.d.Now()
	var out storage.User
	set := func(x *storage.User) error {
		x.Disabled, x.UpdatedAt = disabled, now
		out = *x
		return nil
	}
	var err error
	if disabled {
		_, err = s.revoke(ctx, id, storage.Revocation{Cause: storage.RevokeUserDisabled, User: set}, now)
	} else {
		out, err = s.d.Store.UpdateUser(ctx, id, set)
	}
	if err != nil {
		return storage.User{}, storeErr(err, "user "+id)
	}
	event := "user.enabled"
	if disabled {
		event = "user.disabled"
	}
	s.audit(ctx, a, storage.AuditEvent{UserID: out.ID, Email: out.Email, Event: event})
	return out, nil
}

// DeleteUser deletes a user and everything that is theirs
// (storage.RevokeUserDeleted); the audit trail keeps their history.
func (s *Service) DeleteUser(ctx context.Context, a Actor, id string) (storage.User, error) {
	u, err := s.d.Store.GetUser(ctx, id)
	if err != nil {
		return storage.User{}, storeErr(err, "user "+id)
	}
	if _, err := s.revoke(ctx, id, storage.Revocation{Cause: storage.RevokeUserDeleted}, s.d.Now()); err != nil {
		return storage.User{}, storeErr(err, "user "+id)
	}
	s.audit(ctx, a, storage.AuditEvent{UserID: u.ID, Email: u.Email, Event: "user.deleted"})
	return u, nil
}

// ResetSecondStep is the support desk's answer to a lost phone: the
// authenticator and the backup code are removed, sessions, product grants
// and trusted browsers end (storage.RevokeSecondStepReset), and the user
// is told by mail — the notice is written to the outbox in the reset's
// own transaction, so it goes out if and only if the reset stands. The
// next sign-in uses email codes. mailed reports whether the notice was
// queued (the reset stands without it when no outbox is configured or
// the mail cannot be made).
func (s *Service) ResetSecondStep(ctx context.Context, a Actor, id string) (u storage.User, mailed bool, err error) {
	u, err = s.d.Store.GetUser(ctx, id)
	if err != nil {
		return u, false, storeErr(err, "user "+id)
	}
	if u.OrgID != "" {
		return u, false, invalid("%s signs in through their organisation's identity provider: there is no 2-step setting here to reset", u.Email)
	}
	now := s.d.Now()
	r := storage.Revocation{Cause: storage.RevokeSecondStepReset,
		User: func(x *storage.User) error { x.UpdatedAt = now; return nil }}
	if s.d.Outbox != nil {
		notice, err := s.notice(u, i18n.M("notice.second_step_reset"), now)
		if err != nil {
			s.d.Logger.ErrorContext(ctx, "make notice mail", "err", err, "user", u.ID)
		} else {
			r.Mail = append(r.Mail, notice)
		}
	}
	if _, err := s.revoke(ctx, id, r, now); err != nil {
		return u, false, storeErr(err, "user "+id)
	}
	s.audit(ctx, a, storage.AuditEvent{UserID: u.ID, Email: u.Email, Event: "user.second_step_reset",
		Reason: "authenticator and backup code removed by an administrator (" + a.via() + ")"})
	if len(r.Mail) > 0 {
		s.d.Outbox.Kick()
		mailed = true
	}
	return u, mailed, nil
}

// mailLanguage is the language of a mail to u, who is not the one
// asking: their saved language, else the configured default.
func (s *Service) mailLanguage(u storage.User) (*i18n.Localizer, error) {
	b, err := i18n.Load()
	if err != nil {
		return nil, err
	}
	c, err := i18n.NewChooser(b, s.d.Config.DefaultLanguage, s.d.Config.PseudoLocale)
	if err != nil {
		return nil, err
	}
	return c.Localizer(i18n.Prefs{Account: u.Language}), nil
}

// notice is the mandatory notice of a security change to u, as the
// outbox row to write with the change.
func (s *Service) notice(u storage.User, change i18n.Msg, now time.Time) (storage.OutboxMessage, error) {
	l, err := s.mailLanguage(u)
	if err != nil {
		return storage.OutboxMessage{}, err
	}
	msg, err := mail.NoticeMail{Site: s.site(), To: u.Email, Name: u.Name, Change: l.Msg(change), At: now,
		Lang: l.Lang(), TimeZone: u.TimeZone}.Message()
	if err != nil {
		return storage.OutboxMessage{}, err
	}
	row, err := s.d.Outbox.Row(msg)
	if err != nil {
		return storage.OutboxMessage{}, err
	}
	row.UserID, row.Purpose = u.ID, change.ID
	return row, nil
}

// SetPasswordLinkTTL is how long a set-password link is valid.
const SetPasswordLinkTTL = 7 * 24 * time.Hour

// SetPasswordLink makes a one-time link to the set-password page.
func (s *Service) SetPasswordLink(ctx context.Context, u storage.User) (string, error) {
	tok := keyring.NewToken()
	now := s.d.Now()
	if _, err := s.d.Store.CreateActionToken(ctx, storage.ActionToken{
		TokenHash: s.d.Keyring.MACString(keyring.PurposeAction, tok), UserID: u.ID, Purpose: mail.PurposeSetPassword,
		CreatedAt: now, ExpiresAt: now.Add(SetPasswordLinkTTL),
	}); err != nil {
		return "", err
	}
	return strings.TrimSuffix(s.d.Config.Issuer, "/") + "/account/set-password?token=" + url.QueryEscape(tok), nil
}

// SendSetPasswordLink mails the user a one-time set-password link (the
// link never reaches the administrator).
func (s *Service) SendSetPasswordLink(ctx context.Context, a Actor, id string) (storage.User, error) {
	u, err := s.d.Store.GetUser(ctx, id)
	if err != nil {
		return u, storeErr(err, "user "+id)
	}
	if u.OrgID != "" {
		return u, invalid("%s signs in through their organisation's identity provider and has no password here", u.Email)
	}
	if s.d.Outbox == nil {
		return u, errors.New("no mailer configured")
	}
	link, err := s.SetPasswordLink(ctx, u)
	if err != nil {
		return u, err
	}
	l, err := s.mailLanguage(u)
	if err != nil {
		return u, err
	}
	msg, err := mail.LinkMail{Site: s.site(), To: u.Email, Name: u.Name, Link: link, ValidFor: SetPasswordLinkTTL,
		Purpose: mail.PurposeSetPassword, Lang: l.Lang()}.Message()
	if err != nil {
		return u, err
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.d.Outbox.Send(sctx, msg); err != nil {
		return u, fmt.Errorf("send the set-password mail: %w", err)
	}
	s.audit(ctx, a, storage.AuditEvent{UserID: u.ID, Email: u.Email, Event: "user.set_password_link_sent"})
	return u, nil
}

// UserDetail is what the support desk sees of a user.
type UserDetail struct {
	User            storage.User
	Password        bool
	Authenticator   bool
	BackupCode      bool
	Sessions        []storage.Session
	TrustedBrowsers []storage.TrustedDevice
	Grants          []storage.RefreshToken // the newest token of each live product grant
	LastSignIn      *storage.AuditEvent
}

// Detail gathers a user's methods, sessions, trusted browsers, product
// grants and last sign-in.
func (s *Service) Detail(ctx context.Context, u storage.User) (UserDetail, error) {
	st := s.d.Store
	d := UserDetail{User: u, Password: u.PasswordHash != ""}
	totps, err := st.ListTOTP(ctx, u.ID)
	if err != nil {
		return d, err
	}
	for _, t := range totps {
		d.Authenticator = d.Authenticator || t.Status == storage.TOTPActive
	}
	if _, err := st.GetBackupCode(ctx, u.ID); err == nil {
		d.BackupCode = true
	} else if !errors.Is(err, storage.ErrNotFound) {
		return d, err
	}
	if d.Sessions, err = st.ListSessions(ctx, u.ID); err != nil {
		return d, err
	}
	if d.TrustedBrowsers, err = st.ListTrustedDevices(ctx, u.ID); err != nil {
		return d, err
	}
	if d.Grants, err = st.ListRefreshFamilies(ctx, u.ID); err != nil {
		return d, err
	}
	last, err := st.ListAuditEvents(ctx, storage.AuditFilter{UserID: u.ID, Events: []string{"signin.success"}, Limit: 1})
	if err != nil {
		return d, err
	}
	if len(last) == 1 {
		d.LastSignIn = &last[0]
	}
	return d, nil
}

// RevokeSessions signs a user out everywhere: every session, product
// grant and trusted browser ends (storage.RevokeAdminSignOut).
func (s *Service) RevokeSessions(ctx context.Context, a Actor, id string) (int, error) {
	u, err := s.d.Store.GetUser(ctx, id)
	if err != nil {
		return 0, storeErr(err, "user "+id)
	}
	r, err := s.revoke(ctx, id, storage.Revocation{Cause: storage.RevokeAdminSignOut}, s.d.Now())
	if err != nil {
		return 0, storeErr(err, "user "+id)
	}
	s.audit(ctx, a, storage.AuditEvent{UserID: u.ID, Email: u.Email, Event: "user.signed_out_everywhere",
		Details: map[string]string{"sessions": fmt.Sprint(len(r.SessionIDs))}})
	return len(r.SessionIDs), nil
}

// RevokeSession ends one session of a user and the product grants made
// in it (as the Devices page does).
func (s *Service) RevokeSession(ctx context.Context, a Actor, userID, sessionID string) error {
	ss, err := s.d.Store.ListSessions(ctx, userID)
	if err != nil {
		return err
	}
	found := false
	for _, x := range ss {
		found = found || x.ID == sessionID
	}
	if !found {
		return fmt.Errorf("session %s of user %s: %w", sessionID, userID, ErrNotFound)
	}
	now := s.d.Now()
	if err := s.d.Store.DeleteSession(ctx, sessionID); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	if err := s.d.Store.RevokeRefreshTokens(ctx, storage.TokenFilter{UserID: userID, SessionID: sessionID}, now); err != nil {
		return err
	}
	s.endedSessions(ctx, userID, []string{sessionID}, "admin_session_revoked")
	s.audit(ctx, a, storage.AuditEvent{UserID: userID, Event: "user.session_revoked", Details: map[string]string{"sid": sessionID}})
	return nil
}

// RemoveTrustedBrowser ends the trust of one browser of a user.
func (s *Service) RemoveTrustedBrowser(ctx context.Context, a Actor, userID, id string) error {
	if err := s.d.Store.DeleteTrustedDevice(ctx, userID, id); err != nil {
		return storeErr(err, "trusted browser "+id+" of user "+userID)
	}
	s.audit(ctx, a, storage.AuditEvent{UserID: userID, Event: "user.trusted_browser_removed", Details: map[string]string{"device": id}})
	return nil
}

// RevokeGrant ends one product grant (refresh-token family) of a user.
func (s *Service) RevokeGrant(ctx context.Context, a Actor, userID, familyID string) error {
	fams, err := s.d.Store.ListRefreshFamilies(ctx, userID)
	if err != nil {
		return err
	}
	var client string
	found := false
	for _, f := range fams {
		if f.FamilyID == familyID {
			found, client = true, f.ClientID
		}
	}
	if !found {
		return fmt.Errorf("grant %s of user %s: %w", familyID, userID, ErrNotFound)
	}
	if err := s.d.Store.RevokeRefreshFamily(ctx, familyID, s.d.Now()); err != nil {
		return err
	}
	s.audit(ctx, a, storage.AuditEvent{UserID: userID, Event: "user.grant_revoked", Details: map[string]string{"grant": familyID, "client": client}})
	return nil
}

// --- audit, keys ---

// Audit lists audit events.
func (s *Service) Audit(ctx context.Context, f storage.AuditFilter) ([]storage.AuditEvent, error) {
	return s.d.Store.ListAuditEvents(ctx, f)
}

// SigningKeys lists the signing keys (public parts only are ever shown).
func (s *Service) SigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	return s.d.Store.ListSigningKeys(ctx)
}

// RotateKeys starts a new signing key: planned (published on every
// instance now, signing after the publish lead), or with emergency for a
// compromised key (signing at once, every other key withdrawn from JWKS).
func (s *Service) RotateKeys(ctx context.Context, a Actor, emergency bool) error {
	if s.d.Keys == nil {
		return errors.New("key rotation is not available here")
	}
	rotate, reason := s.d.Keys.RotateKeys, "planned"
	if emergency {
		rotate, reason = s.d.Keys.RotateKeysNow, "emergency: every other key withdrawn"
	}
	if err := rotate(ctx); err != nil {
		return err
	}
	s.audit(ctx, a, storage.AuditEvent{Event: "keys.rotated", Reason: reason})
	return nil
}
