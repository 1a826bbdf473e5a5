package flow

import (
	"slices"
	"time"
)

// Authentication context class references (SPEC 6).
const (
	ACRPwd      = "urn:latchkey:acr:pwd"
	ACRMFA      = "urn:latchkey:acr:mfa"
	ACRMFAFresh = "urn:latchkey:acr:mfa:fresh"
	ACRSSO      = "urn:latchkey:acr:sso"
	// ACRPhishingResistant: a passkey in this very sign-in (as the second
	// step, or alone with user verification). Nothing else satisfies it:
	// a product asking for it steps any other sign-in up to a passkey.
	ACRPhishingResistant = "urn:latchkey:acr:phr"
)

// SupportedACRs is what discovery advertises, weakest first (sso, beside
// the local ladder, last).
var SupportedACRs = []string{ACRPwd, ACRMFA, ACRMFAFresh, ACRPhishingResistant, ACRSSO}

// Authentication method references (RFC 8176).
const (
	AMRPassword  = "pwd"
	AMROTP       = "otp"
	AMRMFA       = "mfa"
	AMRFederated = "fed"
	// A passkey (RFC 8176 §2): proof of possession of a hardware-secured
	// key (a passkey bound to its device) or a software-secured one (a
	// passkey the authenticator may sync to other devices: BE flag); the
	// user's presence (UP flag) and the authenticator's own verification
	// of the user, by PIN or biometrics (UV flag; WebAuthn does not say
	// which, so "pin" stands for both).
	AMRHardwareKey = "hwk"
	AMRSoftwareKey = "swk"
	AMRUser        = "user"
	AMRPIN         = "pin"
)

// Method is a second-step method.
type Method string

// Second-step methods. There is no SMS and no phone call, by design.
const (
	MethodEmail  Method = "email"
	MethodTOTP   Method = "totp"
	MethodBackup Method = "backup"
	// MethodPasskey: a WebAuthn assertion (a passkey or security key).
	MethodPasskey Method = "passkey"
)

// Policy is the configurable part of the rules (config policy.*).
type Policy struct {
	SessionIdle    time.Duration // browser session ends after this much inactivity
	StaySignedIn   time.Duration // idle limit after "Stay signed in"
	TrustedDevice  time.Duration // "Trust this device" lasts this long, not sliding
	Reverify       time.Duration // a second factor at least this often
	RolloutDefault time.Time     // mandatory email code from this instant…
	RolloutRegions map[string]time.Time
}

// RolloutDate is when the email code becomes mandatory for a region.
func (p Policy) RolloutDate(region string) time.Time {
	if t, ok := p.RolloutRegions[region]; ok {
		return t
	}
	return p.RolloutDefault
}

// IdleLimit is how long a browser session may go unused: SessionIdle, or
// StaySignedIn for a session whose user chose "Stay signed in" (whichever
// is longer).
func (p Policy) IdleLimit(staySignedIn bool) time.Duration {
	if staySignedIn && p.StaySignedIn > p.SessionIdle {
		return p.StaySignedIn
	}
	return p.SessionIdle
}

// SessionExpired is the inactivity rule of a browser session (SPEC 2): a
// session last seen at lastSeen has ended at now once it was idle longer
// than IdleLimit(staySignedIn). A lastSeen in the future fails closed.
func (p Policy) SessionExpired(lastSeen time.Time, staySignedIn bool, now time.Time) bool {
	return lastSeen.After(now) || now.Sub(lastSeen) > p.IdleLimit(staySignedIn)
}

// Facts is everything the decision depends on. Zero values mean "absent".
type Facts struct {
	Now      time.Time
	Request  Request
	Progress Progress
	// User is the user the sign-in is for: Progress.UserID if set, else the
	// browser session's user. Zero when neither is known.
	User User
	// Session is this browser's session cookie, resolved (any user).
	Session Session
	// Device is this browser's trusted-device record for User, if any.
	Device Device
}

// Request is what the product asked for (OIDC Core 3.1.2.1).
type Request struct {
	Prompt             []string       // none, login, consent, select_account
	MaxAge             *time.Duration // nil when absent
	ACRValues          []string       // requested, treated as essential
	ClientDefaultACR   string         // used when ACRValues names nothing we know
	IDTokenHintSubject string
}

