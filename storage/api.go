package storage

// This file is the contract of *Store: every method other packages may call,
// with its semantics. Bodies live in the per-aggregate files (users.go,
// clients.go, …). Times passed in are authoritative ("now" comes from the
// caller's clock); the store never reads the wall clock for policy.
//
// Conventions that hold for every method:
//   - Errors: ErrNotFound and ErrConflict as documented; any other error is
//     opaque (a database failure or a call the contract forbids, such as an
//     empty id where the caller must choose it).
//   - Text: a string that is not valid UTF-8 or holds a NUL byte is never
//     sent to the database (text.go). Every method that reads or deletes by
//     such a value answers ErrNotFound; every method that would write one
//     answers ErrInvalidText and writes nothing. Both dialects alike.
//   - IDs: CreateX methods that return the created value generate the ID
//     with NewID when it is empty and return what was stored. Methods that
//     return only an error (CreateClient, CreateAuthRequest,
//     CreateAccessToken) need the caller's ID.
//   - Stored values come back normalised: instants in UTC truncated to the
//     millisecond (the zero time stays zero); nil and empty lists, maps and
//     byte strings all come back nil.
//   - Expiry comparisons are inclusive: a row expiring at T is still valid
//     at now == T and expired from T+1ms.
//   - UpdateX(ctx, id, fn): fn runs inside the transaction, on the locked
//     row. It may read through the Store but must not write through it (on
//     SQLite all writes share one connection, which the transaction
//     holds). An error from fn aborts and is returned unchanged. Fields
//     that identify the row (ID, and where noted the owner) are restored
//     after fn. ErrNotFound if the row does not exist.
//   - DeleteX(ctx, id) of one row: ErrNotFound if it does not exist. Bulk
//     and keyed deletes (DeleteTOTP, DeleteBackupCode, DeleteThrottle)
//     succeed on nothing. Ending all of a user's sessions, tokens and
//     trusted devices is RevokeUserGrants' alone.

import (
	"context"
	"database/sql"
	"time"
)

// ListOptions pages a list. Zero Limit means the method's default (100).
type ListOptions struct {
	Limit int
	// Offset is the number of rows to skip.
	Offset int
}

// AuditFilter selects audit events, newest first.
type AuditFilter struct {
	UserID string
	// Events keeps only these event types (exact names); empty keeps all.
	Events []string
	// Since and Until bound the event time (inclusive); zero: unbounded.
	Since, Until time.Time
	// Before continues a previous page: events strictly older than it in
	// the list's order (time, then id).
	Before *AuditCursor
	Limit  int // default 100
}

// AuditCursor is a position in the audit trail: the time and id of the
// last event of a page.
type AuditCursor struct {
	At time.Time
	ID int64
}

