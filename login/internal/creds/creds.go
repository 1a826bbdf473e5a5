package creds

import (
	"context"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/latchkey/latchkey/login/factor"
	"github.com/latchkey/latchkey/login/i18n"
	"github.com/latchkey/latchkey/login/mail"
	"github.com/latchkey/latchkey/login/theme"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
)

// Store is what the credential service needs from storage (*storage.Store
// satisfies it).
type Store interface {
	GetUser(ctx context.Context, id string) (storage.User, error)
	UpdateUser(ctx context.Context, id string, fn func(*storage.User) error) (storage.User, error)

	IssueEmailCode(ctx context.Context, c storage.EmailCode, m storage.OutboxMessage, r storage.CodeRule) (storage.CodeIssue, error)
	LatestEmailCode(ctx context.Context, userID, purpose, contextID string) (storage.EmailCode, error)
	TakeEmailCodeAttempt(ctx context.Context, id string, now time.Time, max int) (storage.EmailCode, error)
	UseEmailCode(ctx context.Context, id string, now time.Time) error

	CreateTOTP(ctx context.Context, c storage.TOTPCredential) (storage.TOTPCredential, error)
	ListTOTP(ctx context.Context, userID string) ([]storage.TOTPCredential, error)
	AcceptTOTPStep(ctx context.Context, id string, step int64) error
	ActivateTOTP(ctx context.Context, userID, id string, step int64, now time.Time) error
	DeleteTOTP(ctx context.Context, userID, status string) error

	GetBackupCode(ctx context.Context, userID string) (storage.BackupCode, error)
	SetBackupCode(ctx context.Context, b storage.BackupCode, show storage.BackupCodeShow) error
	ReplaceBackupCode(ctx context.Context, userID string, oldHash []byte, next storage.BackupCode, show storage.BackupCodeShow) error

	CreatePasskey(ctx context.Context, p storage.Passkey) (storage.Passkey, error)
	ListPasskeys(ctx context.Context, userID string) ([]storage.Passkey, error)
	GetPasskeyByCredentialID(ctx context.Context, credentialID []byte) (storage.Passkey, error)
	UsePasskey(ctx context.Context, id string, u storage.PasskeyUse) error
	DeletePasskey(ctx context.Context, userID, id string) error
	CreatePasskeyChallenge(ctx context.Context, c storage.PasskeyChallenge) (storage.PasskeyChallenge, error)
	TakePasskeyChallenge(ctx context.Context, challengeHash []byte, purpose, contextID string, browserHash []byte, now time.Time) (storage.PasskeyChallenge, error)

	UpdateThrottle(ctx context.Context, key string, fn func(*storage.Throttle) error) (storage.Throttle, error)
	DeleteThrottle(ctx context.Context, key string) error
	TakeThrottlesCounted(ctx context.Context, now time.Time, takes ...storage.ThrottleTake) (time.Time, int, error)
	ReturnThrottle(ctx context.Context, key string, rule storage.ThrottleRule) error

	GetKnownBrowser(ctx context.Context, userID string, tokenHash []byte) (storage.KnownBrowser, error)
	TouchKnownBrowser(ctx context.Context, k storage.KnownBrowser) (bool, error)
	GetTrustedDevice(ctx context.Context, userID string, tokenHash []byte) (storage.TrustedDevice, error)

	RevokeUserGrants(ctx context.Context, userID string, r storage.Revocation, now time.Time) (storage.Revoked, error)
	EnqueueBackchannelLogouts(ctx context.Context, userID string, sessionIDs []string, cause string, now time.Time) ([]storage.BackchannelLogout, error)
	ContinueSession(ctx context.Context, from, to string) error
	EnqueueMail(ctx context.Context, m storage.OutboxMessage) (storage.OutboxMessage, error)

	GuessDeviceUserCode(ctx context.Context, half []byte, now time.Time, max int) ([]storage.DeviceAuthorization, error)

	CreateAuditEvent(ctx context.Context, e storage.AuditEvent) error
}

var _ Store = (*storage.Store)(nil)

// Config is the part of the configuration the service needs.
type Config struct {
	Issuer       string
	SiteName     string
	EmailCodeTTL time.Duration // default 10 minutes
	TOTPIssuer   string        // label in authenticator apps (default SiteName)
	// Languages chooses the language of the mails (nil: English, the
	// default, without the pseudo-locale).
	Languages *i18n.Chooser
	// Theme gives the mails their logo and templates (nil: built-in).
	Theme *theme.Theme
}

// Metrics is what the service counts for the operator (cmd wires a
// Prometheus implementation; the login package passes it on).
type Metrics interface {
	// EmailCode counts a code mail of a purpose at a stage: "queued" (in
	// the outbox; the outbox worker counts "sent" and "failed").
	EmailCode(purpose, stage string)
	// ThrottleHit counts an attempt refused by the throttle, by the scope
	// of its first key (Limit.Scope).
	ThrottleHit(scope string)
}

type noMetrics struct{}

func (noMetrics) EmailCode(string, string) {}
func (noMetrics) ThrottleHit(string)       {}

// Kicker wakes the mail worker after something was queued (the outbox
// worker of this instance; the others find it when they next look).
type Kicker interface{ Kick() }

// Deps are the collaborators.
type Deps struct {
	Store   Store
	Keyring *keyring.Keyring
	// Outbox is woken when mail is queued; nil: the worker finds it when
	// it next looks.
	Outbox  Kicker
	Hasher  *factor.PasswordHasher
	Now     func() time.Time
	Logger  *slog.Logger
	Metrics Metrics // nil counts nothing
	// Verifier does the checks a guess pays for; nil: login/factor's (over
	// Hasher). Tests count its calls.
	Verifier Verifier
}

