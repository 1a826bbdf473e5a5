package creds

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/latchkey/latchkey/storage"
)

// The throttle, with every parameter in one place (SPEC 9; OWASP ASVS
// 2.2.1, and its "device cookies" design against lockout).
//
// An attempt is taken before the check it guards — "may I try?" and
// "count this try" are one statement in the database
// (storage.TakeThrottles), so concurrent guesses on any number of
// instances are counted one by one and none gets past a key that an
// earlier one blocked — and given back (or the key cleared) when the
// check succeeds. Each key lets a few attempts through, then makes the
// next wait, twice as long each time, up to a cap; a key quiet for its
// forgiveness window starts again. There is never a permanent lock.
//
// Nobody can keep the owner out: a browser that has signed in as the user
// before (a known browser: Known) is counted on a key of its own and is
// never delayed by failures that came from elsewhere. Other browsers
// share the account's key, whose wait is capped at a minute, and a key of
// their account and address. Per address alone only a loose guard stays
// (password spraying from one address), so that the many users behind
// one proxy or NAT address do not share one count.
var (
	// ruleStrict: five free, then 1 s, 2 s, … up to 15 minutes; forgotten
	// after a day without an attempt. Per account and address, per known
	// browser, per account for codes, per address for sign-ups and resets.
	ruleStrict = storage.ThrottleRule{Free: 5, Base: time.Second, Max: 15 * time.Minute, Forget: 24 * time.Hour}
	// ruleAccount: a password account's key for browsers not known for it;
	// capped at a minute, so a storm from elsewhere costs the owner on a
	// new browser at most that.
	ruleAccount = storage.ThrottleRule{Free: 5, Base: time.Second, Max: time.Minute, Forget: 24 * time.Hour}
	// ruleAddress: one address over every account (spraying); loose, and
	// capped at a minute.
	ruleAddress = storage.ThrottleRule{Free: 100, Base: time.Second, Max: time.Minute, Forget: time.Hour}
	// ruleDeviceGlobal: wrong device user codes from every browser that
	// has no session and is not known (RFC 8628 §5.1): the 8-letter codes
	// (20^8) then take years to hit at this pace.
	ruleDeviceGlobal = storage.ThrottleRule{Free: 1000, Base: time.Second, Max: time.Minute, Forget: 10 * time.Minute}
)

// onSuccess is what a successful check does to a key.
type onSuccess int

const (
	giveBack onSuccess = iota // the attempt is returned (it was not a failure)
	clearKey                  // the key starts again (the owner proved who they are)
	keepKey                   // every request counts (mail bombing, mass sign-up)
)

// Limit is one throttle key and its rule.
type Limit struct {
	key     string
	rule    storage.ThrottleRule
	success onSuccess
}

// Key is the limit's key (for tests and logs).
func (l Limit) Key() string { return l.key }

// Scope is what a limit throttles, for metrics: its key's prefix ("pwd",
// "code", "forgot", …), never the account or address it names.
func (l Limit) Scope() string {
	scope, _, _ := strings.Cut(l.key, ":")
	return scope
}

// PasswordLimits are the keys a password attempt for the typed email
// (known or not: no enumeration) takes from address ip. browser is this
// browser's id for the account when it is known for it (Known), "" when
// it is not: a known browser answers for its own failures only.
func (s *Service) PasswordLimits(email, ip, browser string) []Limit {
	acct := s.digest(strings.ToLower(email))
	if browser != "" {
		return []Limit{{key: "pwd:dev:" + acct + ":" + browser, rule: ruleStrict, success: clearKey}}
	}
	return []Limit{
		{key: "pwd:acct:" + acct, rule: ruleAccount, success: clearKey},
		{key: "pwd:acct-ip:" + acct + ":" + ip, rule: ruleStrict, success: clearKey},
		{key: "pwd:ip:" + ip, rule: ruleAddress, success: giveBack},
	}
}

// CodeLimits are the keys a second-step code (email, authenticator,
// backup) of subject (a user or a stand-in) takes from address ip. A code
// is asked for only after the password (or in a reset, after the mail
// reached the mailbox), so the account's key is strict.
func CodeLimits(subject, ip string) []Limit {
	return []Limit{
		{key: "code:acct:" + subject, rule: ruleStrict, success: clearKey},
		{key: "code:ip:" + ip, rule: ruleAddress, success: giveBack},
	}
}

// TOTPSetupLimits guard the confirmation code of an authenticator being
// set up.
func TOTPSetupLimits(userID, ip string) []Limit {
	return []Limit{
		{key: "acct-totp:" + userID, rule: ruleStrict, success: clearKey},
		{key: "code:ip:" + ip, rule: ruleAddress, success: giveBack},
	}
}

// ForgotLimits: every password-reset request counts against its address.
func ForgotLimits(ip string) []Limit {
	return []Limit{{key: "forgot:ip:" + ip, rule: ruleStrict, success: keepKey}}
}

