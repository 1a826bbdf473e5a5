package login

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/login/flow"
	"github.com/latchkey/latchkey/login/i18n"
	"github.com/latchkey/latchkey/storage"
)

// TestReasonMessages: every reason the policy gives is said as a whole
// sentence of the catalogue, for a code and for a passkey (SPEC 1.5), in
// the words the policy tests and the seeds use; the password page says
// only why the password is asked again.
func TestReasonMessages(t *testing.T) {
	h := newTestHandler(t)
	h.cfg.Policy = flow.Policy{TrustedDevice: 30 * 24 * time.Hour, Reverify: 30 * 24 * time.Hour}
	en := i18n.MustLoad().Localizer(i18n.English)
	for r, clause := range map[flow.Reason]string{
		flow.ReasonNewBrowser:       "this browser is new",
		flow.ReasonNotTrusted:       "this browser is not trusted",
		flow.ReasonTrustExpired:     "this browser's trust (30 days) has ended",
		flow.ReasonReverify:         "it has been 30 days since your last code",
		flow.ReasonFreshRequested:   "this product asks for a fresh code",
		flow.ReasonStepUp:           "this product asks for a second step",
		flow.ReasonIdle:             "you have been away for a while",
		flow.ReasonSessionClock:     "your session could not be verified",
		flow.ReasonPromptLogin:      "this product asks you to sign in again",
		flow.ReasonMaxAge:           "this product asks you to sign in again",
		flow.ReasonHintMismatch:     "this product expects a different account",
		flow.ReasonSSO:              "your organisation signs you in",
		flow.ReasonBackupUsed:       "you used your backup code",
		flow.ReasonFirstBackupCode:  "this is your first sign-in",
		flow.ReasonPasskeyRequested: "this product asks for a passkey",
	} {
		for kind, lead := range map[reasonKind]string{askCode: "We ask for a code because ", askPasskey: "We ask for a passkey because "} {
			m, ok := h.reasonMsg(kind, r)
			if got := en.Msg(m); !ok || got != lead+clause+"." {
				t.Errorf("%s: %q, want %q", r, got, lead+clause+".")
			}
		}
		m, ok := h.reasonMsg(askPassword, r)
		want := r == flow.ReasonIdle || r == flow.ReasonPromptLogin || r == flow.ReasonMaxAge
		if ok != want || (ok && !strings.HasPrefix(en.Msg(m), "We ask for your password because "+clause)) {
			t.Errorf("password page, %s: %v %q", r, ok, en.Msg(m))
		}
	}
	// An identity reconfirmation of the account pages says so, in the
	// seeds' words, instead of "this product asks you to sign in again".
	h.cfg.ReconfirmClientID = "account"
	reconfirm := &signin{ar: storage.AuthRequest{ClientID: "account", Prompt: []string{"login"}, ACRValues: []string{flow.ACRMFAFresh}},
		req: flow.Requirement{Reasons: []flow.Reason{flow.ReasonPromptLogin, flow.ReasonFreshRequested, flow.ReasonNotTrusted}}}
	for kind, want := range map[reasonKind][]string{
		askPassword: {"To reconfirm your identity, enter your password."},
		askCode:     {"To reconfirm your identity, enter a code.", "We ask for a code because this browser is not trusted."},
		askPasskey:  {"To reconfirm your identity, use your passkey.", "We ask for a passkey because this browser is not trusted."},
	} {
		var got []string
		for _, m := range h.reasonsFor(kind, reconfirm) {
			got = append(got, en.Msg(m))
		}
		if !slices.Equal(got, want) {
			t.Errorf("reconfirmation, kind %d: %q, want %q", kind, got, want)
		}
	}
	// The same reasons for another product are said as usual.
	other := *reconfirm
	other.ar.ClientID = "shop"
	if got := h.reasonsFor(askPassword, &other); len(got) != 1 || !strings.Contains(en.Msg(got[0]), "this product asks you to sign in again") {
		t.Errorf("another product's prompt=login: %v", got)
	}

	// Several reasons: one sentence each, each once.
	got := h.reasonMsgs(askCode, []flow.Reason{flow.ReasonIdle, flow.ReasonNotTrusted, flow.ReasonPromptLogin, flow.ReasonMaxAge})
	if len(got) != 3 {
		t.Errorf("reasons: %v", got)
	}
}
