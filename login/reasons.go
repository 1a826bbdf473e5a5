package login

import (
	"slices"

	"github.com/latchkey/latchkey/login/flow"
	"github.com/latchkey/latchkey/login/i18n"
)

// Why a step is asked (SPEC 1.5): flow.Decide gives the reasons (stable
// values, audited); the pages say each as a whole sentence of the
// catalogue, worded for what is asked — a code, a passkey, the password.

// reasonKind is what the page asks for.
type reasonKind int

const (
	askCode reasonKind = iota
	askPasskey
	askPassword
)

// reasonsFor are the sentences a page asking for kind shows in sign-in
// s. An identity reconfirmation of the account pages (reconfirming) is
// said as one ("To reconfirm your identity, …"), not as a product asking
// to sign in again; any other reason is said as usual.
func (h *Handler) reasonsFor(kind reasonKind, s *signin) []i18n.Msg {
	if !h.reconfirming(s) {
		return h.reasonMsgs(kind, s.req.Reasons)
	}
	out := []i18n.Msg{reconfirmMsgs[kind]}
	if kind == askPassword {
		return out
	}
	for _, r := range s.req.Reasons {
		switch r {
		case flow.ReasonPromptLogin, flow.ReasonMaxAge, flow.ReasonFreshRequested:
		default:
			if m, ok := h.reasonMsg(kind, r); ok && !slices.ContainsFunc(out, func(x i18n.Msg) bool { return x.ID == m.ID }) {
				out = append(out, m)
			}
		}
	}
	return out
}

// reconfirmMsgs say why a reconfirmation asks for each kind.
var reconfirmMsgs = map[reasonKind]i18n.Msg{
	askCode:     i18n.M("reason.reconfirm.code"),
	askPasskey:  i18n.M("reason.reconfirm.passkey"),
	askPassword: i18n.M("reason.reconfirm.password"),
}

// reconfirming: s is an identity reconfirmation of the account pages
// (their client's prompt=login sign-in asking for a fresh factor).
func (h *Handler) reconfirming(s *signin) bool {
	return h.cfg.ReconfirmClientID != "" && s.ar.ClientID == h.cfg.ReconfirmClientID && slices.Contains(s.ar.ACRValues, flow.ACRMFAFresh)
}

// reasonMsgs are the sentences of rs for a page asking for kind, each
// reason once, in order. The password page says only why the password is
// asked again (idle, prompt=login, max_age).
func (h *Handler) reasonMsgs(kind reasonKind, rs []flow.Reason) []i18n.Msg {
	var out []i18n.Msg
	for _, r := range rs {
		m, ok := h.reasonMsg(kind, r)
		if ok && !slices.ContainsFunc(out, func(x i18n.Msg) bool { return x.ID == m.ID }) {
			out = append(out, m)
		}
	}
	return out
}

func (h *Handler) reasonMsg(kind reasonKind, r flow.Reason) (i18n.Msg, bool) {
	p := h.cfg.Policy
	if kind == askPassword {
		switch r {
		case flow.ReasonIdle:
			return i18n.M("reason.password.idle"), true
		case flow.ReasonPromptLogin, flow.ReasonMaxAge:
			return i18n.M("reason.password.sign_in_again"), true
		}
		return i18n.Msg{}, false
	}
	passkey := kind == askPasskey
	pick := func(code, pk i18n.Msg) (i18n.Msg, bool) {
		if passkey {
			return pk, true
		}
		return code, true
	}
	switch r {
	case flow.ReasonNewBrowser:
		return pick(i18n.M("reason.code.new_browser"), i18n.M("reason.passkey.new_browser"))
	case flow.ReasonNotTrusted:
		return pick(i18n.M("reason.code.not_trusted"), i18n.M("reason.passkey.not_trusted"))
	case flow.ReasonTrustExpired:
		return pick(i18n.M("reason.code.trust_expired", "Trust", p.TrustedDevice),
			i18n.M("reason.passkey.trust_expired", "Trust", p.TrustedDevice))
	case flow.ReasonReverify:
		return pick(i18n.M("reason.code.reverify", "Period", p.Reverify), i18n.M("reason.passkey.reverify", "Period", p.Reverify))
	case flow.ReasonFreshRequested:
		return pick(i18n.M("reason.code.fresh_requested"), i18n.M("reason.passkey.fresh_requested"))
	case flow.ReasonStepUp:
		return pick(i18n.M("reason.code.step_up"), i18n.M("reason.passkey.step_up"))
	case flow.ReasonIdle:
		return pick(i18n.M("reason.code.idle"), i18n.M("reason.passkey.idle"))
	case flow.ReasonSessionClock:
		return pick(i18n.M("reason.code.session_clock"), i18n.M("reason.passkey.session_clock"))
	case flow.ReasonPromptLogin, flow.ReasonMaxAge:
		return pick(i18n.M("reason.code.sign_in_again"), i18n.M("reason.passkey.sign_in_again"))
	case flow.ReasonHintMismatch:
		return pick(i18n.M("reason.code.hint_mismatch"), i18n.M("reason.passkey.hint_mismatch"))
	case flow.ReasonSSO:
		return pick(i18n.M("reason.code.sso"), i18n.M("reason.passkey.sso"))
	case flow.ReasonBackupUsed:
		return pick(i18n.M("reason.code.backup_used"), i18n.M("reason.passkey.backup_used"))
	case flow.ReasonFirstBackupCode:
		return pick(i18n.M("reason.code.first_sign_in"), i18n.M("reason.passkey.first_sign_in"))
	case flow.ReasonPasskeyRequested:
		return pick(i18n.M("reason.code.passkey_requested"), i18n.M("reason.passkey.passkey_requested"))
	}
	return i18n.Msg{}, false
}