// Progress is what this authorization request has already achieved.
type Progress struct {
	UserID             string
	PasswordAt         time.Time
	SecondFactorAt     time.Time
	SecondFactorMethod Method
	FederatedAt        time.Time // the upstream round trip completed
	UpstreamAuthTime   time.Time // the upstream's auth_time (FederatedAt if absent)
	UpstreamAMR        []string
	RememberChosen     bool // the trust / stay-signed-in question was answered
	BackupCodeShown    bool
	// Passkey is the passkey verified in this sign-in, if any: as the
	// second step (SecondFactorMethod MethodPasskey), or, with user
	// verification, alone, standing for the password too.
	Passkey Passkey
}

// Passkey is what a passkey verified in this sign-in reported.
type Passkey struct {
	At             time.Time // zero: no passkey in this sign-in
	UserVerified   bool      // the authenticator verified the user (UV)
	BackupEligible bool      // the passkey may be synced (BE)
}

// standsForPassword: a passkey that verified its user is two factors in
// one (something you have, unlocked by something you know or are), so it
// needs no password (SPEC 1.3).
func (p Passkey) standsForPassword() bool { return !p.At.IsZero() && p.UserVerified }

// amr is the passkey's RFC 8176 methods.
func (p Passkey) amr() []string {
	out := []string{AMRHardwareKey}
	if p.BackupEligible {
		out[0] = AMRSoftwareKey
	}
	out = append(out, AMRUser) // user presence is always required
	if p.UserVerified {
		out = append(out, AMRPIN)
	}
	return out
}

// User is what the policy needs to know about the user.
type User struct {
	ID               string
	Region           string
	HasPassword      bool
	HasTOTP          bool
	HasPasskey       bool
	NeedsBackupCode  bool
	Disabled         bool
	OrgID            string // set for SSO users
	TrustUpstreamMFA bool   // the organisation carries the upstream amr
}

// Session is the browser session.
type Session struct {
	ID             string
	UserID         string
	CreatedAt      time.Time
	LastSeenAt     time.Time
	AuthTime       time.Time
	SecondFactorAt time.Time
	AMR            []string
	StaySignedIn   bool
	Federated      bool
}

// Device is the trusted-device record of (this browser, User).
type Device struct {
	// Seen: this browser carries a device cookie, so it has completed a
	// second step before (for someone), trusted or not.
	Seen               bool
	UserID             string
	CreatedAt          time.Time // when the email code that earned the trust was verified
	ExpiresAt          time.Time
	LastSecondFactorAt time.Time
}

// Step is the next thing the dispatcher must do.
type Step string

// Steps, in the order a sign-in meets them.
const (
	StepIdentify       Step = "identify"
	StepUpstream       Step = "upstream"
	StepPassword       Step = "password"
	StepSecondFactor   Step = "second_factor"
	StepRemember       Step = "remember"
	StepShowBackupCode Step = "show_backup_code"
	StepDone           Step = "done"
	StepFail           Step = "fail"
)

// OAuth errors a decision can end in (OIDC Core 3.1.2.6).
const (
	ErrLoginRequired       = "login_required"
	ErrInteractionRequired = "interaction_required"
	ErrAccessDenied        = "access_denied"
)

// Requirement is the decision.
type Requirement struct {
	Step Step
	// Error is the OAuth error code when Step is StepFail.
	Error string

	// UserID is who is signing in ("" until identified).
	UserID string
	// UseSession: the browser session stands in for the password.
	UseSession bool
	// Method is the primary second-step method to offer.
	Method Method
	// PasskeyRequired: only a passkey can meet what the product asked
	// (acr phr); the second step offers nothing else.
	PasskeyRequired bool
	// Reasons say why a step is asked (shown to the user, audited).
	Reasons []Reason

	// The outcome, filled when Step is StepDone.
	ACR            string
	AMR            []string
	AuthTime       time.Time
	SecondFactorAt time.Time // the second factor behind this sign-in (zero: none)
	DeviceTrusted  bool      // a trusted device stood in for the second factor
	// NewSession: finishing must start a new browser session (a fresh
	// password or upstream sign-in); otherwise the current one is touched.
	NewSession bool
	// StaySignedInOffered / TrustOffered tell the remember step what to ask.
	TrustOffered        bool
	StaySignedInOffered bool
}

// level is an achieved assurance, ordered for the local ladder.
type level int

const (
	levelNone level = iota
	levelPwd
	levelMFA
	levelMFAFresh
	levelSSO // not on the ladder: compared by satisfies
)

