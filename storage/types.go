package storage

import (
	"errors"
	"time"
)

// The two sentinel errors callers may test with errors.Is. Every gorm or
// driver error is translated into one of these (or wrapped as an opaque
// internal error) before it leaves the package.
var (
	// ErrNotFound: no row matches (or it expired where the method says so).
	ErrNotFound = errors.New("storage: not found")
	// ErrConflict: a uniqueness rule or a compare-and-set precondition
	// failed (duplicate email, code already redeemed, refresh token
	// already rotated, TOTP step already used, …).
	ErrConflict = errors.New("storage: conflict")
)

// Secrets never reach this package in the clear: callers pass HMAC digests
// (…Hash fields, []byte) and AES-GCM ciphertexts (…Sealed fields). The
// storage layer only persists and compares bytes.

// User is a person who signs in.
type User struct {
	ID            string
	Email         string // as typed; unique case-insensitively
	EmailVerified bool
	Name          string
	Region        string // e.g. "EU", "APAC"; "" means the default region
	// PasswordHash is a PHC string ("$argon2id$v=19$m=19456,t=2,p=1$…").
	// Empty: no password (SSO user, or an admin-created user who has not
	// set one yet).
	PasswordHash string
	Disabled     bool
	// OrgID is set for users owned by an organisation (SSO users).
	OrgID string
	// NeedsBackupCode: show a first backup code at the next successful
	// sign-in (set at creation, cleared when shown).
	NeedsBackupCode bool

	PrivacyProductImprovement bool
	PrivacyPersonalisedOffers bool
	PrivacyUpdatedAt          time.Time

	PasswordChangedAt time.Time
	CreatedAt         time.Time
	UpdatedAt         time.Time

	// Language is the language the user chose for pages and mails (a
	// BCP 47 tag of login/i18n, e.g. "de"); "" lets the browser decide.
	// Captured at sign-up from the browser, changed on the account pages.
	Language string
	// TimeZone is the IANA time zone mails and account pages show times
	// in (e.g. "Europe/Berlin"); "" is UTC.
	TimeZone string
}

// ApplicationType of a client (OIDC Registration §2).
const (
	AppTypeWeb       = "web"
	AppTypeNative    = "native"
	AppTypeUserAgent = "user-agent"
)

// Access token formats.
const (
	TokenFormatOpaque = "opaque"
	TokenFormatJWT    = "jwt"
)

