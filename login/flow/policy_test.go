package flow

import (
	"slices"
	"testing"
	"time"
)

var (
	t0  = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC) // after every rollout date
	day = 24 * time.Hour
	sec = time.Second
)

func testPolicy() Policy {
	return Policy{
		SessionIdle:    24 * time.Hour,
		StaySignedIn:   30 * day,
		TrustedDevice:  30 * day,
		Reverify:       30 * day,
		RolloutDefault: time.Date(2025, 4, 2, 0, 0, 0, 0, time.UTC),
		RolloutRegions: map[string]time.Time{
			"EU":   time.Date(2025, 4, 9, 0, 0, 0, 0, time.UTC),
			"APAC": time.Date(2025, 4, 16, 0, 0, 0, 0, time.UTC),
		},
	}
}

func dur(d time.Duration) *time.Duration { return &d }

// u is an email-code user; ut one with an authenticator app.
var (
	u   = User{ID: "u1", HasPassword: true}
	ut  = User{ID: "u1", HasPassword: true, HasTOTP: true}
	sso = User{ID: "u1", OrgID: "org1"}
)

// sessionSeen is a password+code session of u1 last seen ago before now.
func sessionSeen(now time.Time, ago time.Duration) Session {
	return Session{ID: "s1", UserID: "u1", CreatedAt: now.Add(-ago - time.Hour), LastSeenAt: now.Add(-ago),
		AuthTime: now.Add(-ago - time.Hour), SecondFactorAt: now.Add(-ago - time.Hour), AMR: []string{"pwd", "otp", "mfa"}}
}

// passwordDone is the progress right after the password step.
var passwordDone = Progress{UserID: "u1", PasswordAt: t0.Add(-time.Minute)}

