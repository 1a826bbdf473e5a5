package flow

import (
	"fmt"
	"time"
)

// Reason says why a step is asked. The value is stable (audit log); Text
// is what the user reads.
type Reason string

// Reasons.
const (
	ReasonNewBrowser      Reason = "new_browser"
	ReasonNotTrusted      Reason = "not_trusted"
	ReasonTrustExpired    Reason = "trust_expired"
	ReasonReverify        Reason = "reverify"
	ReasonFreshRequested  Reason = "fresh_requested"
	ReasonStepUp          Reason = "step_up"
	ReasonIdle            Reason = "idle"
	ReasonSessionClock    Reason = "session_clock"
	ReasonPromptLogin     Reason = "prompt_login"
	ReasonMaxAge          Reason = "max_age"
	ReasonHintMismatch    Reason = "hint_mismatch"
	ReasonSSO             Reason = "sso"
	ReasonBackupUsed      Reason = "backup_used"
	ReasonFirstBackupCode Reason = "first_backup_code"
)

// Text is the sentence shown to the user, completing "We ask for this
// because …".
func (r Reason) Text(p Policy) string {
	switch r {
	case ReasonNewBrowser:
		return "this browser is new"
	case ReasonNotTrusted:
		return "this browser is not trusted"
	case ReasonTrustExpired:
		return fmt.Sprintf("this browser's trust (%s) has ended", humanDuration(p.TrustedDevice))
	case ReasonReverify:
		return fmt.Sprintf("it has been %s since your last code", humanDuration(p.Reverify))
	case ReasonFreshRequested:
		return "this product asks for a fresh code"
	case ReasonStepUp:
		return "this product asks for a second step"
	case ReasonIdle:
		return "you have been away for a while"
	case ReasonSessionClock:
		return "your session could not be verified"
	case ReasonPromptLogin, ReasonMaxAge:
		return "this product asks you to sign in again"
	case ReasonHintMismatch:
		return "this product expects a different account"
	case ReasonSSO:
		return "your organisation signs you in"
	case ReasonBackupUsed:
		return "you used your backup code"
	case ReasonFirstBackupCode:
		return "this is your first sign-in"
	}
	return string(r)
}

// humanDuration renders whole days or hours the way the pages speak.
func humanDuration(d time.Duration) string {
	switch {
	case d >= 24*time.Hour && d%(24*time.Hour) == 0:
		n := int(d / (24 * time.Hour))
		if n == 1 {
			return "1 day"
		}
		return fmt.Sprintf("%d days", n)
	case d >= time.Hour && d%time.Hour == 0:
		n := int(d / time.Hour)
		if n == 1 {
			return "1 hour"
		}
		return fmt.Sprintf("%d hours", n)
	case d >= time.Minute && d%time.Minute == 0:
		n := int(d / time.Minute)
		if n == 1 {
			return "1 minute"
		}
		return fmt.Sprintf("%d minutes", n)
	}
	return d.String()
}
