package creds

import (
	"cmp"
	"context"
	"errors"
	"time"

	"github.com/latchkey/latchkey/login/factor"
	"github.com/latchkey/latchkey/login/i18n"
	"github.com/latchkey/latchkey/login/mail"
	"github.com/latchkey/latchkey/login/mail/outbox"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
)

// Email-code rules (SPEC 1.3): 5 wrong tries kill a code; resends within
// one flow at least 30 s apart; a send budget per account and purpose.
const (
	MaxCodeAttempts = 5
	ResendGap       = 30 * time.Second
)

// Code purposes (storage.EmailCode.Purpose) and mail wordings.
const (
	PurposeSignin    = "signin"
	PurposeReconfirm = "reconfirm" // a wording only: the code's purpose stays signin
	PurposeSignup    = "signup"
	PurposeReset     = "reset"
)

// codeRules are the send budgets, one per purpose, so that an anonymous
// flow can never starve the sign-in (issue #10 §3): a sign-in code is
// asked for only after the right password; a reconfirmation by a signed-in
// user; a password reset and a sign-up by anyone who types the address —
// they have budgets of their own, smaller, which also keep a mailbox from
// being flooded. A code whose mail failed, or was replaced by a newer one
// before it left, does not count (storage.IssueEmailCode).
var codeRules = map[string]storage.CodeRule{
	PurposeSignin:    {Budget: PurposeSignin, Max: 5, Window: 15 * time.Minute, Gap: ResendGap},
	PurposeReconfirm: {Budget: PurposeReconfirm, Max: 5, Window: 15 * time.Minute, Gap: ResendGap},
	PurposeReset:     {Budget: PurposeReset, Max: 3, Window: time.Hour, Gap: ResendGap},
	PurposeSignup:    {Budget: PurposeSignup, Max: 3, Window: time.Hour, Gap: ResendGap},
}

// Recipient is whom a code is for: a user, or a stand-in (StandIn) for an
// address without an account yet. Language and TimeZone are the user's
// (storage.User), for the mail.
type Recipient struct {
	ID, Email, Name    string
	Language, TimeZone string
}

// RecipientOf is the recipient of a user.
func RecipientOf(u storage.User) Recipient {
	return Recipient{ID: u.ID, Email: u.Email, Name: u.Name, Language: u.Language, TimeZone: u.TimeZone}
}

// What goes with a new code.
type codeMail int

const (
	mailCode   codeMail = iota // the code, to the recipient
	mailNone                   // nothing: a stand-in's code, written like any other
	mailExists                 // a sign-up for an address that has an account: the owner hears of it, no code
)

// SendCode queues a new code for (to, purpose, contextID), bound to the
// asking browser, with its mail, in one transaction — if the resend gap
// and the purpose's budget allow. wording says how the mail puts it (a
// purpose; "" = purpose) and picks the budget. It returns a message for
// the user when it did not (the zero Msg when it did).
func (s *Service) SendCode(ctx context.Context, to Recipient, purpose, contextID, wording string, from From) (i18n.Msg, error) {
	return s.issue(ctx, to, purpose, contextID, wording, from, mailCode, nil)
}

// SendStandInCode does what SendCode does, for an address that must not
// get a code (a password reset for an address without an eligible
// account): the same rows, the same budget, the same time — no mail
// leaves. The answer never says which it was.
func (s *Service) SendStandInCode(ctx context.Context, to Recipient, purpose, contextID string, from From) (i18n.Msg, error) {
	return s.issue(ctx, to, purpose, contextID, purpose, from, mailNone, nil)
}

// SendSignupCode queues the code of a sign-up (to is the address's
// stand-in), or, when the address has an account (existing), the same
// rows with a mail to its owner that someone tried to sign up with it —
// at most once an hour; the page says the same either way.
func (s *Service) SendSignupCode(ctx context.Context, to Recipient, flowID string, existing *storage.User, from From) (i18n.Msg, error) {
	if existing == nil {
		return s.issue(ctx, to, PurposeSignup, flowID, PurposeSignup, from, mailCode, nil)
	}
	return s.issue(ctx, to, PurposeSignup, flowID, PurposeSignup, from, mailExists, existing)
}