func TestDecide(t *testing.T) {
	p := testPolicy()
	type want struct {
		step     Step
		err      string
		reasons  []Reason
		acr      string
		amr      []string
		useSess  bool
		devTrust bool
		method   Method  // "": not checked
		pkOnly   bool    // PasskeyRequired
		policy   *Policy // nil: the default policy
	}
	longTrust := p
	longTrust.TrustedDevice = 90 * day
	cases := []struct {
		name  string
		facts Facts
		want  want
	}{
		// --- identification ---
		{"no session: identify", Facts{Now: t0}, want{step: StepIdentify, reasons: []Reason{ReasonNewBrowser}}},
		{"no session, prompt=none: login_required", Facts{Now: t0, Request: Request{Prompt: []string{"none"}}},
			want{step: StepFail, err: ErrLoginRequired, reasons: []Reason{ReasonNewBrowser}}},
		{"identified: password", Facts{Now: t0, Progress: Progress{UserID: "u1"}, User: u},
			want{step: StepPassword, reasons: []Reason{ReasonNewBrowser}}},
		{"disabled user fails closed", Facts{Now: t0, Progress: passwordDone, User: User{ID: "u1", Disabled: true}},
			want{step: StepFail, err: ErrAccessDenied}},
		{"facts for another user fail closed", Facts{Now: t0, Progress: passwordDone, User: User{ID: "u2"}},
			want{step: StepFail, err: ErrAccessDenied}},

		// --- session idle: 24h valid, 24h+1s not ---
		{"session idle exactly 24h is reused", Facts{Now: t0, Session: sessionSeen(t0, 24*time.Hour), User: u},
			want{step: StepDone, acr: ACRMFA, amr: []string{"pwd", "otp", "mfa"}, useSess: true}},
		{"session idle 24h+1s ends", Facts{Now: t0, Session: sessionSeen(t0, 24*time.Hour+sec), User: u},
			want{step: StepIdentify, reasons: []Reason{ReasonIdle}}},
		{"session idle 24h+1s, prompt=none", Facts{Now: t0, Session: sessionSeen(t0, 24*time.Hour+sec), User: u, Request: Request{Prompt: []string{"none"}}},
			want{step: StepFail, err: ErrLoginRequired, reasons: []Reason{ReasonIdle}}},
		{"stay signed in survives 24h+1s", Facts{Now: t0, Session: staySignedIn(sessionSeen(t0, 24*time.Hour+sec)), User: ut},
			want{step: StepDone, acr: ACRMFA, amr: []string{"pwd", "otp", "mfa"}, useSess: true}},
		{"stay signed in, idle exactly 30d but factor 30d+1h ago: reverify", Facts{Now: t0, Session: staySignedIn(sessionSeen(t0, 30*day)), User: ut},
			want{step: StepSecondFactor, reasons: []Reason{ReasonReverify}, useSess: true}},
		{"stay signed in idle 30d+1s ends", Facts{Now: t0, Session: staySignedIn(sessionSeen(t0, 30*day+sec)), User: ut},
			want{step: StepIdentify, reasons: []Reason{ReasonIdle}}},
		{"session from the future fails closed", Facts{Now: t0, Session: sessionSeen(t0, -time.Minute), User: u},
			want{step: StepIdentify, reasons: []Reason{ReasonSessionClock}}},
		{"session from the future with prompt=none", Facts{Now: t0, Session: sessionSeen(t0, -sec), User: u, Request: Request{Prompt: []string{"none"}}},
			want{step: StepFail, err: ErrLoginRequired, reasons: []Reason{ReasonSessionClock}}},
		{"session reused with prompt=none", Facts{Now: t0, Session: sessionSeen(t0, time.Hour), User: u, Request: Request{Prompt: []string{"none"}}},
			want{step: StepDone, acr: ACRMFA, amr: []string{"pwd", "otp", "mfa"}, useSess: true}},

		// --- reverify of a reused session: 30d valid, 30d+1s not ---
		{"session second factor exactly 30d ago", Facts{Now: t0, Session: withSF(sessionSeen(t0, time.Hour), t0.Add(-30*day)), User: u},
			want{step: StepDone, acr: ACRMFA, amr: []string{"pwd", "otp", "mfa"}, useSess: true}},
		{"session second factor 30d+1s ago: reverify", Facts{Now: t0, Session: withSF(sessionSeen(t0, time.Hour), t0.Add(-30*day-sec)), User: u},
			want{step: StepSecondFactor, reasons: []Reason{ReasonReverify}, useSess: true}},
		{"reverify with prompt=none: interaction_required", Facts{Now: t0, Session: withSF(sessionSeen(t0, time.Hour), t0.Add(-30*day-sec)), User: u, Request: Request{Prompt: []string{"none"}}},
			want{step: StepFail, err: ErrInteractionRequired, reasons: []Reason{ReasonReverify}, useSess: true}},

		// --- second factor after the password ---
		{"password done, new browser: code", Facts{Now: t0, Progress: passwordDone, User: u},
			want{step: StepSecondFactor, reasons: []Reason{ReasonNewBrowser}}},
		{"password done, expired session of same user: not trusted", Facts{Now: t0, Progress: passwordDone, User: u, Session: sessionSeen(t0, 2*day)},
			want{step: StepSecondFactor, reasons: []Reason{ReasonNotTrusted}}},
		{"password and code done: remember (trust) offered", Facts{Now: t0, Progress: codeDone(MethodEmail), User: u},
			want{step: StepRemember}},
		{"password and TOTP done: stay signed in offered", Facts{Now: t0, Progress: codeDone(MethodTOTP), User: ut},
			want{step: StepRemember}},
		{"email code done and remembered: done mfa:fresh", Facts{Now: t0, Progress: remembered(codeDone(MethodEmail)), User: u},
			want{step: StepDone, acr: ACRMFAFresh, amr: []string{"pwd", "otp", "mfa"}}},
		{"backup code used: show the replacement", Facts{Now: t0, Progress: codeDone(MethodBackup), User: u},
			want{step: StepShowBackupCode, reasons: []Reason{ReasonBackupUsed}}},
		{"backup code shown: done", Facts{Now: t0, Progress: shown(codeDone(MethodBackup)), User: u},
			want{step: StepDone, acr: ACRMFAFresh, amr: []string{"pwd", "otp", "mfa"}}},
		{"first sign-in shows the first backup code", Facts{Now: t0, Progress: remembered(codeDone(MethodEmail)), User: needsBackup(u)},
			want{step: StepShowBackupCode, reasons: []Reason{ReasonFirstBackupCode}}},

		// --- trusted device: 30d valid, 30d+1s not ---
		{"trusted device skips the code", Facts{Now: t0, Progress: passwordDone, User: u, Device: device("u1", t0.Add(-10*day))},
			want{step: StepDone, acr: ACRMFA, amr: []string{"pwd"}, devTrust: true}},
		{"trusted exactly 30d ago still skips", Facts{Now: t0, Progress: passwordDone, User: u, Device: device("u1", t0.Add(-30*day))},
			want{step: StepDone, acr: ACRMFA, amr: []string{"pwd"}, devTrust: true}},
		{"trusted 30d+1s ago: code", Facts{Now: t0, Progress: passwordDone, User: u, Device: device("u1", t0.Add(-30*day-sec))},
			want{step: StepSecondFactor, reasons: []Reason{ReasonTrustExpired}}},
		{"known browser, not trusted", Facts{Now: t0, Progress: passwordDone, User: u, Device: Device{Seen: true}},
			want{step: StepSecondFactor, reasons: []Reason{ReasonNotTrusted}}},
		{"max_age=0 on a same-second session", Facts{Now: t0, Session: sessionSeen(t0, 0), User: u, Request: Request{MaxAge: dur(0)}},
			want{step: StepPassword, reasons: []Reason{ReasonMaxAge}}},
		{"device trusted for another user: code", Facts{Now: t0, Progress: passwordDone, User: u, Device: device("u2", t0.Add(-day))},
			want{step: StepSecondFactor, reasons: []Reason{ReasonNewBrowser}}},
		{"device trusted in the future fails closed", Facts{Now: t0, Progress: passwordDone, User: u, Device: device("u1", t0.Add(sec))},
			want{step: StepSecondFactor, reasons: []Reason{ReasonNotTrusted}}},
		{"trusted device does not skip the authenticator", Facts{Now: t0, Progress: passwordDone, User: ut, Device: device("u1", t0.Add(-day))},
			want{step: StepSecondFactor, reasons: []Reason{ReasonNotTrusted}}},
		{"longer trust still needs the code every 30d (reverify)", Facts{Now: t0, Progress: passwordDone, User: u,
			Device: Device{UserID: "u1", CreatedAt: t0.Add(-60 * day), ExpiresAt: t0.Add(30 * day), LastSecondFactorAt: t0.Add(-30*day - sec)}},
			want{step: StepSecondFactor, reasons: []Reason{ReasonReverify}, policy: &longTrust}},
		{"longer trust, code exactly 30d ago: skips", Facts{Now: t0, Progress: passwordDone, User: u,
			Device: Device{UserID: "u1", CreatedAt: t0.Add(-60 * day), ExpiresAt: t0.Add(30 * day), LastSecondFactorAt: t0.Add(-30 * day)}},
			want{step: StepDone, acr: ACRMFA, amr: []string{"pwd"}, devTrust: true, policy: &longTrust}},
		{"sign-out then sign-in on a trusted device: password only", Facts{Now: t0, Progress: passwordDone, User: u, Device: device("u1", t0.Add(-day))},
			want{step: StepDone, acr: ACRMFA, amr: []string{"pwd"}, devTrust: true}},

		// --- regional rollout: -1s password only, +0s code ---
		{"rollout default -1s: password only", Facts{Now: rolloutDefault().Add(-sec), Progress: pwdAt(rolloutDefault().Add(-sec)), User: u},
			want{step: StepDone, acr: ACRPwd, amr: []string{"pwd"}}},
		{"rollout default +0s: code", Facts{Now: rolloutDefault(), Progress: pwdAt(rolloutDefault()), User: u},
			want{step: StepSecondFactor, reasons: []Reason{ReasonNewBrowser}}},
		{"EU before its date though default passed: password only", Facts{Now: euDate().Add(-sec), Progress: pwdAt(euDate().Add(-sec)), User: inRegion(u, "EU")},
			want{step: StepDone, acr: ACRPwd, amr: []string{"pwd"}}},
		{"EU on its date: code", Facts{Now: euDate(), Progress: pwdAt(euDate()), User: inRegion(u, "EU")},
			want{step: StepSecondFactor, reasons: []Reason{ReasonNewBrowser}}},
		{"unknown region uses default", Facts{Now: rolloutDefault(), Progress: pwdAt(rolloutDefault()), User: inRegion(u, "MARS")},
			want{step: StepSecondFactor, reasons: []Reason{ReasonNewBrowser}}},
		{"before rollout, authenticator users still need it", Facts{Now: rolloutDefault().Add(-sec), Progress: pwdAt(rolloutDefault().Add(-sec)), User: ut},
			want{step: StepSecondFactor, reasons: []Reason{ReasonNewBrowser}}},
		{"before rollout, product asking mfa steps up", Facts{Now: rolloutDefault().Add(-sec), Progress: pwdAt(rolloutDefault().Add(-sec)), User: u, Request: Request{ACRValues: []string{ACRMFA}}},
			want{step: StepSecondFactor, reasons: []Reason{ReasonStepUp}}},

		// --- acr_values ---
		{"mfa:fresh on a reused session: step up", Facts{Now: t0, Session: sessionSeen(t0, time.Hour), User: u, Request: Request{ACRValues: []string{ACRMFAFresh}}},
			want{step: StepSecondFactor, reasons: []Reason{ReasonFreshRequested}, useSess: true}},
		{"mfa:fresh with prompt=none: interaction_required", Facts{Now: t0, Session: sessionSeen(t0, time.Hour), User: u, Request: Request{Prompt: []string{"none"}, ACRValues: []string{ACRMFAFresh}}},
			want{step: StepFail, err: ErrInteractionRequired, reasons: []Reason{ReasonFreshRequested}, useSess: true}},
		{"mfa:fresh on a trusted device: step up", Facts{Now: t0, Progress: passwordDone, User: u, Device: device("u1", t0.Add(-day)), Request: Request{ACRValues: []string{ACRMFAFresh}}},
			want{step: StepSecondFactor, reasons: []Reason{ReasonFreshRequested}}},
		{"step-up done on a reused session: session amr plus otp", Facts{Now: t0, Session: sessionSeen(t0, time.Hour), User: u,
			Progress: Progress{UserID: "u1", SecondFactorAt: t0, SecondFactorMethod: MethodEmail, RememberChosen: true}, Request: Request{ACRValues: []string{ACRMFAFresh}}},
			want{step: StepDone, acr: ACRMFAFresh, amr: []string{"pwd", "otp", "mfa"}, useSess: true}},
		{"mfa satisfied by mfa:fresh returns the requested value", Facts{Now: t0, Progress: remembered(codeDone(MethodEmail)), User: u, Request: Request{ACRValues: []string{ACRMFA}}},
			want{step: StepDone, acr: ACRMFA, amr: []string{"pwd", "otp", "mfa"}}},
		{"first satisfied value in request order", Facts{Now: t0, Progress: remembered(codeDone(MethodEmail)), User: u, Request: Request{ACRValues: []string{ACRSSO, ACRMFAFresh, ACRPwd}}},
			want{step: StepDone, acr: ACRMFAFresh, amr: []string{"pwd", "otp", "mfa"}}},
		{"pwd requested before rollout: pwd", Facts{Now: rolloutDefault().Add(-sec), Progress: pwdAt(rolloutDefault().Add(-sec)), User: u, Request: Request{ACRValues: []string{ACRPwd}}},
			want{step: StepDone, acr: ACRPwd, amr: []string{"pwd"}}},
		{"unknown acr values are ignored", Facts{Now: t0, Session: sessionSeen(t0, time.Hour), User: u, Request: Request{ACRValues: []string{"urn:other:gold"}}},
			want{step: StepDone, acr: ACRMFA, amr: []string{"pwd", "otp", "mfa"}, useSess: true}},
		{"client default acr applies", Facts{Now: t0, Session: sessionSeen(t0, time.Hour), User: u, Request: Request{ClientDefaultACR: ACRMFAFresh}},
			want{step: StepSecondFactor, reasons: []Reason{ReasonFreshRequested}, useSess: true}},
		{"sso requested for a local user: access_denied", Facts{Now: t0, Session: sessionSeen(t0, time.Hour), User: u, Request: Request{ACRValues: []string{ACRSSO}}},
			want{step: StepFail, err: ErrAccessDenied, useSess: true}},

		// --- prompt and max_age ---
		{"prompt=login on a valid session: password", Facts{Now: t0, Session: sessionSeen(t0, time.Hour), User: u, Request: Request{Prompt: []string{"login"}}},
			want{step: StepPassword, reasons: []Reason{ReasonPromptLogin}}},
		{"prompt=login, password re-entered: code again on an untrusted browser", Facts{Now: t0, Session: sessionSeen(t0, time.Hour), User: u, Progress: passwordDone, Request: Request{Prompt: []string{"login"}}},
			want{step: StepSecondFactor, reasons: []Reason{ReasonNotTrusted}}},
		{"max_age not exceeded", Facts{Now: t0, Session: sessionSeen(t0, 0), User: u, Request: Request{MaxAge: dur(time.Hour)}},
			want{step: StepDone, acr: ACRMFA, amr: []string{"pwd", "otp", "mfa"}, useSess: true}},
		{"max_age exceeded by 1s", Facts{Now: t0, Session: sessionSeen(t0, sec), User: u, Request: Request{MaxAge: dur(time.Hour)}},
			want{step: StepPassword, reasons: []Reason{ReasonMaxAge}}},
		{"max_age=0 forces the password", Facts{Now: t0, Session: sessionSeen(t0, 0), User: u, Request: Request{MaxAge: dur(0)}},
			want{step: StepPassword, reasons: []Reason{ReasonMaxAge}}},
		{"max_age exceeded with prompt=none", Facts{Now: t0, Session: sessionSeen(t0, sec), User: u, Request: Request{Prompt: []string{"none"}, MaxAge: dur(time.Hour)}},
			want{step: StepFail, err: ErrLoginRequired, reasons: []Reason{ReasonMaxAge}}},
		{"id_token_hint for another user: identify", Facts{Now: t0, Session: sessionSeen(t0, time.Hour), User: u, Request: Request{IDTokenHintSubject: "u2"}},
			want{step: StepIdentify, reasons: []Reason{ReasonHintMismatch}}},
		{"id_token_hint for another user, prompt=none", Facts{Now: t0, Session: sessionSeen(t0, time.Hour), User: u, Request: Request{Prompt: []string{"none"}, IDTokenHintSubject: "u2"}},
			want{step: StepFail, err: ErrLoginRequired, reasons: []Reason{ReasonHintMismatch}}},
		{"select_account shows the identifier page", Facts{Now: t0, Session: sessionSeen(t0, time.Hour), User: u, Request: Request{Prompt: []string{"select_account"}}},
			want{step: StepIdentify}},
		{"select_account, same user picked: session reused", Facts{Now: t0, Session: sessionSeen(t0, time.Hour), User: u, Progress: Progress{UserID: "u1"}, Request: Request{Prompt: []string{"select_account"}}},
			want{step: StepDone, acr: ACRMFA, amr: []string{"pwd", "otp", "mfa"}, useSess: true}},
		{"prompt=none never shows the backup code", Facts{Now: t0, Session: sessionSeen(t0, time.Hour), User: needsBackup(u), Request: Request{Prompt: []string{"none"}}},
			want{step: StepDone, acr: ACRMFA, amr: []string{"pwd", "otp", "mfa"}, useSess: true}},

		// --- passkeys ---
		{"passkey user: the second step offers the passkey first", Facts{Now: t0, Progress: passwordDone, User: up},
			want{step: StepSecondFactor, reasons: []Reason{ReasonNewBrowser}, method: MethodPasskey}},
		{"passkey and authenticator: the passkey first", Facts{Now: t0, Progress: passwordDone, User: withTOTP(up)},
			want{step: StepSecondFactor, reasons: []Reason{ReasonNewBrowser}, method: MethodPasskey}},
		{"passwordless passkey with user verification: done, phr", Facts{Now: t0, Progress: passkeyAlone(true, false), User: up},
			want{step: StepDone, acr: ACRPhishingResistant, amr: []string{"hwk", "user", "pin", "mfa"}}},
		{"passwordless synced passkey: swk", Facts{Now: t0, Progress: passkeyAlone(true, true), User: up},
			want{step: StepDone, acr: ACRPhishingResistant, amr: []string{"swk", "user", "pin", "mfa"}}},
		{"passkey without user verification does not stand for the password", Facts{Now: t0, Progress: passkeyAlone(false, false), User: up},
			want{step: StepPassword, reasons: []Reason{ReasonNewBrowser}, method: MethodPasskey}},
		{"passkey as the second step: no trust offered, done phr", Facts{Now: t0, Progress: passkeySecond(false), User: up},
			want{step: StepDone, acr: ACRPhishingResistant, amr: []string{"pwd", "hwk", "user", "mfa"}}},
		{"passkey as the second step with user verification", Facts{Now: t0, Progress: passkeySecond(true), User: up},
			want{step: StepDone, acr: ACRPhishingResistant, amr: []string{"pwd", "hwk", "user", "pin", "mfa"}}},
		{"passkey answers mfa:fresh with mfa:fresh", Facts{Now: t0, Progress: passkeySecond(true), User: up, Request: Request{ACRValues: []string{ACRMFAFresh}}},
			want{step: StepDone, acr: ACRMFAFresh, amr: []string{"pwd", "hwk", "user", "pin", "mfa"}}},
		{"phr on a reused password+code session: step up to a passkey", Facts{Now: t0, Session: sessionSeen(t0, time.Hour), User: up, Request: Request{ACRValues: []string{ACRPhishingResistant}}},
			want{step: StepSecondFactor, reasons: []Reason{ReasonPasskeyRequested}, useSess: true, method: MethodPasskey, pkOnly: true}},
		{"phr on a session made by a passkey: still a passkey in this sign-in", Facts{Now: t0, Session: passkeySession(t0), User: up, Request: Request{ACRValues: []string{ACRPhishingResistant}}},
			want{step: StepSecondFactor, reasons: []Reason{ReasonPasskeyRequested}, useSess: true, method: MethodPasskey, pkOnly: true}},
		{"phr after a fresh email code: still a passkey", Facts{Now: t0, Progress: remembered(codeDone(MethodEmail)), User: up, Request: Request{ACRValues: []string{ACRPhishingResistant}}},
			want{step: StepSecondFactor, reasons: []Reason{ReasonPasskeyRequested}, method: MethodPasskey, pkOnly: true}},
		{"phr on a trusted device: a passkey", Facts{Now: t0, Progress: passwordDone, User: up, Device: device("u1", t0.Add(-day)), Request: Request{ACRValues: []string{ACRPhishingResistant}}},
			want{step: StepSecondFactor, reasons: []Reason{ReasonPasskeyRequested}, method: MethodPasskey, pkOnly: true}},
		{"phr met by a step-up passkey on a reused session", Facts{Now: t0, Session: sessionSeen(t0, time.Hour), User: up,
			Progress: Progress{UserID: "u1", SecondFactorAt: t0, SecondFactorMethod: MethodPasskey, Passkey: Passkey{At: t0}}, Request: Request{ACRValues: []string{ACRPhishingResistant}}},
			want{step: StepDone, acr: ACRPhishingResistant, amr: []string{"pwd", "otp", "mfa", "hwk", "user"}, useSess: true}},
		{"phr with prompt=none: interaction_required", Facts{Now: t0, Session: sessionSeen(t0, time.Hour), User: up, Request: Request{Prompt: []string{"none"}, ACRValues: []string{ACRPhishingResistant}}},
			want{step: StepFail, err: ErrInteractionRequired, reasons: []Reason{ReasonPasskeyRequested}, useSess: true, method: MethodPasskey, pkOnly: true}},
		{"phr for a user without a passkey: the password first", Facts{Now: t0, Progress: Progress{UserID: "u1"}, User: u, Request: Request{ACRValues: []string{ACRPhishingResistant}}},
			want{step: StepPassword, reasons: []Reason{ReasonNewBrowser}}},
		{"phr for a user without a passkey, after the password: access_denied", Facts{Now: t0, Progress: passwordDone, User: u, Request: Request{ACRValues: []string{ACRPhishingResistant}}},
			want{step: StepFail, err: ErrAccessDenied, reasons: []Reason{ReasonPasskeyRequested}}},
		{"phr or mfa: an email code will do", Facts{Now: t0, Progress: passwordDone, User: up, Request: Request{ACRValues: []string{ACRPhishingResistant, ACRMFA}}},
			want{step: StepSecondFactor, reasons: []Reason{ReasonNewBrowser, ReasonStepUp}, method: MethodPasskey}},
		{"phr for an sso user: access_denied", Facts{Now: t0, Progress: fedDone([]string{"hwk", "mfa"}), User: trusting(sso), Request: Request{ACRValues: []string{ACRPhishingResistant}}},
			want{step: StepFail, err: ErrAccessDenied}},
		{"sso user: a passkey in the progress changes nothing", Facts{Now: t0, Progress: passkeyAlone(true, false), User: sso},
			want{step: StepUpstream, reasons: []Reason{ReasonSSO}}},
		{"passkey user before the rollout still needs a second step", Facts{Now: rolloutDefault().Add(-sec), Progress: pwdAt(rolloutDefault().Add(-sec)), User: up},
			want{step: StepSecondFactor, reasons: []Reason{ReasonNewBrowser}, method: MethodPasskey}},
		{"session made by a passkey, factor exactly 30d ago: reused", Facts{Now: t0, Session: withSF(passkeySession(t0), t0.Add(-30*day)), User: up},
			want{step: StepDone, acr: ACRMFA, amr: []string{"hwk", "user", "pin", "mfa"}, useSess: true}},
		{"session made by a passkey, factor 30d+1s ago: reverify with the passkey", Facts{Now: t0, Session: withSF(passkeySession(t0), t0.Add(-30*day-sec)), User: up},
			want{step: StepSecondFactor, reasons: []Reason{ReasonReverify}, useSess: true, method: MethodPasskey}},
		{"passkey sign-in shows the first backup code", Facts{Now: t0, Progress: passkeyAlone(true, false), User: needsBackup(up)},
			want{step: StepShowBackupCode, reasons: []Reason{ReasonFirstBackupCode}}},
		{"disabled passkey user fails closed", Facts{Now: t0, Progress: passkeyAlone(true, false), User: User{ID: "u1", HasPasskey: true, Disabled: true}},
			want{step: StepFail, err: ErrAccessDenied}},

		// --- SSO ---
		{"sso user: upstream", Facts{Now: t0, Progress: Progress{UserID: "u1"}, User: sso},
			want{step: StepUpstream, reasons: []Reason{ReasonSSO}}},
		{"sso done: acr sso, amr fed", Facts{Now: t0, Progress: fedDone([]string{"mfa", "hwk"}), User: sso},
			want{step: StepDone, acr: ACRSSO, amr: []string{"fed"}}},
		{"sso done, upstream mfa trusted: amr carried", Facts{Now: t0, Progress: fedDone([]string{"mfa", "hwk"}), User: trusting(sso)},
			want{step: StepDone, acr: ACRSSO, amr: []string{"fed", "mfa", "hwk"}}},
		{"sso session reused", Facts{Now: t0, Session: fedSession(t0), User: sso},
			want{step: StepDone, acr: ACRSSO, amr: []string{"fed"}, useSess: true}},
		{"sso session, prompt=login: upstream again", Facts{Now: t0, Session: fedSession(t0), User: sso, Request: Request{Prompt: []string{"login"}}},
			want{step: StepUpstream, reasons: []Reason{ReasonPromptLogin}}},
		{"sso session, no reverify after 30d+1s", Facts{Now: t0, Session: withSF(fedSession(t0), time.Time{}), User: sso},
			want{step: StepDone, acr: ACRSSO, amr: []string{"fed"}, useSess: true}},
		{"sso user ignores rollout and the second step", Facts{Now: rolloutDefault(), Progress: fedDoneAt(rolloutDefault(), nil), User: sso},
			want{step: StepDone, acr: ACRSSO, amr: []string{"fed"}}},
		{"sso user asked for mfa without trusted upstream: access_denied", Facts{Now: t0, Progress: fedDone([]string{"mfa"}), User: sso, Request: Request{ACRValues: []string{ACRMFA}}},
			want{step: StepFail, err: ErrAccessDenied}},
		{"sso user asked for mfa with trusted upstream mfa", Facts{Now: t0, Progress: fedDone([]string{"mfa"}), User: trusting(sso), Request: Request{ACRValues: []string{ACRMFA}}},
			want{step: StepDone, acr: ACRSSO, amr: []string{"fed", "mfa"}}},
		{"sso session, prompt=none, upstream needed", Facts{Now: t0, Session: fedSession(t0), User: sso, Request: Request{Prompt: []string{"none", "login"}}},
			want{step: StepFail, err: ErrLoginRequired, reasons: []Reason{ReasonPromptLogin}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pol := p
			if tc.want.policy != nil {
				pol = *tc.want.policy
			}
			got := Decide(pol, tc.facts)
			if got.Step != tc.want.step || got.Error != tc.want.err {
				t.Fatalf("step = %s %q, want %s %q (reasons %v)", got.Step, got.Error, tc.want.step, tc.want.err, got.Reasons)
			}
			if !slices.Equal(got.Reasons, tc.want.reasons) {
				t.Errorf("reasons = %v, want %v", got.Reasons, tc.want.reasons)
			}
			if got.UseSession != tc.want.useSess {
				t.Errorf("UseSession = %v, want %v", got.UseSession, tc.want.useSess)
			}
			if got.DeviceTrusted != tc.want.devTrust {
				t.Errorf("DeviceTrusted = %v, want %v", got.DeviceTrusted, tc.want.devTrust)
			}
			if tc.want.method != "" && got.Method != tc.want.method {
				t.Errorf("Method = %s, want %s", got.Method, tc.want.method)
			}
			if got.PasskeyRequired != tc.want.pkOnly {
				t.Errorf("PasskeyRequired = %v, want %v", got.PasskeyRequired, tc.want.pkOnly)
			}
			if got.ACR != tc.want.acr || !slices.Equal(got.AMR, tc.want.amr) {
				t.Errorf("acr/amr = %q %v, want %q %v", got.ACR, got.AMR, tc.want.acr, tc.want.amr)
			}
			if got.Step == StepDone && got.AuthTime.IsZero() {
				t.Errorf("done without auth_time")
			}
		})
	}
}

