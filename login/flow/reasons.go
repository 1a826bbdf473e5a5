package flow

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Reason says why a step is asked. The value is stable (audit log). The
// pages say it in the user's language with the catalogue's sentences
// (login/reasons.go, login/i18n); Text is the operator's English (the
// CLI's policy explain).
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
	// ReasonPasskeyRequested: the product asked for acr phr.
	ReasonPasskeyRequested Reason = "passkey_requested"
)

// Text is the reason in English for operators (latchkey policy explain),
// completing "because …". Users read login/i18n's sentences instead.
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
	case ReasonPasskeyRequested:
		return "this product asks for a passkey"
	}
	return string(r)
}

// DurationParts is how a duration is said, on pages, in mails and to
// operators: days, hours and minutes as they are ("1 day", "1 day 12
// hours", "1 hour 30 minutes", "10 minutes"), rounded up to the minute (a
// wait is never understated: 61 s is "2 minutes"), and whole seconds below
// a minute (then only seconds is set). Zero units are left out by the
// speaker. HumanDuration says it in English; login/i18n's
// Localizer.Duration in the user's language.
func DurationParts(d time.Duration) (days, hours, minutes, seconds int) {
	if d < time.Minute {
		return 0, 0, 0, int(d / time.Second)
	}
	d = (d + time.Minute - 1).Truncate(time.Minute)
	days = int(d / (24 * time.Hour))
	d -= time.Duration(days) * 24 * time.Hour
	hours = int(d / time.Hour)
	minutes = int((d - time.Duration(hours)*time.Hour) / time.Minute)
	return days, hours, minutes, 0
}

// HumanDuration says a duration in English for operators (Text, the CLI),
// as DurationParts splits it.
func HumanDuration(d time.Duration) string {
	if d < time.Minute {
		return plural(int(d/time.Second), "second")
	}
	days, hours, minutes, _ := DurationParts(d)
	var parts []string
	for _, p := range []struct {
		n    int
		unit string
	}{{days, "day"}, {hours, "hour"}, {minutes, "minute"}} {
		if p.n > 0 {
			parts = append(parts, plural(p.n, p.unit))
		}
	}
	return strings.Join(parts, " ")
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}