// Decide computes what a sign-in still requires. It is pure: same facts,
// same answer.
func Decide(p Policy, f Facts) Requirement {
	var r Requirement
	now := f.Now
	promptNone := slices.Contains(f.Request.Prompt, "none")
	promptLogin := slices.Contains(f.Request.Prompt, "login")
	selectAccount := slices.Contains(f.Request.Prompt, "select_account")

	sess, sessReasons := usableSession(p, f)

	// Who is signing in? Identified in this request, or the session's user.
	// The session stands in for the password only for its own user.
	switch {
	case f.Progress.UserID != "":
		r.UserID = f.Progress.UserID
		r.UseSession = sess && f.Session.UserID == r.UserID
	case sess && !selectAccount:
		r.UserID = f.Session.UserID
		r.UseSession = true
	}
	if r.UserID == "" {
		r.Reasons = append(r.Reasons, sessReasons...)
		if promptNone {
			return fail(r, ErrLoginRequired)
		}
		r.Step = StepIdentify
		return r
	}
	if f.User.ID != r.UserID || f.User.Disabled {
		// The facts do not describe the user being signed in (deleted or
		// disabled meanwhile): fail closed.
		return fail(r, ErrAccessDenied)
	}

	wanted := wantedACRs(f.Request)
	if f.User.OrgID != "" {
		return decideFederated(f, r, wanted, promptNone, promptLogin)
	}
	if slices.Equal(wanted, []string{ACRSSO}) {
		// Only SSO users can meet a request for sso.
		return fail(r, ErrAccessDenied)
	}

	// --- password ---
	// A passkey that verified its user stands for the password (and is
	// the second factor as well).
	passkeyAlone := f.Progress.Passkey.standsForPassword() && f.Progress.PasswordAt.IsZero()
	passwordDone := !f.Progress.PasswordAt.IsZero() || passkeyAlone
	needPassword := false
	if !passwordDone {
		switch {
		case !r.UseSession:
			needPassword = true
			r.Reasons = append(r.Reasons, sessReasons...)
		case promptLogin:
			needPassword = true
			r.Reasons = append(r.Reasons, ReasonPromptLogin)
		case maxAgeExceeded(f.Request.MaxAge, f.Session.AuthTime, now):
			needPassword = true
			r.Reasons = append(r.Reasons, ReasonMaxAge)
		}
	}
	if needPassword {
		r.UseSession = false
		if promptNone {
			return fail(r, ErrLoginRequired)
		}
		r.Step = StepPassword
		r.Method = primaryMethod(f.User)
		return r
	}
	// The session stands in for the password only when it was not re-entered.
	if passwordDone {
		r.UseSession = false
	}

	// --- second factor ---
	r.Method = primaryMethod(f.User)
	fresh := !f.Progress.SecondFactorAt.IsZero() || passkeyAlone
	sessionSF := r.UseSession && factorCurrent(f.Session.SecondFactorAt, now, p.Reverify)
	deviceSF, deviceReason := trustedDevice(p, f)
	achieved := achievement{level: levelPwd, passkey: !f.Progress.Passkey.At.IsZero()}
	switch {
	case fresh:
		achieved.level = levelMFAFresh
	case sessionSF || deviceSF:
		achieved.level = levelMFA
	}
	// A user who set up an authenticator app or a passkey chose a second
	// step: the regional rollout does not wait for them.
	mandatory := f.User.HasTOTP || f.User.HasPasskey || !now.Before(p.RolloutDate(f.User.Region))

	var sfReasons []Reason
	if mandatory && achieved.level < levelMFA {
		sfReasons = append(sfReasons, secondFactorReason(f, r.UseSession, deviceReason))
	}
	if len(wanted) > 0 && !satisfiesAny(achieved, wanted) {
		switch {
		case onlyPasskeyMeets(wanted):
			// Only a passkey meets the request: a user without one cannot
			// (asked only now, after the password, so the answer tells a
			// stranger nothing about the account).
			if !f.User.HasPasskey {
				r.Reasons = append(r.Reasons, ReasonPasskeyRequested)
				return fail(r, ErrAccessDenied)
			}
			r.PasskeyRequired = true
			r.Method = MethodPasskey
			sfReasons = append(sfReasons, ReasonPasskeyRequested)
		case slices.Contains(wanted, ACRMFAFresh) && !slices.Contains(wanted, ACRMFA) && !slices.Contains(wanted, ACRPwd):
			sfReasons = append(sfReasons, ReasonFreshRequested)
		default:
			sfReasons = append(sfReasons, ReasonStepUp)
		}
	}
	if len(sfReasons) > 0 {
		r.Reasons = append(r.Reasons, sfReasons...)
		if promptNone {
			return fail(r, ErrInteractionRequired)
		}
		r.Step = StepSecondFactor
		return r
	}

	// --- after the second factor: remember this browser? ---
	if fresh && !f.Progress.RememberChosen && !promptNone {
		switch f.Progress.SecondFactorMethod {
		case MethodEmail:
			if !deviceSF {
				r.TrustOffered = true
			}
		case MethodTOTP:
			if !(r.UseSession && f.Session.StaySignedIn) {
				r.StaySignedInOffered = true
			}
		case MethodPasskey:
			// Nothing to offer: a passkey is quicker than any code, so
			// "Trust this device" would spare the user nothing.
		}
		if r.TrustOffered || r.StaySignedInOffered {
			r.Step = StepRemember
			return r
		}
	}

	// --- backup code to show ---
	if !f.Progress.BackupCodeShown && !promptNone {
		if f.Progress.SecondFactorMethod == MethodBackup && fresh {
			r.Reasons = append(r.Reasons, ReasonBackupUsed)
			r.Step = StepShowBackupCode
			return r
		}
		if f.User.NeedsBackupCode {
			r.Reasons = append(r.Reasons, ReasonFirstBackupCode)
			r.Step = StepShowBackupCode
			return r
		}
	}

	// --- done: the outcome ---
	r.Step = StepDone
	r.ACR = chooseACR(achieved, wanted)
	switch {
	case passkeyAlone:
		r.NewSession = true
		r.AuthTime = f.Progress.Passkey.At
		r.AMR = nil
	case passwordDone:
		r.NewSession = true
		r.AuthTime = f.Progress.PasswordAt
		r.AMR = []string{AMRPassword}
	default: // the session's authentication stands
		r.AuthTime = f.Session.AuthTime
		r.AMR = slices.Clone(f.Session.AMR)
		if len(r.AMR) == 0 {
			r.AMR = []string{AMRPassword}
		}
	}
	switch {
	case fresh:
		r.SecondFactorAt = f.Progress.SecondFactorAt
		if r.SecondFactorAt.IsZero() {
			r.SecondFactorAt = f.Progress.Passkey.At
		}
		if achieved.passkey {
			r.AMR = addAMR(r.AMR, f.Progress.Passkey.amr()...)
		}
		if f.Progress.SecondFactorMethod != MethodPasskey && !f.Progress.SecondFactorAt.IsZero() {
			r.AMR = addAMR(r.AMR, AMROTP) // a code: email, authenticator app or backup code
		}
		r.AMR = addAMR(r.AMR, AMRMFA)
	case sessionSF:
		r.SecondFactorAt = f.Session.SecondFactorAt
	case deviceSF:
		r.SecondFactorAt = lastDeviceFactor(f.Device)
		r.DeviceTrusted = true
	}
	return r
}