// SignupLimits: every sign-up counts against its address.
func SignupLimits(ip string) []Limit {
	return []Limit{{key: "signup:ip:" + ip, rule: ruleStrict, success: keepKey}}
}

// DeviceLimits are the keys a typed device user code takes: its address,
// and — unless the browser is signed in or known (exempt), so an attacker
// cannot lock users out of it — one key for everybody. (Each device
// authorization counts the guesses aimed at it as well:
// storage.FindDeviceAuthorizationByUserCode.)
func DeviceLimits(ip string, exempt bool) []Limit {
	ls := []Limit{{key: "device:ip:" + ip, rule: ruleStrict, success: giveBack}}
	if !exempt {
		ls = append(ls, Limit{key: "device:global", rule: ruleDeviceGlobal, success: giveBack})
	}
	return ls
}

// Attempt is one try taken against a set of limits: report the outcome
// with Succeeded (a failure needs nothing: it was counted when taken).
type Attempt struct {
	s      *Service
	limits []Limit
	// locks: this attempt is the one that makes the first limit (the
	// account's) wait from now on — if it fails, a lockout begins.
	locks bool
}

// Locks reports whether this attempt, failed, is the one that starts the
// first limit's waits: the moment a lockout begins, which the caller
// audits (once: the next attempt is refused or starts a new count).
func (a Attempt) Locks() bool { return a.locks }

// Try takes one attempt on every limit, all or none, atomically, before
// the check it guards. wait > 0: not now, nothing was counted; the caller
// shows the wait.
func (s *Service) Try(ctx context.Context, limits ...Limit) (a Attempt, wait time.Duration, err error) {
	now := s.now()
	takes := make([]storage.ThrottleTake, len(limits))
	for i, l := range limits {
		takes[i] = storage.ThrottleTake{Key: l.key, Rule: l.rule}
	}
	// A client that hangs up mid-request still spent its try.
	until, count, err := s.store.TakeThrottlesCounted(context.WithoutCancel(ctx), now, takes...)
	if err != nil {
		return Attempt{}, 0, err
	}
	if !until.IsZero() {
		if len(limits) > 0 {
			s.metrics.ThrottleHit(limits[0].Scope())
		}
		return Attempt{}, max(until.Sub(now), time.Millisecond), nil
	}
	a = Attempt{s: s, limits: limits}
	if len(limits) > 0 {
		a.locks = count == limits[0].rule.Free && limits[0].rule.Free > 0
	}
	return a, 0, nil
}

// Succeeded reports that the check passed: the account's keys start
// again, the attempt is given back on the address's.
func (a Attempt) Succeeded(ctx context.Context) {
	if a.s == nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
	for _, l := range a.limits {
		var err error
		switch l.success {
		case clearKey:
			err = a.s.store.DeleteThrottle(ctx, l.key)
		case giveBack:
			err = a.s.store.ReturnThrottle(ctx, l.key, l.rule)
		}
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			a.s.log.Error("throttle after success", "err", err)
		}
	}
}

// KnownBrowserFor: a browser that signed in as a user stays known for
// this long after its last sign-in.
const KnownBrowserFor = 180 * 24 * time.Hour

// Known reports whether the browser whose device cookie digests to
// deviceMAC has signed in as the user before (a known-browser record, or
// a trusted-device record, live or expired), and returns its id for
// PasswordLimits ("" when it is not known).
func (s *Service) Known(ctx context.Context, userID string, deviceMAC []byte) (string, error) {
	if userID == "" || IsStandIn(userID) || len(deviceMAC) == 0 {
		return "", nil
	}
	kb, err := s.store.GetKnownBrowser(ctx, userID, deviceMAC)
	switch {
	case err == nil && !s.now().After(kb.ExpiresAt):
	case err == nil || errors.Is(err, storage.ErrNotFound):
		if _, err := s.store.GetTrustedDevice(ctx, userID, deviceMAC); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				return "", nil
			}
			return "", err
		}
	default:
		return "", err
	}
	return hex.EncodeToString(deviceMAC[:12]), nil
}

// RememberBrowser records that the browser whose device cookie digests to
// deviceMAC signed in as the user (Known from now on, for
// KnownBrowserFor after its latest sign-in), and reports whether the
// browser was new to the user: never used, or not for KnownBrowserFor
// (decided once, however many sign-ins race).
func (s *Service) RememberBrowser(ctx context.Context, userID string, deviceMAC []byte) (bool, error) {
	if userID == "" || IsStandIn(userID) || len(deviceMAC) == 0 {
		return false, nil
	}
	now := s.now()
	return s.store.TouchKnownBrowser(ctx, storage.KnownBrowser{UserID: userID, TokenHash: deviceMAC, SeenAt: now, ExpiresAt: now.Add(KnownBrowserFor)})
}