// signupNoticeEvery: "someone tried to create an account" at most this
// often per account.
const signupNoticeEvery = time.Hour

func (s *Service) issue(ctx context.Context, to Recipient, purpose, contextID, wording string, from From, kind codeMail, owner *storage.User) (i18n.Msg, error) {
	now := s.now()
	if wording == "" {
		wording = purpose
	}
	rule, ok := codeRules[wording]
	if !ok {
		rule = codeRules[purpose]
	}
	code := factor.NewEmailCode()
	expires := now.Add(s.cfg.EmailCodeTTL)
	// A sign-up has no user yet: its stand-in id stays out of the audit trail.
	auditUser := to.ID
	if IsStandIn(auditUser) {
		auditUser = ""
	}
	m := storage.OutboxMessage{Kind: "code", Purpose: wording, Recipient: to.Email,
		UserID: auditUser, CreatedAt: now, GiveUpAt: expires}
	// A sign-up asks whether its address's owner may hear of it again (at
	// most hourly) whether or not the address has an account: one path
	// for both, so neither answer nor timing tells them apart.
	notify := false
	if purpose == PurposeSignup {
		key := "signup-notice:" + to.ID
		if owner != nil && owner.ID != "" {
			key = "signup-notice:" + owner.ID
		}
		if _, err := s.store.UpdateThrottle(ctx, key, func(t *storage.Throttle) error {
			notify = t.LastFailureAt.IsZero() || now.Sub(t.LastFailureAt) >= signupNoticeEvery || t.LastFailureAt.After(now)
			if notify && kind == mailExists {
				t.LastFailureAt = now
				t.Failures++
			}
			return nil
		}); err != nil {
			return i18n.Msg{}, err
		}
	}
	// Every path renders and seals a code mail, whether it is the one
	// that goes out or not, so that none is quicker than the others. The
	// mail is in the recipient's language and time zone.
	l := s.mailLanguage(to.Language, from)
	msg, err := mail.CodeMail{
		Site: s.site, To: cmp.Or(to.Email, "nobody@invalid.example"), Name: to.Name, Code: code, ValidFor: s.cfg.EmailCodeTTL,
		RequestedAt: now, Browser: l.Msg(from.Browser), IP: from.IP, Purpose: wording,
		Lang: l.Lang(), TimeZone: to.TimeZone,
	}.Message()
	if err != nil {
		return i18n.Msg{}, err
	}
	if m, err = outbox.SealRow(s.kr, m, msg); err != nil {
		return i18n.Msg{}, err
	}
	switch {
	case kind == mailCode:
	case kind == mailExists && notify && owner.Email != "":
		m.Kind, m.Purpose, m.Recipient, m.UserID = "signup-exists", "someone tried to sign up", owner.Email, owner.ID
		m.GiveUpAt = now.Add(noticeGiveUp)
		// The owner's language, not the asker's (who may be someone else).
		lo := s.mailLanguage(owner.Language, From{})
		if msg, err = (mail.SignupExistsMail{Site: s.site, To: owner.Email, Name: owner.Name, At: now,
			Browser: lo.Msg(from.Browser), IP: from.IP, Lang: lo.Lang(), TimeZone: owner.TimeZone}).Message(); err != nil {
			return i18n.Msg{}, err
		}
		if m, err = outbox.SealRow(s.kr, m, msg); err != nil {
			return i18n.Msg{}, err
		}
	default:
		// Nothing leaves: the row is written all the same, empty.
		m.State, m.Recipient, m.Sealed = storage.OutboxVoid, "", nil
	}
	res, err := s.store.IssueEmailCode(ctx, storage.EmailCode{
		UserID: to.ID, Purpose: purpose, ContextID: contextID, BrowserHash: from.BrowserHash,
		CodeHash: s.kr.MACString(keyring.PurposeEmailCode, code), CreatedAt: now, ExpiresAt: expires,
	}, m, rule)
	if err != nil {
		return i18n.Msg{}, err
	}
	switch res.Refused {
	case storage.RefusedGap:
		return MsgJustSent(res.RetryAt.Sub(now)), nil
	case storage.RefusedBudget:
		return i18n.M("code.too_many_sent", "Wait", res.RetryAt.Sub(now).Round(time.Second)), nil
	}
	if kind == mailCode {
		s.metrics.EmailCode(wording, "queued")
	}
	s.kick()
	return i18n.Msg{}, nil
}