func decideFederated(f Facts, r Requirement, wanted []string, promptNone, promptLogin bool) Requirement {
	now := f.Now
	upstreamDone := !f.Progress.FederatedAt.IsZero()
	sessionOK := r.UseSession && f.Session.Federated &&
		!promptLogin && !maxAgeExceeded(f.Request.MaxAge, f.Session.AuthTime, now)
	if !upstreamDone && !sessionOK {
		switch {
		case !r.UseSession:
			r.Reasons = append(r.Reasons, ReasonSSO)
		case promptLogin:
			r.Reasons = append(r.Reasons, ReasonPromptLogin)
		case maxAgeExceeded(f.Request.MaxAge, f.Session.AuthTime, now):
			r.Reasons = append(r.Reasons, ReasonMaxAge)
		default:
			r.Reasons = append(r.Reasons, ReasonSSO)
		}
		r.UseSession = false
		if promptNone {
			return fail(r, ErrLoginRequired)
		}
		r.Step = StepUpstream
		return r
	}
	var amr []string
	var authTime time.Time
	if upstreamDone {
		r.UseSession = false
		r.NewSession = true
		authTime = f.Progress.UpstreamAuthTime
		if authTime.IsZero() {
			authTime = f.Progress.FederatedAt
		}
		amr = []string{AMRFederated}
		if f.User.TrustUpstreamMFA {
			amr = addAMR(amr, f.Progress.UpstreamAMR...)
		}
	} else {
		authTime = f.Session.AuthTime
		amr = slices.Clone(f.Session.AMR)
		if !slices.Contains(amr, AMRFederated) {
			amr = append([]string{AMRFederated}, amr...)
		}
	}
	// The upstream decides how strong its sign-in was; we can vouch for a
	// second factor only when the organisation says to trust its amr.
	upstreamMFA := f.User.TrustUpstreamMFA && (slices.Contains(amr, AMRMFA) || slices.Contains(amr, "hwk") || slices.Contains(amr, AMROTP))
	if len(wanted) > 0 {
		ok := slices.Contains(wanted, ACRSSO) || slices.Contains(wanted, ACRPwd) ||
			(upstreamMFA && slices.Contains(wanted, ACRMFA)) ||
			(upstreamMFA && upstreamDone && slices.Contains(wanted, ACRMFAFresh))
		if !ok {
			return fail(r, ErrAccessDenied)
		}
	}
	r.Step = StepDone
	r.ACR = ACRSSO
	r.AMR = amr
	r.AuthTime = authTime
	return r
}

