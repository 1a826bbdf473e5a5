package creds

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/latchkey/latchkey/storage"
)

// The throttle, with every parameter in one place (SPEC 9): a few free
// failures per key, then an exponentially growing wait, capped; failures
// older than the forgiveness window are forgotten. There is never a
// permanent lock that an attacker could use to keep a user out.
var backoff = Backoff{Free: 5, Base: time.Second, Max: 15 * time.Minute}

// forgiveAfter: a failure older than this no longer counts (longer than
// the longest delay).
const forgiveAfter = 24 * time.Hour

// Key names one throttle counter.
type Key string

// The throttle keys. The account of a password is the typed email (known
// or not: no enumeration), keyed through the keyring.
func (s *Service) PasswordAccountKey(email string) Key {
	return Key("pwd:acct:" + s.digest(strings.ToLower(email)))
}

// PasswordAddressKey counts wrong passwords from one client address.
func PasswordAddressKey(ip string) Key { return Key("pwd:ip:" + ip) }

// CodeAccountKey counts wrong codes of a user (or a stand-in).
func CodeAccountKey(subject string) Key { return Key("code:acct:" + subject) }

// CodeAddressKey counts wrong codes from one client address.
func CodeAddressKey(ip string) Key { return Key("code:ip:" + ip) }

// TOTPSetupKey counts wrong codes while setting up an authenticator.
func TOTPSetupKey(userID string) Key { return Key("acct-totp:" + userID) }

// ForgotAddressKey counts password-reset requests from one address.
func ForgotAddressKey(ip string) Key { return Key("forgot:ip:" + ip) }

// SignupAddressKey counts sign-ups from one address.
func SignupAddressKey(ip string) Key { return Key("signup:ip:" + ip) }

// DeviceAddressKey counts wrong device user codes from one address.
func DeviceAddressKey(ip string) Key { return Key("device:ip:" + ip) }

// Attempt is one try against a set of throttle keys: take it with Try,
// then report Failed or Succeeded.
type Attempt struct {
	s    *Service
	keys []Key
	now  time.Time
}

// Try asks whether an attempt may be made now against keys. wait > 0:
// not now (the attempt is not taken); the caller shows the wait.
func (s *Service) Try(ctx context.Context, keys ...Key) (a Attempt, wait time.Duration, err error) {
	now := s.now()
	for _, k := range keys {
		t, err := s.store.GetThrottle(ctx, string(k))
		if err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				continue
			}
			return Attempt{}, 0, err
		}
		wait = max(wait, backoff.Wait(t.Failures, t.LastFailureAt, now))
	}
	if wait > 0 && len(keys) > 0 {
		s.metrics.ThrottleHit(keys[0].Scope())
	}
	return Attempt{s: s, keys: keys, now: now}, wait, nil
}

// Scope is what a key throttles, for metrics: its prefix ("pwd", "code",
// "forgot", …), never the account or address it names.
func (k Key) Scope() string {
	scope, _, _ := strings.Cut(string(k), ":")
	return scope
}

// Failed counts the attempt as a failure on every key. It reports whether
// this failure is the one that makes the first key (the account's) wait:
// the moment a lockout begins, which the caller audits.
func (a Attempt) Failed(ctx context.Context) (locked bool) {
	ctx = context.WithoutCancel(ctx) // a client that hangs up still spent its try
	for i, k := range a.keys {
		t, err := a.s.store.UpdateThrottle(ctx, string(k), func(t *storage.Throttle) error {
			if a.now.Sub(t.LastFailureAt) > forgiveAfter {
				t.Failures = 0
			}
			t.Failures++
			t.LastFailureAt = a.now
			t.BlockedUntil = backoff.RetryAt(t.Failures, a.now)
			return nil
		})
		if err != nil {
			a.s.log.Error("throttle update", "err", err)
			continue
		}
		if i == 0 && t.Failures == backoff.Free {
			locked = true
		}
	}
	return locked
}

// Succeeded clears the first key (the account's); the address keeps its
// count, so one good password does not launder a spray of bad ones.
func (a Attempt) Succeeded(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	if len(a.keys) == 0 {
		return
	}
	if err := a.s.store.DeleteThrottle(ctx, string(a.keys[0])); err != nil && !errors.Is(err, storage.ErrNotFound) {
		a.s.log.Error("throttle reset", "err", err)
	}
}