// CodeDelivery is how the mail of the newest code of (userID, purpose,
// contextID) is doing: DeliveryNone (no live code), DeliverySending,
// DeliverySent, DeliveryRetrying or DeliveryFailed.
func (s *Service) CodeDelivery(ctx context.Context, userID, purpose, contextID string) (string, error) {
	ec, err := s.store.LatestEmailCode(ctx, userID, purpose, contextID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return DeliveryNone, nil
	case err != nil:
		return "", err
	}
	switch ec.MailState {
	case storage.MailFailed:
		return DeliveryFailed, nil
	case storage.MailRetrying:
		return DeliveryRetrying, nil
	case storage.MailSent:
		if ec.DeadAt.IsZero() && !s.now().After(ec.ExpiresAt) {
			return DeliverySent, nil
		}
		return DeliveryNone, nil
	case storage.MailQueued:
		return DeliverySending, nil
	}
	return DeliveryNone, nil
}

// Delivery states of a code's mail, for the pages.
const (
	DeliveryNone     = ""
	DeliverySending  = "sending"
	DeliverySent     = "sent"
	DeliveryRetrying = "retrying"
	DeliveryFailed   = "failed"
)

// MsgJustSent answers a resend asked for within ResendGap of the last code.
func MsgJustSent(wait time.Duration) i18n.Msg {
	return i18n.M("code.just_sent", "Wait", wait)
}

// HasCode reports whether a code was ever sent for (userID, purpose,
// contextID), live or not.
func (s *Service) HasCode(ctx context.Context, userID, purpose, contextID string) (bool, error) {
	_, err := s.store.LatestEmailCode(ctx, userID, purpose, contextID)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, storage.ErrNotFound):
		return false, nil
	}
	return false, err
}

// VerifyEmailCode checks a code for (userID, purpose, contextID) from the
// browser whose handle digest is browser, counting the attempt. The newest
// code is the only live one; a code cannot finish a flow started in
// another browser.
func (s *Service) VerifyEmailCode(ctx context.Context, userID, purpose, contextID, input string, browser []byte) (bool, error) {
	code, ok := factor.NormalizeEmailCode(input)
	if !ok {
		return false, nil
	}
	ec, err := s.store.LatestEmailCode(ctx, userID, purpose, contextID)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return false, nil
		}
		return false, err
	}
	// The attempt is counted (one UPDATE, at most MaxCodeAttempts ever
	// succeed) before the code is compared.
	now := s.now()
	ec, err = s.store.TakeEmailCodeAttempt(ctx, ec.ID, now, MaxCodeAttempts)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return false, nil // dead, expired or out of tries
		}
		return false, err
	}
	if !s.verify.Digest(ec.CodeHash, s.kr.MACString(keyring.PurposeEmailCode, code)) ||
		len(browser) == 0 || !factor.Equal(ec.BrowserHash, browser) {
		return false, nil
	}
	if err := s.store.UseEmailCode(ctx, ec.ID, now); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return false, nil // used concurrently
		}
		return false, err
	}
	return true, nil
}