// The methods of *Store, grouped. Implementations are in the other files of
// this package; this interface exists so that the contract is in one place
// and a compile-time guard keeps it true.
type api interface {
	// Close releases the database.
	Close() error
	// Health pings the database.
	Health(ctx context.Context) error
	// Dialect is "sqlite" or "postgres".
	Dialect() string
	// SchemaVersion is the newest migration applied to the database, ""
	// when it has none (a new, empty database); compare LatestMigration.
	SchemaVersion(ctx context.Context) (string, error)
	// MaintenanceWarnings: what in the database's configuration will slow
	// Latchkey down as it runs (PostgreSQL's autovacuum off); none on SQLite.
	MaintenanceWarnings(ctx context.Context) ([]string, error)
	// PoolStats are the connection pools' statistics by name ("writer"
	// and "reader" on SQLite, "primary" on PostgreSQL).
	PoolStats() map[string]sql.DBStats
	// Backup writes a consistent copy of a SQLite database to path (VACUUM
	// INTO, online); on PostgreSQL it is an error (use pg_dump).
	Backup(ctx context.Context, path string) error

	// --- users ---
	// CreateUser inserts u; ID is generated when empty, CreatedAt/UpdatedAt
	// are taken from u (the caller sets them). ErrConflict on a duplicate
	// email (case-insensitive).
	CreateUser(ctx context.Context, u User) (User, error)
	GetUser(ctx context.Context, id string) (User, error)
	// GetUserByEmail matches case-insensitively.
	GetUserByEmail(ctx context.Context, email string) (User, error)
	ListUsers(ctx context.Context, opts ListOptions) ([]User, error)
	// SearchUsers pages through users by email (case-insensitive order),
	// optionally by email prefix.
	SearchUsers(ctx context.Context, q UserQuery) ([]User, error)
	// UpdateUser runs fn on the current row inside one transaction and
	// saves what fn leaves (ID is immutable). An error from fn aborts and is
	// returned unchanged. ErrConflict if the new email is taken.
	UpdateUser(ctx context.Context, id string, fn func(*User) error) (User, error)

	// --- clients ---
	// CreateClient: ErrConflict if the id exists.
	CreateClient(ctx context.Context, c Client) error
	GetClient(ctx context.Context, id string) (Client, error)
	ListClients(ctx context.Context) ([]Client, error)
	// UpdateClient: read-modify-write in one transaction (as UpdateUser).
	UpdateClient(ctx context.Context, id string, fn func(*Client) error) (Client, error)
	DeleteClient(ctx context.Context, id string) error
	// SyncClients makes the rows with Source==source exactly cs (upsert each
	// by id, delete the others of that source) in one transaction. A client
	// of another source with the same id is overwritten and takes this source.
	SyncClients(ctx context.Context, source string, cs []Client) error

	// --- auth requests ---
	CreateAuthRequest(ctx context.Context, ar AuthRequest) error
	GetAuthRequest(ctx context.Context, id string) (AuthRequest, error)
	// UpdateAuthRequest: read-modify-write in one transaction (as UpdateUser).
	UpdateAuthRequest(ctx context.Context, id string, fn func(*AuthRequest) error) (AuthRequest, error)
	DeleteAuthRequest(ctx context.Context, id string) error
	// SaveAuthCode sets CodeHash and CodeExpiresAt of a Done request, once:
	// ErrConflict if the request already has a code (a code is issued at
	// most once per request; a replayed callback must not mint another).
	SaveAuthCode(ctx context.Context, id string, codeHash []byte, expiresAt time.Time) error
	// GetAuthRequestByCode finds the request whose code digest is codeHash,
	// whatever its state (unused, used, expired): the OP checks PKCE and the
	// client before it redeems, so a failed attempt does not burn the code.
	GetAuthRequestByCode(ctx context.Context, codeHash []byte) (AuthRequest, error)
	// RedeemAuthCode atomically marks the code used (CodeUsedAt=now) and
	// returns the request. ErrNotFound: unknown code or expired
	// (now > CodeExpiresAt). ErrConflict: already redeemed (the returned
	// AuthRequest is still filled so the caller can revoke what the first
	// redemption issued). Exactly one of two concurrent calls succeeds.
	RedeemAuthCode(ctx context.Context, codeHash []byte, now time.Time) (AuthRequest, error)

	// --- browser sessions ---
	// CreateSession: a zero LastSeenAt starts at CreatedAt. ErrConflict on
	// a duplicate TokenHash.
	CreateSession(ctx context.Context, s Session) (Session, error)
	GetSession(ctx context.Context, id string) (Session, error)
	GetSessionByTokenHash(ctx context.Context, tokenHash []byte) (Session, error)
	// TouchSession sets LastSeenAt=now (only forward). Cheap: one UPDATE.
	// ErrNotFound if the session is gone.
	TouchSession(ctx context.Context, id string, now time.Time) error
	UpdateSession(ctx context.Context, id string, fn func(*Session) error) (Session, error)
	DeleteSession(ctx context.Context, id string) error
	// ListSessions: most recently seen first.
	ListSessions(ctx context.Context, userID string) ([]Session, error)

	// --- trusted devices ---
	CreateTrustedDevice(ctx context.Context, d TrustedDevice) (TrustedDevice, error)
	// GetTrustedDevice finds the record of this user for this browser
	// cookie, expired or not (the caller's policy decides).
	GetTrustedDevice(ctx context.Context, userID string, tokenHash []byte) (TrustedDevice, error)
	UpdateTrustedDevice(ctx context.Context, id string, fn func(*TrustedDevice) error) (TrustedDevice, error)
	ListTrustedDevices(ctx context.Context, userID string) ([]TrustedDevice, error)
	// DeleteTrustedDevice deletes one device of this user (ErrNotFound if
	// it is not theirs).
	DeleteTrustedDevice(ctx context.Context, userID, id string) error
	// TouchKnownBrowser records a sign-in of the user in the browser
	// (FirstSeen kept, SeenAt and ExpiresAt only move forward) and reports
	// whether the browser is new to the user (inserted, or its record had
	// expired), decided once whoever races.
	TouchKnownBrowser(ctx context.Context, k KnownBrowser) (bool, error)
	// GetKnownBrowser finds the record, expired or not.
	GetKnownBrowser(ctx context.Context, userID string, tokenHash []byte) (KnownBrowser, error)

	// --- email codes ---
	// CreateEmailCode inserts c and, in the same transaction, kills
	// (DeadAt=c.CreatedAt) every live code of the same (UserID, Purpose,
	// ContextID). ID generated when empty.
	CreateEmailCode(ctx context.Context, c EmailCode) (EmailCode, error)
	// LatestEmailCode returns the newest code of (userID, purpose,
	// contextID), live or dead. ErrNotFound if none.
	LatestEmailCode(ctx context.Context, userID, purpose, contextID string) (EmailCode, error)
	// CountEmailCodesSince counts codes created for the user at or after
	// since, any purpose (the per-account send budget).
	CountEmailCodesSince(ctx context.Context, userID string, since time.Time) (int, error)
	// UpdateEmailCode: read-modify-write of one code in a transaction; two
	// concurrent updaters are serialised (row lock on PostgreSQL).
	UpdateEmailCode(ctx context.Context, id string, fn func(*EmailCode) error) (EmailCode, error)
	// TakeEmailCodeAttempt counts an attempt on a live code (not dead,
	// unexpired at now, fewer than max attempts) and returns it, in one
	// statement; ErrNotFound otherwise. Call it before comparing.
	TakeEmailCodeAttempt(ctx context.Context, id string, now time.Time, max int) (EmailCode, error)
	// IssueEmailCode creates a code with the mail that carries it, in one
	// transaction, if the rule's gap and budget allow (else CodeIssue
	// says which refused and until when); the scope's live codes die and
	// their unsent mails are superseded. Serialised per user.
	IssueEmailCode(ctx context.Context, c EmailCode, m OutboxMessage, r CodeRule) (CodeIssue, error)
	// UseEmailCode kills a live code (DeadAt=now); ErrConflict if it is
	// already dead. Exactly one of two concurrent calls succeeds.
	UseEmailCode(ctx context.Context, id string, now time.Time) error

	// --- TOTP ---
	CreateTOTP(ctx context.Context, c TOTPCredential) (TOTPCredential, error)
	// ListTOTP returns the user's credentials (at most one active and one
	// pending), active first.
	ListTOTP(ctx context.Context, userID string) ([]TOTPCredential, error)
	// AcceptTOTPStep sets LastStep=step iff step > LastStep, atomically.
	// ErrConflict if step <= LastStep (replay). Exactly one of two
	// concurrent calls with the same step succeeds.
	AcceptTOTPStep(ctx context.Context, id string, step int64) error
	// ActivateTOTP makes the pending credential id active with
	// LastStep=step and ConfirmedAt=now, and deletes every other credential
	// of the user, in one transaction. ErrNotFound if id is not a pending
	// credential of userID.
	ActivateTOTP(ctx context.Context, userID, id string, step int64, now time.Time) error
	// DeleteTOTP deletes the user's credentials of the given status ("" = all).
	DeleteTOTP(ctx context.Context, userID, status string) error

	// --- backup codes ---
	// SetBackupCode replaces the user's backup code and records where its
	// display copy goes (BackupCodeShow), in one transaction.
	SetBackupCode(ctx context.Context, b BackupCode, show BackupCodeShow) error
	GetBackupCode(ctx context.Context, userID string) (BackupCode, error)
	// ReplaceBackupCode atomically swaps the code from oldHash to next and
	// records show. ErrConflict if the current hash is not oldHash (already
	// used); ErrNotFound if there is no code or show's sign-in is gone.
	ReplaceBackupCode(ctx context.Context, userID string, oldHash []byte, next BackupCode, show BackupCodeShow) error
	DeleteBackupCode(ctx context.Context, userID string) error

	// --- passkeys (WebAuthn) ---
	// CreatePasskey: ErrConflict if the credential id is registered already.
	CreatePasskey(ctx context.Context, p Passkey) (Passkey, error)
	// ListPasskeys: oldest first.
	ListPasskeys(ctx context.Context, userID string) ([]Passkey, error)
	GetPasskeyByCredentialID(ctx context.Context, credentialID []byte) (Passkey, error)
	// UsePasskey stores a verified assertion's counter, backup state and
	// time iff the counter grew (or both it and the stored one are 0), in
	// one conditional UPDATE. ErrConflict otherwise (a cloned or replayed
	// authenticator); ErrNotFound if the passkey is gone.
	UsePasskey(ctx context.Context, id string, u PasskeyUse) error
	// DeletePasskey deletes one passkey of this user (ErrNotFound if it is
	// not theirs).
	DeletePasskey(ctx context.Context, userID, id string) error
	// CreatePasskeyChallenge inserts c and retires the live challenges of
	// the same (Purpose, ContextID, BrowserHash), in one transaction.
	CreatePasskeyChallenge(ctx context.Context, c PasskeyChallenge) (PasskeyChallenge, error)
	// TakePasskeyChallenge marks the live challenge of this digest,
	// purpose, context and browser used and returns it, in one conditional
	// UPDATE. ErrNotFound if there is none at now; exactly one of
	// concurrent takers wins.
	TakePasskeyChallenge(ctx context.Context, challengeHash []byte, purpose, contextID string, browserHash []byte, now time.Time) (PasskeyChallenge, error)

	// RevokeUserGrants ends a user's sessions, refresh tokens, trusted
	// devices (and, for some causes, 2-step methods) as the table on
	// RevokeCause says, together with an optional change of the user row,
	// in one transaction.
	RevokeUserGrants(ctx context.Context, userID string, r Revocation, now time.Time) (Revoked, error)

	// --- refresh tokens ---
	// CreateRefreshToken starts a family: FamilyID is generated when empty;
	// zero FamilyCreatedAt and LastUsedAt default to CreatedAt.
	CreateRefreshToken(ctx context.Context, rt RefreshToken) (RefreshToken, error)
	// GetRefreshTokenByHash finds a token by the family its value names
	// and its digest; family "" finds only tokens issued before values
	// named their family, by digest alone.
	GetRefreshTokenByHash(ctx context.Context, family string, tokenHash []byte) (RefreshToken, error)
	// GetRefreshGrant is GetRefreshTokenByHash and GetUser of its user in
	// one statement (the refresh grant's read); ErrNotFound when either is
	// missing.
	GetRefreshGrant(ctx context.Context, family string, tokenHash []byte) (RefreshToken, User, error)
	// RotateRefreshToken marks oldID used (UsedAt=now) iff it is neither
	// used nor revoked, inserts next, and deletes the access tokens minted
	// from oldID, in one transaction. ErrConflict if oldID was already used
	// or revoked (reuse); ErrNotFound if it does not exist. Exactly one of
	// two concurrent rotations wins. next inherits FamilyID and
	// FamilyCreatedAt when they are empty (another FamilyID is an error);
	// zero CreatedAt and LastUsedAt default to now.
	RotateRefreshToken(ctx context.Context, oldID string, now time.Time, next RefreshToken) (RefreshToken, error)
	// RotateRefreshTokenWithAccess also inserts the access token minted
	// with next (RefreshTokenID and FamilyID filled in), atomically.
	// grace: a token used at most grace ago rotates again into a sibling
	// (same family) instead of ErrConflict (RFC 9700 §4.14.2).
	RotateRefreshTokenWithAccess(ctx context.Context, oldID string, now time.Time, grace time.Duration, next RefreshToken, at AccessToken) (RefreshToken, error)
	// LiveRefreshFamily returns an unrevoked token of the family (an unused
	// head first); ErrNotFound if none.
	LiveRefreshFamily(ctx context.Context, familyID string) (RefreshToken, error)
	// RevokeRefreshFamily revokes every token of the family and deletes or
	// revokes its access tokens.
	RevokeRefreshFamily(ctx context.Context, familyID string, now time.Time) error
	// RevokeRefreshTokens revokes all live families matching the filter
	// (and their access tokens). Empty fields do not filter, but at least
	// one of UserID/SessionID/FamilyID must be set (else an error).
	RevokeRefreshTokens(ctx context.Context, f TokenFilter, now time.Time) error
	// ListRefreshFamilies returns the newest live token of each live family
	// of the user (for the Devices page), most recently used first.
	ListRefreshFamilies(ctx context.Context, userID string) ([]RefreshToken, error)

	// --- access tokens (opaque) ---
	CreateAccessToken(ctx context.Context, at AccessToken) error
	GetAccessToken(ctx context.Context, id string) (AccessToken, error)
	RevokeAccessToken(ctx context.Context, id string, now time.Time) error

	// --- signing keys ---
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	// UpdateSigningKeys runs fn with the current keys under an exclusive
	// lock (advisory lock on PostgreSQL) so that two instances never rotate
	// at once; fn returns keys to insert and ids to delete. Removals are
	// applied before insertions, so "remove X, add X" rewrites key X.
	UpdateSigningKeys(ctx context.Context, fn func(current []SigningKey) (add []SigningKey, remove []string, err error)) error

	// --- device authorizations (RFC 8628) ---
	// CreateDeviceAuthorization: ErrConflict if the user code (its digest)
	// is taken by a live (unexpired at d.CreatedAt) row.
	CreateDeviceAuthorization(ctx context.Context, d DeviceAuthorization) (DeviceAuthorization, error)
	GetDeviceAuthorization(ctx context.Context, id string) (DeviceAuthorization, error)
	// GuessDeviceUserCode counts a guess against the pending live
	// authorizations whose user code's first half digests to half (those
	// with fewer than max guesses) and returns them, in one statement.
	GuessDeviceUserCode(ctx context.Context, half []byte, now time.Time, max int) ([]DeviceAuthorization, error)
	// GetDeviceAuthorizationByUserCodeHash: the newest row with the code.
	GetDeviceAuthorizationByUserCodeHash(ctx context.Context, hash []byte) (DeviceAuthorization, error)
	GetDeviceAuthorizationByDeviceCode(ctx context.Context, deviceCodeHash []byte) (DeviceAuthorization, error)
	UpdateDeviceAuthorization(ctx context.Context, id string, fn func(*DeviceAuthorization) error) (DeviceAuthorization, error)

	// --- mail outbox ---
	// EnqueueMail writes one message to the outbox.
	EnqueueMail(ctx context.Context, m OutboxMessage) (OutboxMessage, error)
	// ClaimOutbox claims up to limit due messages for lease (one
	// statement; never one row to two concurrent callers, on any number
	// of instances).
	ClaimOutbox(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]OutboxMessage, error)
	// FinishOutbox records an attempt's outcome if claim still holds the
	// message (ErrConflict otherwise); a code's MailState follows.
	FinishOutbox(ctx context.Context, id, claim string, r OutboxResult) error
	// ExpireOutbox fails the unsent messages past GiveUpAt and returns them.
	ExpireOutbox(ctx context.Context, now time.Time) ([]OutboxMessage, error)
	// ListOutbox lists messages newest first, never with Sealed.
	ListOutbox(ctx context.Context, f OutboxFilter) ([]OutboxMessage, error)
	GetOutboxMessage(ctx context.Context, id string) (OutboxMessage, error)

	// --- audit ---
	// CreateAuditEvent appends e; when the store was opened with
	// Options.QueueEvent and it accepts e.Event, a delivery of e to the
	// security-event webhook is queued in the same transaction.
	CreateAuditEvent(ctx context.Context, e AuditEvent) error
	ListAuditEvents(ctx context.Context, f AuditFilter) ([]AuditEvent, error)

	// --- security-event deliveries (the webhook's durable queue) ---
	// ClaimEventDeliveries takes up to n due deliveries (oldest first)
	// that no other worker holds, for lease: each claimed row's Attempts
	// counts this attempt. Concurrent claimers never get the same row
	// (FOR UPDATE SKIP LOCKED on PostgreSQL).
	ClaimEventDeliveries(ctx context.Context, now time.Time, lease time.Duration, n int) ([]EventDelivery, error)
	// FinishEventDelivery marks a delivery done: delivered, or given up
	// (failed) with the last error. ErrNotFound if it does not exist.
	FinishEventDelivery(ctx context.Context, id int64, now time.Time, failed bool, lastErr string) error
	// RetryEventDelivery releases a claimed delivery for another attempt
	// at next. ErrNotFound if it does not exist.
	RetryEventDelivery(ctx context.Context, id int64, next time.Time, lastErr string) error
	// EventQueueStats counts deliveries not yet done and the creation
	// time of the oldest (zero when none).
	EventQueueStats(ctx context.Context) (pending int, oldest time.Time, err error)
	// MailQueueStats counts outbox messages pending or being sent and the
	// creation time of the oldest.
	MailQueueStats(ctx context.Context) (pending int, oldest time.Time, err error)

	// --- throttles ---
	// GetThrottle: ErrNotFound when there is no row (a zero Throttle).
	GetThrottle(ctx context.Context, key string) (Throttle, error)
	// UpdateThrottle runs fn on the row for key (a zero Throttle with Key
	// set when none exists) and saves it, in one transaction.
	UpdateThrottle(ctx context.Context, key string, fn func(*Throttle) error) (Throttle, error)
	DeleteThrottle(ctx context.Context, key string) error
	// TakeThrottles counts one attempt on every key (a missing key starts
	// at zero) unless one of them is blocked at now by its rule: then it
	// counts nothing and returns the latest BlockedUntil of the blocked
	// keys. Zero time: taken. All keys or none, atomically: of any number
	// of concurrent callers (on any number of instances) exactly as many
	// are taken as the rules let through one by one.
	TakeThrottles(ctx context.Context, now time.Time, takes ...ThrottleTake) (time.Time, error)
	TakeThrottlesCounted(ctx context.Context, now time.Time, takes ...ThrottleTake) (time.Time, int, error)
	// ReturnThrottle gives back one attempt (count − 1; the wait goes when
	// the count falls below the rule's free attempts). Absent is fine.
	ReturnThrottle(ctx context.Context, key string, rule ThrottleRule) error

	// --- action tokens ---
	CreateActionToken(ctx context.Context, t ActionToken) (ActionToken, error)
	// RedeemActionToken marks the token used iff unused and unexpired at
	// now and of the given purpose. ErrNotFound otherwise; one winner.
	RedeemActionToken(ctx context.Context, tokenHash []byte, purpose string, now time.Time) (ActionToken, error)
	// GetActionToken finds an unused, unexpired token without redeeming it.
	GetActionToken(ctx context.Context, tokenHash []byte, purpose string, now time.Time) (ActionToken, error)

	// --- logout requests ---
	CreateLogoutRequest(ctx context.Context, l LogoutRequest) (LogoutRequest, error)
	// TakeLogoutRequest returns and deletes it (ErrNotFound if absent or
	// expired at now).
	TakeLogoutRequest(ctx context.Context, id string, now time.Time) (LogoutRequest, error)
	// GetLogoutRequest returns it without deleting it (ErrNotFound if
	// absent or expired at now): the /logout page shows a confirmation
	// first and deletes on the answer.
	GetLogoutRequest(ctx context.Context, id string, now time.Time) (LogoutRequest, error)
	// DeleteLogoutRequest deletes it (ErrNotFound if absent).
	DeleteLogoutRequest(ctx context.Context, id string) error

	// --- organisations and federation ---
	CreateOrganization(ctx context.Context, o Organization) (Organization, error)
	GetOrganization(ctx context.Context, id string) (Organization, error)
	GetOrganizationByName(ctx context.Context, name string) (Organization, error)
	// GetOrganizationByDomain matches the domain case-insensitively.
	GetOrganizationByDomain(ctx context.Context, domain string) (Organization, error)
	ListOrganizations(ctx context.Context) ([]Organization, error)
	UpdateOrganization(ctx context.Context, id string, fn func(*Organization) error) (Organization, error)
	DeleteOrganization(ctx context.Context, id string) error
	// SyncOrganizations: as SyncClients, keyed by Name.
	SyncOrganizations(ctx context.Context, source string, os []Organization) error
	GetFederatedIdentity(ctx context.Context, orgID, subject string) (FederatedIdentity, error)
	CreateFederatedIdentity(ctx context.Context, f FederatedIdentity) error
	TouchFederatedIdentity(ctx context.Context, orgID, subject string, now time.Time) error
	CreateUpstreamState(ctx context.Context, s UpstreamState) (UpstreamState, error)
	// RedeemUpstreamState marks it used iff unused and unexpired at now.
	// ErrNotFound: unknown or expired. ErrConflict: already used.
	RedeemUpstreamState(ctx context.Context, stateHash []byte, now time.Time) (UpstreamState, error)

	// --- change notifications between instances ---
	// Listen calls fn with each topic (TopicKeys, TopicClients,
	// TopicOrganizations) announced by a change on this database until
	// ctx ends; PostgreSQL only (ErrNoNotifications on SQLite).
	Listen(ctx context.Context, fn func(topic string), ready func()) error
	// --- single use (client assertions, DPoP proofs) ---
	// UseOnce records key as used until expiresAt; ErrConflict if it is
	// recorded and unexpired at now. Exactly one of concurrent calls with
	// one key succeeds (one statement), across instances.
	UseOnce(ctx context.Context, key string, now, expiresAt time.Time) error

	// --- pushed authorization requests (RFC 9126) ---
	// CreatePushedRequest: ID generated when empty; ErrConflict on a
	// duplicate RequestURIHash.
	CreatePushedRequest(ctx context.Context, p PushedRequest) (PushedRequest, error)
	// RedeemPushedRequest marks it used iff unused and unexpired at now
	// (one winner) and returns it; ErrNotFound otherwise.
	RedeemPushedRequest(ctx context.Context, requestURIHash []byte, now time.Time) (PushedRequest, error)

	// --- back-channel logout ---
	// RecordSessionClient notes that a client got tokens in a browser
	// session (idempotent).
	RecordSessionClient(ctx context.Context, sessionID, clientID, userID string, now time.Time) error
	// ContinueSession hands the client links of a session to the session
	// that replaced it in the same browser.
	ContinueSession(ctx context.Context, from, to string) error
	// EnqueueBackchannelLogouts queues a delivery for every client with a
	// back-channel logout URI that got tokens in one of the ended sessions
	// of userID, and forgets those links, in one transaction; it returns
	// what it queued (a second call for the same sessions queues nothing).
	EnqueueBackchannelLogouts(ctx context.Context, userID string, sessionIDs []string, cause string, now time.Time) ([]BackchannelLogout, error)
	// ClaimBackchannelLogouts claims up to limit due deliveries for lease
	// under a fresh claim token; concurrent claimers (any instance) get
	// disjoint rows.
	ClaimBackchannelLogouts(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]BackchannelLogout, error)
	// FinishBackchannelLogout records the outcome of a claimed delivery
	// and releases it; ErrConflict if the claim was lost.
	FinishBackchannelLogout(ctx context.Context, id, claimToken string, o BackchannelOutcome, now time.Time) error
	// ListBackchannelLogouts: a user's deliveries ("" = all), oldest first.
	ListBackchannelLogouts(ctx context.Context, userID string) ([]BackchannelLogout, error)

	// --- third-party consent ---
	// GetConsent: ErrNotFound when the user allowed the client nothing.
	GetConsent(ctx context.Context, userID, clientID string) (Consent, error)
	// GrantConsent adds scopes to the consent (creating it), atomically.
	GrantConsent(ctx context.Context, userID, clientID string, scopes []string, now time.Time) (Consent, error)
	ListConsents(ctx context.Context, userID string) ([]Consent, error)
	// DeleteConsent: ErrNotFound if there is none.
	DeleteConsent(ctx context.Context, userID, clientID string) error

	// --- housekeeping ---
	// Sweep deletes rows expired before now (auth requests, codes, sessions
	// idle longer than maxIdle, device authorizations, upstream states,
	// logout requests, action tokens, throttles, access tokens, revoked or
	// expired refresh tokens older than keep, used jtis, pushed requests,
	// finished back-channel logouts older than a week, links of sessions
	// that are gone). Safe on every instance at once.
	Sweep(ctx context.Context, now time.Time, s SweepPolicy) error
}

