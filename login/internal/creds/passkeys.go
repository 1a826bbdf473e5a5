package creds

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
)

// --- passkeys (WebAuthn) ---
//
// The ceremonies are github.com/go-webauthn/webauthn's; what is ours:
//   - the relying party is the issuer: RP ID its host, the one origin its
//     scheme://host[:port]. An issuer on an IP address (WebAuthn allows
//     none) has no passkeys: PasskeysEnabled reports false and the pages
//     do not offer them;
//   - every challenge is a row (storage.PasskeyChallenge) bound to what it
//     is for (purpose, the sign-in or account session) and to the browser
//     that asked, like an email code, and is used up by one conditional
//     UPDATE before any signature is checked: a replayed, expired,
//     superseded or foreign challenge fails there;
//   - the signature counter and the backup flags are stored; a counter
//     that does not grow refuses the sign-in (a cloned authenticator), by
//     one conditional UPDATE as well;
//   - a disabled user's or an SSO user's passkeys are refused;
//   - every refusal is one error for the user (ErrPasskeyRefused or
//     ErrPasskeyExpired); the cause is wrapped for the log.

// Passkey ceremony purposes (storage.PasskeyChallenge.Purpose).
const (
	// PasskeyPasswordless: the identifier page, any user's discoverable
	// passkey, user verification required.
	PasskeyPasswordless = "passwordless"
	// PasskeySecondStep: after the password (or to step up a session),
	// one of this user's passkeys, user verification preferred.
	PasskeySecondStep = "second"
	// PasskeyRegister: setting up a passkey on the account page.
	PasskeyRegister = "register"
)

const (
	// passkeyChallengeTTL is how long a page's ceremony stays good.
	passkeyChallengeTTL = 5 * time.Minute
	// maxPasskeyResponse bounds a browser's answer (a few hundred bytes
	// for an assertion, a couple of kilobytes with attestation).
	maxPasskeyResponse = 16 << 10
	// MaxPasskeyName is the longest name of a passkey, in characters.
	MaxPasskeyName = 64
)

// Errors of the passkey ceremonies. Both carry their cause for the log.
var (
	// ErrPasskeyExpired: no live ceremony matches (replayed, expired,
	// superseded by a newer page, or started in another browser).
	ErrPasskeyExpired = errors.New("creds: no live passkey challenge")
	// ErrPasskeyRefused: the answer does not verify, or names a passkey
	// that is unknown, another user's, a disabled user's, or cloned.
	ErrPasskeyRefused = errors.New("creds: passkey refused")
)

func refused(cause string, err error) error {
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrPasskeyRefused, cause, err)
	}
	return fmt.Errorf("%w: %s", ErrPasskeyRefused, cause)
}

// newWebAuthn is the relying party of the issuer; nil when the issuer's
// host cannot be an RP ID (an IP address).
func newWebAuthn(issuer, siteName string) (*webauthn.WebAuthn, error) {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("creds: bad issuer %q", issuer)
	}
	host := u.Hostname()
	if net.ParseIP(host) != nil {
		return nil, nil
	}
	return webauthn.New(&webauthn.Config{
		RPID:          host,
		RPDisplayName: siteName,
		RPOrigins:     []string{u.Scheme + "://" + u.Host},
		// Passkeys: discoverable (passwordless sign-in finds them without
		// an email) and verifying their user (so one counts as password
		// and second factor). Attestation is not asked for: we do not
		// restrict which authenticators people use.
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:      protocol.ResidentKeyRequirementRequired,
			UserVerification: protocol.VerificationRequired,
		},
		AttestationPreference: protocol.PreferNoAttestation,
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Timeout: passkeyChallengeTTL, TimeoutUVD: passkeyChallengeTTL},
			Registration: webauthn.TimeoutConfig{Timeout: passkeyChallengeTTL, TimeoutUVD: passkeyChallengeTTL},
		},
	})
}

// PasskeysEnabled reports whether this issuer can have passkeys.
func (s *Service) PasskeysEnabled() bool { return s.wa != nil }

// Passkeys are the user's passkeys, oldest first (none when passkeys
// are not enabled).
func (s *Service) Passkeys(ctx context.Context, userID string) ([]storage.Passkey, error) {
	if s.wa == nil {
		return nil, nil
	}
	return s.store.ListPasskeys(ctx, userID)
}

// HasPasskey reports whether the user can sign in with a passkey.
func (s *Service) HasPasskey(ctx context.Context, userID string) (bool, error) {
	pks, err := s.Passkeys(ctx, userID)
	return len(pks) > 0, err
}