// usableSession reports whether the browser session may stand in for a
// password, and if not, why (when there is a session at all).
func usableSession(p Policy, f Facts) (bool, []Reason) {
	s := f.Session
	if s.ID == "" || s.UserID == "" {
		return false, []Reason{ReasonNewBrowser}
	}
	if s.LastSeenAt.After(f.Now) || s.AuthTime.After(f.Now) || s.CreatedAt.After(f.Now) {
		// A session from the future means a broken clock or a forged row:
		// fail closed.
		return false, []Reason{ReasonSessionClock}
	}
	if p.SessionExpired(s.LastSeenAt, s.StaySignedIn, f.Now) {
		return false, []Reason{ReasonIdle}
	}
	if h := f.Request.IDTokenHintSubject; h != "" && h != s.UserID {
		return false, []Reason{ReasonHintMismatch}
	}
	return true, nil
}

// trustedDevice reports whether this browser's trust stands in for the
// second factor, or why not.
func trustedDevice(p Policy, f Facts) (bool, Reason) {
	d := f.Device
	if d.UserID == "" || d.UserID != f.User.ID {
		return false, ""
	}
	if d.CreatedAt.IsZero() || d.CreatedAt.After(f.Now) || d.LastSecondFactorAt.After(f.Now) {
		return false, ReasonNotTrusted // fail closed on rows from the future
	}
	// Trust earned by an email code does not cover a user who has since
	// made the authenticator app their method (such a change revokes
	// trust anyway; this is the belt to those braces).
	if f.User.HasTOTP {
		return false, ReasonNotTrusted
	}
	expires := d.CreatedAt.Add(p.TrustedDevice)
	if !d.ExpiresAt.IsZero() && d.ExpiresAt.Before(expires) {
		expires = d.ExpiresAt
	}
	if f.Now.After(expires) {
		return false, ReasonTrustExpired
	}
	if !factorCurrent(lastDeviceFactor(d), f.Now, p.Reverify) {
		return false, ReasonReverify
	}
	return true, ""
}

func lastDeviceFactor(d Device) time.Time {
	if d.LastSecondFactorAt.After(d.CreatedAt) {
		return d.LastSecondFactorAt
	}
	return d.CreatedAt
}

// secondFactorReason explains a mandatory second factor in the user's terms.
func secondFactorReason(f Facts, useSession bool, device Reason) Reason {
	switch {
	case device != "":
		return device
	case useSession && !f.Session.SecondFactorAt.IsZero():
		return ReasonReverify
	case f.Session.UserID == f.User.ID && f.Session.ID != "", f.Device.Seen:
		return ReasonNotTrusted
	default:
		return ReasonNewBrowser
	}
}

