package flow

import (
	"fmt"
	"strconv"
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
		return fmt.Sprintf("this browser's trust (%s) has ended", HumanDuration(p.TrustedDevice))
	case ReasonReverify:
		return fmt.Sprintf("it has been %s since your last code", HumanDuration(p.Reverify))
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

// HumanDuration says a duration the way the pages speak: whole days or
// whole hours as such ("30 days", "1 hour"), otherwise minutes rounded up
// (a wait is never understated: 61 s is "2 minutes"), and seconds below a
// minute.
func HumanDuration(d time.Duration) string {
	switch {
	case d >= 24*time.Hour && d%(24*time.Hour) == 0:
		return plural(int(d/(24*time.Hour)), "day")
	case d >= time.Hour && d%time.Hour == 0:
		return plural(int(d/time.Hour), "hour")
	case d >= time.Minute:
		return plural(int((d+time.Minute-1)/time.Minute), "minute")
	}
	return plural(int(d/time.Second), "second")
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}