// Client is a relying party.
type Client struct {
	ID   string
	Name string
	// SecretHash is the HMAC of the client secret; empty for public clients.
	SecretHash             []byte
	Public                 bool
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	GrantTypes             []string // OAuth names: authorization_code, refresh_token, …
	AppType                string   // AppTypeWeb, AppTypeNative, AppTypeUserAgent
	AccessTokenFormat      string   // TokenFormatOpaque or TokenFormatJWT
	AccessTokenLifetime    time.Duration
	IDTokenLifetime        time.Duration
	RefreshTokenLifetime   time.Duration // absolute cap of a refresh family; 0 = none
	DefaultACR             string        // required acr when the request names none
	// AdminAccess grants the admin API to the client's client_credentials
	// tokens: AdminRead, AdminFull or "" (none).
	AdminAccess string
	// JWKS is an inline JWK Set (JSON) of the client's public keys, and
	// JWKSURI where to fetch it: either makes private_key_jwt available
	// (RFC 7523 §2.2, OIDC Core §9).
	JWKS    string
	JWKSURI string
	// Scopes are what the client_credentials grant may give this client
	// (empty: none beyond the default).
	Scopes []string
	// BackchannelLogoutURI receives logout tokens when a session that
	// gave this client tokens ends (OIDC Back-Channel Logout 1.0 §2.2);
	// BackchannelLogoutSessionRequired asks for sid in them.
	BackchannelLogoutURI             string
	BackchannelLogoutSessionRequired bool
	// ThirdParty clients show a consent page (first-party ones never do).
	ThirdParty bool
	// RequirePAR: authorization requests only through /par (RFC 9126 §6).
	RequirePAR bool
	// DPoPBound: every access token must be DPoP-bound (RFC 9449 §5.2).
	DPoPBound bool
	// IDTokenSigningAlg is the client's registered
	// id_token_signed_response_alg (OIDC Dynamic Client Registration §2):
	// the JWS algorithm of its ID tokens and logout tokens; "" for none
	// registered (the provider's default, keys.algorithm).
	IDTokenSigningAlg string
	// LogoURI is the client's logo, shown with its name on the sign-in
	// pages ("to continue to …"): an http(s) URL; "" for none.
	LogoURI string
	// Source says who manages the row: "config" (synced from the config
	// file), "cli", or "builtin" (the demo and account clients).
	Source    string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Admin API access levels (Client.AdminAccess).
const (
	AdminRead = "read"
	AdminFull = "full"
)

// AuthRequest is one /authorize request and the progress of its sign-in.
type AuthRequest struct {
	ID                  string
	ClientID            string
	RedirectURI         string
	Scopes              []string
	State               string
	Nonce               string
	ResponseType        string
	ResponseMode        string
	CodeChallenge       string
	CodeChallengeMethod string
	Prompt              []string
	MaxAge              *int64 // seconds; nil when absent
	ACRValues           []string
	LoginHint           string
	IDTokenHintSubject  string
	UILocales           []string
	CreatedAt           time.Time
	ExpiresAt           time.Time

	// BrowserHash binds the sign-in to the browser that started it (HMAC of
	// a cookie handle); set on the first visit of the login UI.
	BrowserHash []byte

	// Progress, written by the login steps.
	UserID             string
	PasswordAt         time.Time
	SecondFactorAt     time.Time
	SecondFactorMethod string // "email", "totp", "backup", "passkey"
	FederatedAt        time.Time
	UpstreamAMR        []string
	BackupCodeShown    bool
	RememberChosen     bool // the trust/stay-signed-in question was answered
	StaySignedIn       bool // the user chose "Stay signed in" (after a TOTP code)
	// BackupCodeSealed is a new backup code waiting to be shown once
	// (AES-GCM sealed; cleared when the user confirms they saved it).
	BackupCodeSealed []byte
	UpstreamAuthTime time.Time
	// PasskeyAt is when a passkey was verified in this sign-in (as the
	// second step, or alone for a passwordless sign-in), with what the
	// authenticator reported: user verification (UV flag) and whether
	// the passkey may be synced to other devices (BE flag).
	PasskeyAt             time.Time
	PasskeyUserVerified   bool
	PasskeyBackupEligible bool

	// Outcome, written when the login UI finishes.
	Done      bool
	AMR       []string
	ACR       string
	AuthTime  time.Time
	SessionID string

	// Authorization code (digest), set by the OP at the callback.
	CodeHash      []byte
	CodeExpiresAt time.Time
	CodeUsedAt    time.Time

	// ConsentAt: the user answered a third-party consent page for this
	// request (prompt=consent asks once per request).
	ConsentAt time.Time
}

// Session is a browser session (the "sid").
type Session struct {
	ID     string
	UserID string
	// TokenHash is the HMAC of the session cookie value.
	TokenHash      []byte
	CreatedAt      time.Time
	LastSeenAt     time.Time
	AuthTime       time.Time // last password (or upstream) authentication
	SecondFactorAt time.Time // last second factor presented in this session
	AMR            []string  // methods of the authentication at AuthTime
	Federated      bool      // signed in through an organisation's IdP
	StaySignedIn   bool      // idle limit is policy.stay_signed_in, not session_idle
	UserAgent      string
	IP             string
}

// TrustedDevice is "Trust this device": this browser skips the email code
// for this user until ExpiresAt.
type TrustedDevice struct {
	ID        string
	UserID    string
	TokenHash []byte // HMAC of the id.secret cookie value
	CreatedAt time.Time
	ExpiresAt time.Time
	// LastSecondFactorAt: the last second factor this user presented in
	// this browser (for the re-verification rule).
	LastSecondFactorAt time.Time
	LastUsedAt         time.Time
	UserAgent          string
	IP                 string
}

// EmailCode is a one-time code mailed to the user.
type EmailCode struct {
	ID     string
	UserID string
	// Purpose and ContextID scope the code: e.g. ("signin", authRequestID),
	// ("reconfirm", sessionID), ("signup", authRequestID), ("reset", flowID).
	Purpose     string
	ContextID   string
	BrowserHash []byte
	CodeHash    []byte
	CreatedAt   time.Time
	ExpiresAt   time.Time
	Attempts    int
	// DeadAt is set when the code is used, superseded, or exhausted.
	DeadAt time.Time
	// Budget names the send budget the code counts against ("signin",
	// "reconfirm", "reset", "signup": IssueEmailCode's CodeRule.Budget).
	Budget string
	// MailState is how its mail is doing: MailQueued, MailRetrying,
	// MailSent, MailFailed (the code is dead then), MailSuperseded (a
	// newer code replaced it before its mail left) or MailVoid (no mail:
	// a stand-in's code that must look like any other).
	MailState string
}

// Mail states of an email code (EmailCode.MailState).
const (
	MailQueued     = ""
	MailRetrying   = "retrying"
	MailSent       = "sent"
	MailFailed     = "failed"
	MailSuperseded = "superseded"
	MailVoid       = "void"
)

// CodeRule is the caller's rule for issuing a code (IssueEmailCode).
type CodeRule struct {
	// Budget: codes of one user (or stand-in) and budget count together;
	// at most Max in any Window. A code whose mail failed or was
	// superseded before it left does not count.
	Budget string
	Max    int
	Window time.Duration
	// Gap: at least this long between two codes of one scope (user,
	// purpose, context), counted from the last code whose mail is queued
	// or sent (not failed or being retried).
	Gap time.Duration
}

// CodeIssue is what IssueEmailCode did.
type CodeIssue struct {
	Code EmailCode // the new code (zero when refused)
	// Refused is "" (issued), RefusedGap or RefusedBudget; RetryAt is the
	// earliest instant the same call can succeed.
	Refused string
	RetryAt time.Time
}

// Refusals of IssueEmailCode.
const (
	RefusedGap    = "gap"
	RefusedBudget = "budget"
)

// OutboxMessage is one mail waiting in, or done with, the outbox. The
// message itself is Sealed (AES-GCM under the keyring, by the caller) and
// dropped once the mail is sent, has failed or is no longer wanted.
type OutboxMessage struct {
	ID          string // NewSortableID: claims take the oldest first
	Kind        string // "code", "notice", "signup-exists", …
	Purpose     string // in words, for operators (a code's purpose, a notice's change)
	Recipient   string
	UserID      string // the account it concerns, if any (audit)
	EmailCodeID string // the code a code mail carries
	Sealed      []byte
	State       string // OutboxPending, OutboxSending, OutboxSent, OutboxFailed, OutboxSuperseded, OutboxVoid
	Attempts    int
	CreatedAt   time.Time
	NextAt      time.Time // the next attempt (pending)
	LeaseUntil  time.Time // a claim holds until then (sending)
	GiveUpAt    time.Time // no attempt after this: failed
	DoneAt      time.Time
	Claim       string // the current claim's token
	LastError   string // the last failure, for operators (no secrets)
}

// Outbox states.
const (
	OutboxPending    = "pending"
	OutboxSending    = "sending"
	OutboxSent       = "sent"
	OutboxFailed     = "failed"
	OutboxSuperseded = "superseded"
	OutboxVoid       = "void"
)

// OutboxResult is how an attempt ended (FinishOutbox).
type OutboxResult struct {
	Sent  bool
	Retry time.Time // not sent: try again then; zero: give up (failed)
	Error string    // why not sent
	At    time.Time
}

// OutboxFilter selects messages to list.
type OutboxFilter struct {
	States []string // none: every state
	Limit  int      // default 100, newest first
}

// TOTP credential states.
const (
	TOTPPending = "pending" // shown as a QR code, not confirmed yet
	TOTPActive  = "active"
)

// TOTPCredential is an authenticator-app seed.
type TOTPCredential struct {
	ID          string
	UserID      string
	SeedSealed  []byte // AES-GCM ciphertext of the seed
	Status      string // TOTPPending or TOTPActive
	LastStep    int64  // last accepted RFC 6238 time step; replay guard
	CreatedAt   time.Time
	ConfirmedAt time.Time
}

// BackupCode is the one active backup code of a user.
type BackupCode struct {
	UserID    string
	CodeHash  []byte
	CreatedAt time.Time
}

// Passkey is a WebAuthn credential of a user (a passkey or security key).
// Nothing in it is secret: the private key never leaves the authenticator.
type Passkey struct {
	ID     string
	UserID string
	// CredentialID is the authenticator's credential id (unique).
	CredentialID []byte
	// UserHandle is the WebAuthn user.id the credential was made for: a
	// random value per user, never the user id or the email.
	UserHandle        []byte
	PublicKey         []byte // COSE_Key
	AttestationType   string
	AttestationFormat string
	Transports        []string
	AAGUID            []byte
	Attachment        string // "platform", "cross-platform" or ""
	// SignCount is the last signature counter seen (0: the authenticator
	// keeps none).
	SignCount      uint32
	UserVerified   bool // the registration verified the user
	BackupEligible bool // may be synced to other devices (BE flag, fixed)
	BackupState    bool // is synced, as last reported (BS flag)
	Name           string
	CreatedAt      time.Time
	LastUsedAt     time.Time
}

// PasskeyUse is what a verified assertion reports, for UsePasskey.
type PasskeyUse struct {
	SignCount   uint32
	BackupState bool
	At          time.Time
}

// PasskeyChallenge is one WebAuthn ceremony in flight: single use, bound
// to what it is for (Purpose, ContextID: a sign-in or an account session)
// and to the browser that asked for it, like an email code.
type PasskeyChallenge struct {
	ID string
	// ChallengeHash is the HMAC of the challenge the browser signs.
	ChallengeHash []byte
	Purpose       string
	ContextID     string
	UserID        string // "" for a passwordless sign-in (any user's passkey)
	BrowserHash   []byte
	// Session is the ceremony's state (the library's session data, JSON,
	// without the challenge itself).
	Session   []byte
	CreatedAt time.Time
	ExpiresAt time.Time
	// UsedAt is set when the challenge is taken or superseded.
	UsedAt time.Time
}

// RefreshToken is one link of a rotating refresh-token family.
type RefreshToken struct {
	ID              string
	TokenHash       []byte
	FamilyID        string
	ClientID        string
	UserID          string
	SessionID       string
	Scopes          []string // current (possibly narrowed) scopes
	GrantedScopes   []string // what the user granted; a refresh may widen back to these
	Audience        []string
	AMR             []string
	ACR             string
	AuthTime        time.Time
	SecondFactorAt  time.Time // second factor behind the grant (re-verification)
	CreatedAt       time.Time
	FamilyCreatedAt time.Time
	LastUsedAt      time.Time // of the family: copied forward on rotation
	ExpiresAt       time.Time // absolute cap of the family; zero = none
	UsedAt          time.Time // set when rotated; a second use is reuse
	RevokedAt       time.Time
	// JKT binds the family to a DPoP key (RFC 9449 §5: public clients):
	// the JWK SHA-256 thumbprint; "" for unbound tokens.
	JKT string
}

// AccessToken is an opaque access token (JWT access tokens are not stored).
type AccessToken struct {
	ID             string
	ClientID       string
	UserID         string // subject; the client id for client_credentials
	RefreshTokenID string
	FamilyID       string
	SessionID      string
	Scopes         []string
	Audience       []string
	CreatedAt      time.Time
	ExpiresAt      time.Time
	RevokedAt      time.Time
	// JKT is the DPoP key the token is bound to (RFC 9449 §6), "" for a
	// bearer token.
	JKT string
}

// SigningKey is a JWS signing key, private part sealed.
type SigningKey struct {
	ID            string // kid
	Algorithm     string // RS256, ES256, EdDSA
	PrivateSealed []byte // AES-GCM ciphertext of the private key (PKCS#8 DER)
	PublicJWK     []byte // JSON of the public JWK
	CreatedAt     time.Time
	// NotBefore: published in JWKS from CreatedAt, used for signing from NotBefore.
	NotBefore time.Time
	// RetireAt: no longer used for signing after this.
	RetireAt time.Time
	// ExpiresAt: removed from JWKS after this (tokens signed by it expired).
	ExpiresAt time.Time
}

// Device authorization states (RFC 8628).
const (
	DevicePending  = "pending"
	DeviceApproved = "approved"
	DeviceDenied   = "denied"
	DeviceConsumed = "consumed"
)

// DeviceAuthorization is one RFC 8628 device authorization.
type DeviceAuthorization struct {
	ID             string
	DeviceCodeHash []byte
	// UserCodeHash is the HMAC of the user code ("XXXX-XXXX"), unique
	// among live rows; UserCodeHalf the HMAC of its first half, which
	// brings wrong guesses that share it home to this row (RFC 8628 §5.1).
	UserCodeHash []byte
	UserCodeHalf []byte
	WrongGuesses int
	ClientID     string
	Scopes       []string
	CreatedAt    time.Time
	ExpiresAt    time.Time
	State        string
	UserID       string
	AMR          []string
	ACR          string
	AuthTime     time.Time
	SessionID    string
	LastPollAt   time.Time
}

// AuditEvent is one line of the audit trail.
type AuditEvent struct {
	ID        int64
	At        time.Time
	UserID    string
	Email     string
	Event     string // e.g. "signin.success", "code.sent", "totp.enabled"
	ClientID  string
	IP        string
	UserAgent string
	Reason    string
	Details   map[string]string
}

// EventDelivery is one audit event waiting for (or being) delivered to
// the security-event webhook.
type EventDelivery struct {
	ID        int64
	Event     AuditEvent
	CreatedAt time.Time
	Attempts  int // including the current one, once claimed
}

// KnownBrowser records that a browser (the digest of its device cookie)
// has signed in as a user: it is not delayed by failures that came from
// elsewhere. Lighter than a TrustedDevice, which skips the second step.
type KnownBrowser struct {
	UserID    string
	TokenHash []byte
	FirstSeen time.Time // the first sign-in (set by the store)
	SeenAt    time.Time // the latest sign-in
	ExpiresAt time.Time
}

// Throttle counts failures for one key ("pwd:acct:<id>", "pwd:ip:<ip>", …).
type Throttle struct {
	Key           string
	Failures      int
	LastFailureAt time.Time
	BlockedUntil  time.Time
}

// ActionToken is a single-use link token (set password, …).
type ActionToken struct {
	ID        string
	TokenHash []byte
	UserID    string
	Purpose   string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time
}

// LogoutRequest is a validated end-session request waiting for our /logout
// page (which can clear the browser cookie; the OP's storage cannot).
type LogoutRequest struct {
	ID          string
	UserID      string
	ClientID    string
	RedirectURI string
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// Organization owns email domains and one upstream OpenID provider.
type Organization struct {
	ID                 string
	Name               string // unique
	Domains            []string
	Issuer             string
	ClientID           string
	ClientSecretSealed []byte
	Scopes             []string
	ClaimEmail         string
	ClaimName          string
	ClaimGroups        string
	TrustUpstreamMFA   bool
	JITProvisioning    bool
	Source             string // "config" or "cli"
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

// FederatedIdentity links (organisation, upstream subject) to a user.
type FederatedIdentity struct {
	OrgID       string
	Subject     string
	UserID      string
	CreatedAt   time.Time
	LastLoginAt time.Time
}

// UpstreamState is one round trip to an organisation's IdP.
type UpstreamState struct {
	ID             string
	StateHash      []byte
	AuthRequestID  string
	BrowserHash    []byte
	OrgID          string
	Nonce          string
	VerifierSealed []byte
	CreatedAt      time.Time
	ExpiresAt      time.Time
	UsedAt         time.Time
}

// PushedRequest is a pushed authorization request (RFC 9126): the
// parameters a client posted to /par, redeemed once through its
// request_uri (stored as an HMAC).
type PushedRequest struct {
	ID             string
	RequestURIHash []byte
	ClientID       string
	Params         map[string]string
	CreatedAt      time.Time
	ExpiresAt      time.Time
	UsedAt         time.Time
}

// BackchannelLogout is one queued logout token delivery: client ClientID
// is told that session SessionID of UserID ended.
type BackchannelLogout struct {
	ID        string // also the logout token's jti: a redelivery is recognisable
	ClientID  string
	UserID    string
	SessionID string
	Cause     string // why the session ended ("signout", "password_changed", …)
	CreatedAt time.Time
	// NextAttemptAt: not before this; Attempts so far.
	NextAttemptAt time.Time
	Attempts      int
	// ClaimToken identifies the claim of the worker delivering it now.
	ClaimToken   string
	ClaimedUntil time.Time
	DeliveredAt  time.Time
	FailedAt     time.Time // given up
	LastError    string
}

// BackchannelOutcome is what a worker reports for a claimed delivery.
type BackchannelOutcome struct {
	Delivered bool
	// Otherwise: the error, and either the next attempt or (GiveUp) none.
	Error         string
	NextAttemptAt time.Time
	GiveUp        bool
}

// Consent is what a user allowed a third-party client (SPEC 8).
type Consent struct {
	UserID    string
	ClientID  string
	Scopes    []string
	CreatedAt time.Time
	UpdatedAt time.Time
}