// TokenFilter selects refresh-token families to revoke.
type TokenFilter struct {
	UserID    string
	SessionID string
	ClientID  string
	FamilyID  string
}

// SweepPolicy says how long to keep rows that have no expiry of their own.
// A zero duration disables the rule unless its comment says otherwise.
type SweepPolicy struct {
	SessionMaxIdle time.Duration // sessions unseen this long are deleted; 0 keeps them
	// RefreshIdle: refresh families whose head is unused this long are
	// deleted (0: no idle limit). Revoked families are kept this long after
	// revocation (0: deleted at the next sweep).
	RefreshIdle time.Duration
	// RefreshUsedKeep: used (rotated) refresh tokens are deleted this long
	// after their use (0: a minute); keep at least the reuse grace.
	RefreshUsedKeep time.Duration
	AuditRetention  time.Duration // 0 keeps audit events forever
	// OnAbandoned, when set, is told how many sign-ins the sweep finds
	// expired unfinished after an email was entered (abandoned sign-ins,
	// for metrics), before it deletes them.
	OnAbandoned func(n int)
	// EventDeliveryKeep: webhook deliveries done (delivered or given up)
	// longer ago than this are deleted (0 means 7 days).
	EventDeliveryKeep time.Duration
	// ThrottleIdle: throttles not blocked and without a failure for this
	// long are deleted (0 means 24h).
	ThrottleIdle time.Duration
	// OutboxKeep: outbox messages done for longer than this are deleted
	// (0 means 7 days); `latchkey mail list` shows them until then.
	OutboxKeep time.Duration
	// BackchannelKeep: back-channel logouts done (delivered or given up)
	// longer ago than this are deleted (0 means 7 days).
	BackchannelKeep time.Duration
	// TrustedDeviceGrace: trusted-device records expired for longer than
	// this are deleted (0 keeps expired records: the re-verification rule
	// may read them).
	TrustedDeviceGrace time.Duration
}

var _ api = (*Store)(nil)