// RemovePasskey deletes one of the user's passkeys (storage.ErrNotFound
// when it is not theirs).
func (s *Service) RemovePasskey(ctx context.Context, userID, id string) error {
	return s.store.DeletePasskey(ctx, userID, id)
}

// waUser is a user as the library sees it.
type waUser struct {
	handle      []byte
	name, shown string
	creds       []webauthn.Credential
}

func (u *waUser) WebAuthnID() []byte                         { return u.handle }
func (u *waUser) WebAuthnName() string                       { return u.name }
func (u *waUser) WebAuthnDisplayName() string                { return u.shown }
func (u *waUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

// credential is a stored passkey as the library's credential record.
func credential(p storage.Passkey) webauthn.Credential {
	flags := protocol.FlagUserPresent
	if p.UserVerified {
		flags |= protocol.FlagUserVerified
	}
	if p.BackupEligible {
		flags |= protocol.FlagBackupEligible
	}
	if p.BackupState {
		flags |= protocol.FlagBackupState
	}
	ts := make([]protocol.AuthenticatorTransport, len(p.Transports))
	for i, t := range p.Transports {
		ts[i] = protocol.AuthenticatorTransport(t)
	}
	return webauthn.Credential{
		ID: p.CredentialID, PublicKey: p.PublicKey, AttestationType: p.AttestationType,
		AttestationFormat: p.AttestationFormat, Transport: ts, Flags: webauthn.NewCredentialFlags(flags),
		Authenticator: webauthn.Authenticator{AAGUID: p.AAGUID, SignCount: p.SignCount,
			Attachment: protocol.AuthenticatorAttachment(p.Attachment)},
	}
}

func (s *Service) libraryUser(u storage.User, handle []byte, pks []storage.Passkey) *waUser {
	wu := &waUser{handle: handle, name: u.Email, shown: u.Name}
	if wu.shown == "" {
		wu.shown = u.Email
	}
	for _, p := range pks {
		wu.creds = append(wu.creds, credential(p))
	}
	return wu
}

// challengeHash is the stored digest of a challenge as the browser sends
// it back (base64url in the client data).
func (s *Service) challengeHash(challenge string) []byte {
	return s.kr.MACString(keyring.PurposePasskeyChallenge, challenge)
}

// saveCeremony stores a begun ceremony's session data as a challenge row.
func (s *Service) saveCeremony(ctx context.Context, sd *webauthn.SessionData, purpose, contextID, userID string, browser []byte) error {
	if len(browser) == 0 {
		return errors.New("creds: a passkey ceremony needs a browser handle")
	}
	now := s.now()
	challenge := sd.Challenge
	sd.Challenge = "" // the row keeps its digest only
	raw, err := json.Marshal(sd)
	if err != nil {
		return err
	}
	_, err = s.store.CreatePasskeyChallenge(ctx, storage.PasskeyChallenge{
		ChallengeHash: s.challengeHash(challenge), Purpose: purpose, ContextID: contextID, UserID: userID,
		BrowserHash: browser, Session: raw, CreatedAt: now, ExpiresAt: now.Add(passkeyChallengeTTL),
	})
	return err
}

// takeCeremony uses up the ceremony whose challenge the browser answered
// and returns its session data (with the challenge). It is the one
// atomic statement every ceremony passes before any signature check.
func (s *Service) takeCeremony(ctx context.Context, challenge, purpose, contextID, userID string, browser []byte) (webauthn.SessionData, error) {
	var sd webauthn.SessionData
	if challenge == "" || len(challenge) > 256 {
		return sd, fmt.Errorf("%w: no challenge in the answer", ErrPasskeyExpired)
	}
	row, err := s.store.TakePasskeyChallenge(ctx, s.challengeHash(challenge), purpose, contextID, browser, s.now())
	if errors.Is(err, storage.ErrNotFound) {
		return sd, fmt.Errorf("%w: %s challenge for %s", ErrPasskeyExpired, purpose, contextID)
	} else if err != nil {
		return sd, err
	}
	if row.UserID != userID {
		return sd, refused("the challenge was for another user", nil)
	}
	if err := json.Unmarshal(row.Session, &sd); err != nil {
		return sd, err
	}
	sd.Challenge = challenge
	return sd, nil
}

// --- signing in ---

// BeginPasskeySignin starts a sign-in ceremony for the page of a sign-in
// (contextID, the auth request) in this browser, and returns the options
// for navigator.credentials.get as JSON. purpose PasskeyPasswordless
// takes any user's discoverable passkey (user nil); PasskeySecondStep the
// user's own ones.
func (s *Service) BeginPasskeySignin(ctx context.Context, purpose, contextID string, user *storage.User, browser []byte) (string, error) {
	if s.wa == nil {
		return "", errors.New("creds: passkeys are not enabled for this issuer")
	}
	var (
		opts   *protocol.CredentialAssertion
		sd     *webauthn.SessionData
		userID string
		err    error
	)
	switch {
	case purpose == PasskeyPasswordless && user == nil:
		opts, sd, err = s.wa.BeginDiscoverableMediatedLogin(protocol.MediationConditional)
	case purpose == PasskeySecondStep && user != nil:
		pks, lerr := s.store.ListPasskeys(ctx, user.ID)
		if lerr != nil {
			return "", lerr
		}
		if len(pks) == 0 {
			return "", errors.New("creds: the user has no passkey")
		}
		userID = user.ID
		// After a password a passkey is the second factor whatever the
		// authenticator can verify; it says whether it did (amr pin).
		opts, sd, err = s.wa.BeginLogin(s.libraryUser(*user, pks[0].UserHandle, pks),
			webauthn.WithUserVerification(protocol.VerificationPreferred))
	default:
		return "", fmt.Errorf("creds: bad passkey sign-in %q", purpose)
	}
	if err != nil {
		return "", err
	}
	if err := s.saveCeremony(ctx, sd, purpose, contextID, userID, browser); err != nil {
		return "", err
	}
	raw, err := json.Marshal(opts)
	return string(raw), err
}

// PasskeySignin is a verified passkey sign-in.
type PasskeySignin struct {
	UserID    string
	PasskeyID string
	// What the authenticator reported in this assertion.
	UserVerified   bool
	BackupEligible bool
}

// FinishPasskeySignin checks the browser's answer (the JSON of the
// PublicKeyCredential) to the ceremony of this sign-in and browser.
// userID is the user the ceremony was for ("" for a passwordless one).
func (s *Service) FinishPasskeySignin(ctx context.Context, purpose, contextID, userID string, browser []byte, answer string) (PasskeySignin, error) {
	if s.wa == nil {
		return PasskeySignin{}, refused("passkeys are not enabled", nil)
	}
	if len(answer) > maxPasskeyResponse {
		return PasskeySignin{}, refused("oversized answer", nil)
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes([]byte(answer))
	if err != nil {
		return PasskeySignin{}, refused("unreadable answer", err)
	}
	sd, err := s.takeCeremony(ctx, parsed.Response.CollectedClientData.Challenge, purpose, contextID, userID, browser)
	if err != nil {
		return PasskeySignin{}, err
	}
	pk, err := s.store.GetPasskeyByCredentialID(ctx, parsed.RawID)
	if errors.Is(err, storage.ErrNotFound) {
		return PasskeySignin{}, refused("unknown credential", nil)
	} else if err != nil {
		return PasskeySignin{}, err
	}
	if userID != "" && pk.UserID != userID {
		return PasskeySignin{}, refused("a credential of another user", nil)
	}
	u, err := s.store.GetUser(ctx, pk.UserID)
	if errors.Is(err, storage.ErrNotFound) {
		return PasskeySignin{}, refused("the credential's user is gone", nil)
	} else if err != nil {
		return PasskeySignin{}, err
	}
	if u.Disabled || u.OrgID != "" {
		return PasskeySignin{}, refused("the credential's user is disabled or signs in with SSO", nil)
	}
	pks, err := s.store.ListPasskeys(ctx, u.ID)
	if err != nil {
		return PasskeySignin{}, err
	}
	wu := s.libraryUser(u, pk.UserHandle, pks)
	var cred *webauthn.Credential
	if purpose == PasskeyPasswordless {
		cred, err = s.wa.ValidateDiscoverableLogin(func(_, _ []byte) (webauthn.User, error) { return wu, nil }, sd, parsed)
	} else {
		cred, err = s.wa.ValidateLogin(wu, sd, parsed)
	}
	if err != nil {
		return PasskeySignin{}, refused("assertion", err)
	}
	flags := parsed.Response.AuthenticatorData.Flags
	if cred.Authenticator.CloneWarning {
		return PasskeySignin{}, refused("the signature counter did not grow", nil)
	}
	err = s.store.UsePasskey(ctx, pk.ID, storage.PasskeyUse{
		SignCount: parsed.Response.AuthenticatorData.Counter, BackupState: flags.HasBackupState(), At: s.now()})
	switch {
	case errors.Is(err, storage.ErrConflict):
		return PasskeySignin{}, refused("the signature counter did not grow (concurrently)", nil)
	case errors.Is(err, storage.ErrNotFound):
		return PasskeySignin{}, refused("the passkey was removed", nil)
	case err != nil:
		return PasskeySignin{}, err
	}
	return PasskeySignin{UserID: u.ID, PasskeyID: pk.ID, UserVerified: flags.HasUserVerified(),
		BackupEligible: flags.HasBackupEligible()}, nil
}

// --- setting one up ---

// BeginPasskeyRegistration starts setting up a passkey for u from the
// account session contextID in this browser, and returns the options for
// navigator.credentials.create as JSON. Its existing passkeys are
// excluded (an authenticator holds one passkey per account).
func (s *Service) BeginPasskeyRegistration(ctx context.Context, u storage.User, contextID string, browser []byte) (string, error) {
	if s.wa == nil {
		return "", errors.New("creds: passkeys are not enabled for this issuer")
	}
	pks, err := s.store.ListPasskeys(ctx, u.ID)
	if err != nil {
		return "", err
	}
	// One random user handle per user (WebAuthn §14.6.1: never the user
	// id or email): the first passkey's, or a new one.
	var handle []byte
	if len(pks) > 0 {
		handle = pks[0].UserHandle
	} else {
		handle = make([]byte, 32)
		if _, err := rand.Read(handle); err != nil {
			return "", err
		}
	}
	wu := s.libraryUser(u, handle, pks)
	opts, sd, err := s.wa.BeginRegistration(wu,
		webauthn.WithExclusions(webauthn.Credentials(wu.creds).CredentialDescriptors()))
	if err != nil {
		return "", err
	}
	if err := s.saveCeremony(ctx, sd, PasskeyRegister, contextID, u.ID, browser); err != nil {
		return "", err
	}
	raw, err := json.Marshal(opts)
	return string(raw), err
}

// FinishPasskeyRegistration checks the browser's answer to the set-up
// ceremony of this account session and browser and stores the passkey
// under name (NormalizePasskeyName).
func (s *Service) FinishPasskeyRegistration(ctx context.Context, u storage.User, contextID string, browser []byte, name, answer string) (storage.Passkey, error) {
	if s.wa == nil {
		return storage.Passkey{}, refused("passkeys are not enabled", nil)
	}
	if len(answer) > maxPasskeyResponse {
		return storage.Passkey{}, refused("oversized answer", nil)
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes([]byte(answer))
	if err != nil {
		return storage.Passkey{}, refused("unreadable answer", err)
	}
	sd, err := s.takeCeremony(ctx, parsed.Response.CollectedClientData.Challenge, PasskeyRegister, contextID, u.ID, browser)
	if err != nil {
		return storage.Passkey{}, err
	}
	pks, err := s.store.ListPasskeys(ctx, u.ID)
	if err != nil {
		return storage.Passkey{}, err
	}
	cred, err := s.wa.CreateCredential(s.libraryUser(u, sd.UserID, pks), sd, parsed)
	if err != nil {
		return storage.Passkey{}, refused("attestation", err)
	}
	if !cred.Flags.UserVerified {
		return storage.Passkey{}, refused("the authenticator did not verify the user", nil)
	}
	ts := make([]string, len(cred.Transport))
	for i, t := range cred.Transport {
		ts[i] = string(t)
	}
	now := s.now()
	pk, err := s.store.CreatePasskey(ctx, storage.Passkey{
		UserID: u.ID, CredentialID: cred.ID, UserHandle: sd.UserID, PublicKey: cred.PublicKey,
		AttestationType: cred.AttestationType, AttestationFormat: cred.AttestationFormat, Transports: ts,
		AAGUID: cred.Authenticator.AAGUID, Attachment: string(cred.Authenticator.Attachment),
		SignCount: cred.Authenticator.SignCount, UserVerified: cred.Flags.UserVerified,
		BackupEligible: cred.Flags.BackupEligible, BackupState: cred.Flags.BackupState,
		Name: NormalizePasskeyName(name), CreatedAt: now,
	})
	if errors.Is(err, storage.ErrConflict) {
		return storage.Passkey{}, refused("the credential is registered already", nil)
	}
	return pk, err
}

// NormalizePasskeyName makes a name the user typed fit to show: trimmed,
// control characters and invalid UTF-8 dropped, at most MaxPasskeyName
// characters, "Passkey" when nothing is left.
func NormalizePasskeyName(name string) string {
	name = strings.ToValidUTF8(name, "")
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, name)
	name = strings.TrimSpace(name)
	if utf8.RuneCountInString(name) > MaxPasskeyName {
		name = strings.TrimSpace(string([]rune(name)[:MaxPasskeyName]))
	}
	if name == "" {
		return "Passkey"
	}
	return name
}
