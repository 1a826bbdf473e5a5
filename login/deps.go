package login

import (
	"context"
	"encoding/base64"
	"errors"
	"time"

	"github.com/latchkey/latchkey/storage"
)

// Store is what login needs from storage (the consumer declares the
// narrow interface; *storage.Store satisfies it).
type Store interface {
	GetUser(ctx context.Context, id string) (storage.User, error)
	GetUserByEmail(ctx context.Context, email string) (storage.User, error)
	CreateUser(ctx context.Context, u storage.User) (storage.User, error)
	UpdateUser(ctx context.Context, id string, fn func(*storage.User) error) (storage.User, error)

	GetClient(ctx context.Context, id string) (storage.Client, error)

	GetAuthRequest(ctx context.Context, id string) (storage.AuthRequest, error)
	UpdateAuthRequest(ctx context.Context, id string, fn func(*storage.AuthRequest) error) (storage.AuthRequest, error)

	CreateSession(ctx context.Context, s storage.Session) (storage.Session, error)
	GetSessionByTokenHash(ctx context.Context, tokenHash []byte) (storage.Session, error)
	UpdateSession(ctx context.Context, id string, fn func(*storage.Session) error) (storage.Session, error)
	DeleteSession(ctx context.Context, id string) error
	ListSessions(ctx context.Context, userID string) ([]storage.Session, error)
	DeleteUserSessions(ctx context.Context, userID, exceptID string) ([]string, error)

	CreateTrustedDevice(ctx context.Context, d storage.TrustedDevice) (storage.TrustedDevice, error)
	GetTrustedDevice(ctx context.Context, userID string, tokenHash []byte) (storage.TrustedDevice, error)
	UpdateTrustedDevice(ctx context.Context, id string, fn func(*storage.TrustedDevice) error) (storage.TrustedDevice, error)
	ListTrustedDevices(ctx context.Context, userID string) ([]storage.TrustedDevice, error)
	DeleteTrustedDevice(ctx context.Context, userID, id string) error
	DeleteUserTrustedDevices(ctx context.Context, userID string) error

	CreateEmailCode(ctx context.Context, c storage.EmailCode) (storage.EmailCode, error)
	LatestEmailCode(ctx context.Context, userID, purpose, contextID string) (storage.EmailCode, error)
	CountEmailCodesSince(ctx context.Context, userID string, since time.Time) (int, error)
	UpdateEmailCode(ctx context.Context, id string, fn func(*storage.EmailCode) error) (storage.EmailCode, error)

	CreateTOTP(ctx context.Context, c storage.TOTPCredential) (storage.TOTPCredential, error)
	ListTOTP(ctx context.Context, userID string) ([]storage.TOTPCredential, error)
	AcceptTOTPStep(ctx context.Context, id string, step int64) error
	ActivateTOTP(ctx context.Context, userID, id string, step int64, now time.Time) error
	DeleteTOTP(ctx context.Context, userID, status string) error

	SetBackupCode(ctx context.Context, b storage.BackupCode) error
	DeleteBackupCode(ctx context.Context, userID string) error
	GetBackupCode(ctx context.Context, userID string) (storage.BackupCode, error)
	ReplaceBackupCode(ctx context.Context, userID string, oldHash []byte, next storage.BackupCode) error

	RevokeRefreshTokens(ctx context.Context, f storage.TokenFilter, now time.Time) error
	RevokeRefreshFamily(ctx context.Context, familyID string, now time.Time) error
	ListRefreshFamilies(ctx context.Context, userID string) ([]storage.RefreshToken, error)

	CreateAuditEvent(ctx context.Context, e storage.AuditEvent) error

	GetThrottle(ctx context.Context, key string) (storage.Throttle, error)
	UpdateThrottle(ctx context.Context, key string, fn func(*storage.Throttle) error) (storage.Throttle, error)
	DeleteThrottle(ctx context.Context, key string) error

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

	CreateAuthRequest(ctx context.Context, ar storage.AuthRequest) error
	GetDeviceAuthorization(ctx context.Context, id string) (storage.DeviceAuthorization, error)
	GetDeviceAuthorizationByUserCode(ctx context.Context, userCode string) (storage.DeviceAuthorization, error)
	UpdateDeviceAuthorization(ctx context.Context, id string, fn func(*storage.DeviceAuthorization) error) (storage.DeviceAuthorization, error)
}

var _ Store = (*storage.Store)(nil)

func encodeSealed(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func decodeSealed(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("login: empty sealed value")
	}
	return base64.RawURLEncoding.DecodeString(s)
}
