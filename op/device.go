package op

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
)

// RFC 8628, the device authorization grant. zitadel provides the endpoint
// and the polling; the rest is ours: scope filtering, single use of the
// device code, the polling pace (slow_down), and acr/sid in the tokens.

var _ zop.DeviceAuthorizationStorage = (*opStorage)(nil)

// devicePollInterval is the pace a device must keep (RFC 8628 §3.5);
// deviceLifetime is how long a device and user code live.
const (
	devicePollInterval = 5 * time.Second
	deviceLifetime     = 10 * time.Minute
)

// deviceScopes are the scopes a device may ask for.
var deviceScopes = []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopeOfflineAccess, ScopePrivacy}

// StoreDeviceAuthorization ignores zitadel's expires, which it takes from
// the wall clock: every later check uses the injected one.
func (s *opStorage) StoreDeviceAuthorization(ctx context.Context, clientID, deviceCode, userCode string, _ time.Time, scopes []string) error {
	var keep []string
	for _, sc := range scopes {
		if slices.Contains(deviceScopes, sc) && !slices.Contains(keep, sc) {
			keep = append(keep, sc)
		}
	}
	now := s.now()
	// The user code is stored as HMACs only (the whole, and its first half
	// for counting the guesses aimed at it): a database read does not hand
	// out codes that approve devices.
	full, half := s.kr.UserCodeDigests(userCode)
	_, err := s.store.CreateDeviceAuthorization(ctx, storage.DeviceAuthorization{
		DeviceCodeHash: s.kr.MACString(keyring.PurposeDeviceCode, deviceCode),
		UserCodeHash:   full, UserCodeHalf: half, ClientID: clientID, Scopes: keep,
		CreatedAt: now, ExpiresAt: now.Add(deviceLifetime), State: storage.DevicePending,
	})
	if errors.Is(err, storage.ErrConflict) {
		return zop.ErrDuplicateUserCode
	}
	if err != nil {
		return serverError(ctx, err)
	}
	return nil
}

// GetDeviceAuthorizatonState answers a device's poll. An approved
// authorization is handed out once (the device code is single use); a
// device that polls faster than the interval gets slow_down.
func (s *opStorage) GetDeviceAuthorizatonState(ctx context.Context, clientID, deviceCode string) (*zop.DeviceAuthorizationState, error) {
	d, err := s.store.GetDeviceAuthorizationByDeviceCode(ctx, s.kr.MACString(keyring.PurposeDeviceCode, deviceCode))
	if err != nil || d.ClientID != clientID {
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return nil, err
		}
		return nil, errDeviceUnknown
	}
	now := s.now()
	var out storage.DeviceAuthorization
	tooFast := false
	out, err = s.store.UpdateDeviceAuthorization(ctx, d.ID, func(x *storage.DeviceAuthorization) error {
		if x.State == storage.DevicePending && !x.LastPollAt.IsZero() && now.Sub(x.LastPollAt) < devicePollInterval {
			tooFast = true
		}
		x.LastPollAt = now
		switch x.State {
		case storage.DeviceApproved, storage.DeviceDenied:
			// Single use: the answer is given once.
			if x.State == storage.DeviceApproved {
				x.State = storage.DeviceConsumed
			}
		case storage.DeviceConsumed:
			return errDeviceUsed
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if tooFast {
		return nil, fmt.Errorf("op: polling too fast: %w", context.DeadlineExceeded)
	}
	st := &zop.DeviceAuthorizationState{
		ClientID: d.ClientID, Audience: []string{d.ClientID}, Scopes: out.Scopes, Expires: out.ExpiresAt,
	}
	switch d.State {
	case storage.DeviceApproved:
		st.Done = true
		st.Subject, st.AMR, st.AuthTime = out.UserID, out.AMR, out.AuthTime
		s.devices.put(st, deviceExtra{acr: out.ACR, sessionID: out.SessionID, at: now})
	case storage.DeviceDenied:
		st.Denied = true
	}
	return st, nil
}

var (
	errDeviceUsed    = errors.New("op: device code already used")
	errDeviceUnknown = errors.New("op: unknown device code")
)

// deviceExtra carries what zitadel's DeviceAuthorizationState has no room
// for (acr, the browser session) from the poll to token creation, which
// happen within one request.
type deviceExtra struct {
	acr       string
	sessionID string
	at        time.Time
	// DPoP bindings of the tokens (RFC 9449), set by the token endpoint.
	accessJKT, refreshJKT string
}

type deviceExtras struct {
	mu sync.Mutex
	m  map[*zop.DeviceAuthorizationState]deviceExtra
}

func (d *deviceExtras) put(st *zop.DeviceAuthorizationState, x deviceExtra) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = map[*zop.DeviceAuthorizationState]deviceExtra{}
	}
	for k, v := range d.m { // forget entries of requests that failed midway
		if x.at.Sub(v.at) > time.Minute {
			delete(d.m, k)
		}
	}
	d.m[st] = x
}

func (d *deviceExtras) get(st *zop.DeviceAuthorizationState) deviceExtra {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.m[st]
}

func (d *deviceExtras) forget(st *zop.DeviceAuthorizationState) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.m, st)
}