// TestReverifyDue: the one re-verification rule, at its boundaries. The
// window counts from the second factor, or from the password when there
// is none; it is inclusive; a base in the future fails closed.
func TestReverifyDue(t *testing.T) {
	pwdOTP := []string{"pwd", "otp", "mfa"}
	for _, tc := range []struct {
		name     string
		reverify time.Duration
		sf, auth time.Time
		amr      []string
		want     bool
	}{
		{"second factor exactly 30d ago", 30 * day, t0.Add(-30 * day), t0.Add(-40 * day), pwdOTP, false},
		{"second factor 30d+1s ago", 30 * day, t0.Add(-30*day - sec), t0.Add(-40 * day), pwdOTP, true},
		{"second factor now", 30 * day, t0, t0, pwdOTP, false},
		{"second factor 1s in the future fails closed", 30 * day, t0.Add(sec), t0.Add(-day), pwdOTP, true},
		{"second factor far in the future fails closed", 30 * day, t0.Add(365 * day), t0.Add(-day), pwdOTP, true},
		{"recent second factor wins over an old password", 30 * day, t0.Add(-day), t0.Add(-90 * day), pwdOTP, false},
		{"password only: exactly 30d after the password", 30 * day, time.Time{}, t0.Add(-30 * day), []string{"pwd"}, false},
		{"password only: 30d+1s after the password", 30 * day, time.Time{}, t0.Add(-30*day - sec), []string{"pwd"}, true},
		{"password only, password in the future fails closed", 30 * day, time.Time{}, t0.Add(sec), []string{"pwd"}, true},
		{"neither time: due", 30 * day, time.Time{}, time.Time{}, []string{"pwd"}, true},
		{"federated: never due", 30 * day, time.Time{}, t0.Add(-365 * day), []string{"fed"}, false},
		{"federated with upstream mfa: never due", 30 * day, time.Time{}, t0.Add(-365 * day), []string{"fed", "mfa"}, false},
		{"federated, times in the future: the upstream decides", 30 * day, t0.Add(day), t0.Add(day), []string{AMRFederated}, false},
		{"zero reverify: never due", 0, t0.Add(-365 * day), t0.Add(-365 * day), pwdOTP, false},
		{"zero reverify, future second factor: off is off", 0, t0.Add(day), t0, pwdOTP, false},
		{"negative reverify: never due", -sec, time.Time{}, time.Time{}, nil, false},
		{"one-second window, exactly 1s", sec, t0.Add(-sec), time.Time{}, pwdOTP, false},
		{"one-second window, 1s+1ns", sec, t0.Add(-sec - 1), time.Time{}, pwdOTP, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ReverifyDue(tc.reverify, tc.sf, tc.auth, tc.amr, t0); got != tc.want {
				t.Fatalf("ReverifyDue = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestReverifyDueAgreesWithDecide: the refresh rule and the sign-in rule
// draw the line at the same instant. A session whose second factor
// ReverifyDue calls due makes Decide ask for the factor, and one it calls
// current lets Decide reuse it.
func TestReverifyDueAgreesWithDecide(t *testing.T) {
	p := testPolicy()
	for _, ago := range []time.Duration{-sec, 0, day, 30*day - sec, 30 * day, 30*day + sec, 31 * day} {
		sf := t0.Add(-ago)
		s := withSF(sessionSeen(t0, time.Hour), sf)
		got := Decide(p, Facts{Now: t0, Session: s, User: u})
		asked := got.Step == StepSecondFactor
		if due := ReverifyDue(p.Reverify, sf, s.AuthTime, s.AMR, t0); due != asked {
			t.Errorf("second factor %v ago: ReverifyDue %v, Decide step %s", ago, due, got.Step)
		}
	}
}

func TestDecideOutcomeTimes(t *testing.T) {
	p := testPolicy()
	s := sessionSeen(t0, time.Hour)
	got := Decide(p, Facts{Now: t0, Session: s, User: u})
	if !got.AuthTime.Equal(s.AuthTime) || !got.SecondFactorAt.Equal(s.SecondFactorAt) || got.NewSession {
		t.Errorf("reused session: auth_time %v sf %v new %v", got.AuthTime, got.SecondFactorAt, got.NewSession)
	}
	pr := remembered(codeDone(MethodEmail))
	got = Decide(p, Facts{Now: t0, Progress: pr, User: u})
	if !got.AuthTime.Equal(pr.PasswordAt) || !got.SecondFactorAt.Equal(pr.SecondFactorAt) || !got.NewSession {
		t.Errorf("fresh sign-in: auth_time %v sf %v new %v", got.AuthTime, got.SecondFactorAt, got.NewSession)
	}
	d := device("u1", t0.Add(-day))
	got = Decide(p, Facts{Now: t0, Progress: passwordDone, User: u, Device: d})
	if !got.SecondFactorAt.Equal(d.CreatedAt) {
		t.Errorf("trusted device: sf %v, want %v", got.SecondFactorAt, d.CreatedAt)
	}
	f := fedDoneAt(t0, nil)
	f.UpstreamAuthTime = t0.Add(-time.Hour)
	got = Decide(p, Facts{Now: t0, Progress: f, User: sso})
	if !got.AuthTime.Equal(f.UpstreamAuthTime) || !got.NewSession {
		t.Errorf("sso: auth_time %v, want upstream %v", got.AuthTime, f.UpstreamAuthTime)
	}
}

func TestRememberOffers(t *testing.T) {
	p := testPolicy()
	got := Decide(p, Facts{Now: t0, Progress: codeDone(MethodEmail), User: u})
	if !got.TrustOffered || got.StaySignedInOffered {
		t.Errorf("email: trust %v stay %v", got.TrustOffered, got.StaySignedInOffered)
	}
	got = Decide(p, Facts{Now: t0, Progress: codeDone(MethodTOTP), User: ut})
	if got.TrustOffered || !got.StaySignedInOffered {
		t.Errorf("totp: trust %v stay %v", got.TrustOffered, got.StaySignedInOffered)
	}
	// A passkey offers neither (nor "Trust this device").
	got = Decide(p, Facts{Now: t0, Progress: passkeySecond(true), User: up})
	if got.TrustOffered || got.StaySignedInOffered || got.Step != StepDone {
		t.Errorf("passkey: %+v", got)
	}
	// A backup code offers neither; the replacement is shown instead.
	got = Decide(p, Facts{Now: t0, Progress: codeDone(MethodBackup), User: u})
	if got.TrustOffered || got.StaySignedInOffered || got.Step != StepShowBackupCode {
		t.Errorf("backup: %+v", got)
	}
}

func TestReasonText(t *testing.T) {
	p := testPolicy()
	for r, want := range map[Reason]string{
		ReasonNewBrowser:       "this browser is new",
		ReasonNotTrusted:       "this browser is not trusted",
		ReasonReverify:         "it has been 30 days since your last code",
		ReasonFreshRequested:   "this product asks for a fresh code",
		ReasonPasskeyRequested: "this product asks for a passkey",
	} {
		if got := r.Text(p); got != want {
			t.Errorf("%s: %q, want %q", r, got, want)
		}
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                             "0 seconds",
		sec:                           "1 second",
		29*sec + 900*time.Millisecond: "29 seconds",
		time.Minute:                   "1 minute",
		time.Minute + sec:             "2 minutes", // a wait is rounded up
		90 * time.Minute:              "1 hour 30 minutes",
		time.Hour:                     "1 hour",
		59*time.Minute + 59*sec:       "1 hour",
		2*time.Hour + 59*sec + 1:      "2 hours 1 minute",
		24 * time.Hour:                "1 day", // pages and mails alike
		36 * time.Hour:                "1 day 12 hours",
		day:                           "1 day",
		30 * day:                      "30 days",
		30*day + 5*time.Hour:          "30 days 5 hours",
	} {
		if got := HumanDuration(d); got != want {
			t.Errorf("HumanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestIdleLimit(t *testing.T) {
	p := testPolicy()
	if got := p.IdleLimit(false); got != p.SessionIdle {
		t.Errorf("IdleLimit(false) = %v", got)
	}
	if got := p.IdleLimit(true); got != p.StaySignedIn {
		t.Errorf("IdleLimit(true) = %v", got)
	}
	// "Stay signed in" never shortens a session.
	p.StaySignedIn = time.Hour
	if got := p.IdleLimit(true); got != p.SessionIdle {
		t.Errorf("IdleLimit(true) with a short StaySignedIn = %v", got)
	}
}

// up is a user with a passkey.
var up = User{ID: "u1", HasPassword: true, HasPasskey: true}

func withTOTP(x User) User { x.HasTOTP = true; return x }

// passkeyAlone is a passwordless passkey sign-in.
func passkeyAlone(uv, be bool) Progress {
	return Progress{UserID: "u1", SecondFactorAt: t0, SecondFactorMethod: MethodPasskey,
		Passkey: Passkey{At: t0, UserVerified: uv, BackupEligible: be}}
}

// passkeySecond is a password, then a passkey as the second step.
func passkeySecond(uv bool) Progress {
	return Progress{UserID: "u1", PasswordAt: t0.Add(-time.Minute), SecondFactorAt: t0, SecondFactorMethod: MethodPasskey,
		Passkey: Passkey{At: t0, UserVerified: uv}}
}

// passkeySession is a browser session a passwordless passkey sign-in made.
func passkeySession(now time.Time) Session {
	s := sessionSeen(now, time.Hour)
	s.AMR = []string{"hwk", "user", "pin", "mfa"}
	return s
}

func staySignedIn(s Session) Session         { s.StaySignedIn = true; return s }
func withSF(s Session, at time.Time) Session { s.SecondFactorAt = at; return s }
func needsBackup(x User) User                { x.NeedsBackupCode = true; return x }
func inRegion(x User, r string) User         { x.Region = r; return x }
func trusting(x User) User                   { x.TrustUpstreamMFA = true; return x }
func remembered(pr Progress) Progress        { pr.RememberChosen = true; return pr }
func shown(pr Progress) Progress             { pr.BackupCodeShown = true; return pr }
func rolloutDefault() time.Time              { return testPolicy().RolloutDefault }
func euDate() time.Time                      { return testPolicy().RolloutRegions["EU"] }
func pwdAt(at time.Time) Progress            { return Progress{UserID: "u1", PasswordAt: at} }

func codeDone(m Method) Progress {
	return Progress{UserID: "u1", PasswordAt: t0.Add(-time.Minute), SecondFactorAt: t0, SecondFactorMethod: m}
}

func device(user string, at time.Time) Device {
	return Device{UserID: user, CreatedAt: at, ExpiresAt: at.Add(30 * day), LastSecondFactorAt: at}
}

func fedDone(amr []string) Progress { return fedDoneAt(t0, amr) }

func fedDoneAt(at time.Time, amr []string) Progress {
	return Progress{UserID: "u1", FederatedAt: at, UpstreamAuthTime: at, UpstreamAMR: amr}
}

func fedSession(now time.Time) Session {
	return Session{ID: "s1", UserID: "u1", CreatedAt: now.Add(-40 * day), LastSeenAt: now.Add(-time.Hour),
		AuthTime: now.Add(-40 * day), AMR: []string{"fed"}, Federated: true}
}

// TestSupportedACRsAreTheLadder: every advertised value is one Decide
// knows (an unknown value would be ignored as if not asked for).
func TestSupportedACRsAreTheLadder(t *testing.T) {
	for _, acr := range SupportedACRs {
		if len(wantedACRs(Request{ACRValues: []string{acr}})) != 1 {
			t.Errorf("%s is advertised but not understood", acr)
		}
	}
	if !slices.Contains(SupportedACRs, ACRPhishingResistant) {
		t.Error("phr is not advertised")
	}
}