// Verifier does the expensive or secret-revealing checks: the argon2id of
// a password, a TOTP window, the comparison of a code's digest. Every
// call comes after the attempt was counted (Try, and for email codes
// storage.TakeEmailCodeAttempt).
type Verifier interface {
	Password(phc, password string) (ok, rehash bool, err error)
	DummyPassword(password string)
	TOTP(seed []byte, input string, now time.Time, lastStep int64) (step int64, ok bool)
	// Digest compares a stored digest with a presented one in constant time.
	Digest(stored, presented []byte) bool
}

// FactorVerifier is the production Verifier: login/factor's checks.
type FactorVerifier struct{ Hasher *factor.PasswordHasher }

// Password verifies with argon2id.
func (v FactorVerifier) Password(phc, password string) (bool, bool, error) {
	return v.Hasher.Verify(phc, password)
}

// DummyPassword spends the time of a verification.
func (v FactorVerifier) DummyPassword(password string) { v.Hasher.DummyVerify(password) }

// TOTP checks a code in the ±1 step window, after lastStep.
func (v FactorVerifier) TOTP(seed []byte, input string, now time.Time, lastStep int64) (int64, bool) {
	return factor.VerifyTOTP(seed, input, now, lastStep)
}

// Digest compares in constant time.
func (FactorVerifier) Digest(stored, presented []byte) bool { return factor.Equal(stored, presented) }

// Service verifies credentials and spends the budgets that guard them.
type Service struct {
	cfg    Config
	store  Store
	kr     *keyring.Keyring
	outbox Kicker
	hasher *factor.PasswordHasher
	verify Verifier
	now    func() time.Time
	log    *slog.Logger
	site   mail.Site
	// wa is the WebAuthn relying party (passkeys.go); nil when the issuer
	// cannot have passkeys.
	wa *webauthn.WebAuthn
	// metrics: Deps.Metrics, or a no-op.
	metrics Metrics
}

// New builds the service.
func New(cfg Config, d Deps) (*Service, error) {
	if d.Store == nil || d.Keyring == nil {
		return nil, errors.New("creds: store and keyring are required")
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
	if d.Verifier == nil {
		d.Verifier = FactorVerifier{Hasher: d.Hasher}
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
	if d.Metrics == nil {
		d.Metrics = noMetrics{}
	}
	if cfg.Languages == nil {
		b, err := i18n.Load()
		if err != nil {
			return nil, err
		}
		if cfg.Languages, err = i18n.NewChooser(b, "", false); err != nil {
			return nil, err
		}
	}
	wa, err := newWebAuthn(cfg.Issuer, cfg.SiteName)
	if err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, store: d.Store, kr: d.Keyring, outbox: d.Outbox, hasher: d.Hasher, verify: d.Verifier, now: d.Now, log: d.Logger,
		site: cfg.Theme.MailSite(mail.Site{Name: cfg.SiteName, URL: strings.TrimSuffix(cfg.Issuer, "/")}), wa: wa, metrics: d.Metrics}, nil
}

// kick wakes the mail worker, if there is one to wake.
func (s *Service) kick() {
	if s.outbox != nil {
		s.outbox.Kick()
	}
}

// EmailCodeTTL is how long an email code is valid.
func (s *Service) EmailCodeTTL() time.Duration { return s.cfg.EmailCodeTTL }

// From describes who is asking: this browser (the digest of its handle),
// its address and User-Agent, the User-Agent in words for mails, and the
// request's language preferences (a mail's language follows them, with
// the recipient's own saved language; mail.go).
type From struct {
	BrowserHash   []byte
	IP, UserAgent string
	Browser       i18n.Msg
	Langs         i18n.Prefs
}

// Audit writes an audit event with the request's address and browser;
// failures are logged, never fatal.
func (s *Service) Audit(ctx context.Context, from From, e storage.AuditEvent) {
	if e.At.IsZero() {
		e.At = s.now()
	}
	if e.IP == "" {
		e.IP = from.IP
	}
	if e.UserAgent == "" {
		e.UserAgent = from.UserAgent
	}
	if err := s.store.CreateAuditEvent(context.WithoutCancel(ctx), e); err != nil {
		s.log.Error("audit event", "err", err, "event", e.Event)
	}
}

// StandIn is a stable stand-in for an email that has no account (yet): a
// keyed digest, so it identifies the address in throttles and email codes
// without revealing it. kind keeps the uses apart ("" for the sign-in,
// "su" for a sign-up, "rs" for a password reset). Storage ids never
// contain '~', so a stand-in never equals a real user id.
func (s *Service) StandIn(kind, email string) string {
	switch kind {
	case "":
		return "~" + strings.ToLower(s.digest(email))
	case "su":
		return "~su" + s.digest("signup:"+strings.ToLower(email))
	case "rs":
		return "~rs" + s.digest("reset:"+strings.ToLower(email))
	}
	panic("creds: unknown stand-in kind " + kind)
}

// IsStandIn reports whether id is a stand-in rather than a user id.
func IsStandIn(id string) bool { return strings.HasPrefix(id, "~") }

// digest is a short keyed digest of an email-derived string.
func (s *Service) digest(v string) string {
	return hex.EncodeToString(s.kr.MACString(keyring.PurposeIdentifier, v)[:12])
}