// ReverifyDue reports whether a grant must prove its second factor again
// (SPEC 6: a second factor at least every reverify). It is the one rule
// behind both Decide (a reused session, a trusted device) and the token
// endpoint's refresh (the OP gets it injected, never importing login):
//
//   - a grant lives on its second factor; one without a second factor
//     (password only, before the rollout) lives on its password, authTime;
//   - a federated grant (amr contains AMRFederated) follows its upstream,
//     which decides how often its users authenticate: never due here;
//   - reverify <= 0 switches the rule off: never due;
//   - the window is inclusive (exactly reverify after the base is still
//     fine, one second more is due), and a base in the future, or no base
//     at all, is due: a clock gone wrong or a forged row fails closed.
func ReverifyDue(reverify time.Duration, secondFactorAt, authTime time.Time, amr []string, now time.Time) bool {
	if reverify <= 0 || slices.Contains(amr, AMRFederated) {
		return false
	}
	base := secondFactorAt
	if base.IsZero() {
		base = authTime
	}
	return !factorCurrent(base, now, reverify)
}

// factorCurrent reports whether a second factor verified at is still
// current: set, not in the future, and at most reverify before now. It is
// the window of ReverifyDue; Decide asks it directly for a reused session
// and a trusted device, because there a missing second factor must not
// fall back to the password's time (a session or device without one does
// not stand in for it) and a zero Policy.Reverify must demand the factor
// rather than switch the rule off.
func factorCurrent(at, now time.Time, reverify time.Duration) bool {
	return !at.IsZero() && !at.After(now) && now.Sub(at) <= reverify
}

// maxAgeExceeded: max_age=0 always demands a new authentication (it is
// what prompt=login becomes, and a same-second session must not pass).
func maxAgeExceeded(maxAge *time.Duration, authTime, now time.Time) bool {
	if maxAge == nil {
		return false
	}
	return *maxAge <= 0 || authTime.IsZero() || now.Sub(authTime) > *maxAge
}

// primaryMethod is the second step offered first: a passkey when the user
// has one (it cannot be phished), then the authenticator app, then the
// email code.
func primaryMethod(u User) Method {
	if u.HasPasskey {
		return MethodPasskey
	}
	if u.HasTOTP {
		return MethodTOTP
	}
	return MethodEmail
}

// wantedACRs returns the requested acr values we know, in request order,
// or the client's default when the request names none we know.
func wantedACRs(req Request) []string {
	var out []string
	for _, v := range req.ACRValues {
		if slices.Contains(SupportedACRs, v) && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	if len(out) == 0 && req.ClientDefaultACR != "" {
		out = []string{req.ClientDefaultACR}
	}
	return out
}

// achievement is what a sign-in reached: a level on the local ladder, and
// whether a passkey was presented in it.
type achievement struct {
	level   level
	passkey bool
}

// onlyPasskeyMeets: no value of wanted can be met without a passkey
// (a local user never meets sso either).
func onlyPasskeyMeets(wanted []string) bool {
	return slices.Contains(wanted, ACRPhishingResistant) &&
		!slices.Contains(wanted, ACRPwd) && !slices.Contains(wanted, ACRMFA) && !slices.Contains(wanted, ACRMFAFresh)
}

func satisfies(a achievement, acr string) bool {
	l := a.level
	switch acr {
	case ACRPwd:
		return l >= levelPwd && l <= levelMFAFresh
	case ACRMFA:
		return l == levelMFA || l == levelMFAFresh
	case ACRMFAFresh:
		return l == levelMFAFresh
	case ACRSSO:
		return l == levelSSO
	case ACRPhishingResistant:
		return l == levelMFAFresh && a.passkey
	}
	return false
}

func satisfiesAny(a achievement, wanted []string) bool {
	for _, w := range wanted {
		if satisfies(a, w) {
			return true
		}
	}
	return false
}

// chooseACR returns the first requested value the sign-in satisfies, or
// the achieved level when nothing was requested.
func chooseACR(a achievement, wanted []string) string {
	for _, w := range wanted {
		if satisfies(a, w) {
			return w
		}
	}
	if satisfies(a, ACRPhishingResistant) {
		return ACRPhishingResistant
	}
	switch a.level {
	case levelMFAFresh:
		return ACRMFAFresh
	case levelMFA:
		return ACRMFA
	case levelSSO:
		return ACRSSO
	}
	return ACRPwd
}

func addAMR(amr []string, vals ...string) []string {
	for _, v := range vals {
		if v != "" && !slices.Contains(amr, v) {
			amr = append(amr, v)
		}
	}
	return amr
}

func fail(r Requirement, code string) Requirement {
	r.Step = StepFail
	r.Error = code
	return r
}
