package creds

import (
	"context"
	"errors"
	"time"

	"github.com/latchkey/latchkey/login/factor"
	"github.com/latchkey/latchkey/login/flow"
	"github.com/latchkey/latchkey/login/mail"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
)

// Email-code rules (SPEC 1.3): 5 wrong tries kill a code; resends within
// one flow at least 30 s apart; at most 5 codes per 15 minutes per
// account across flows.
const (
	MaxCodeAttempts  = 5
	ResendGap        = 30 * time.Second
	sendBudget       = 5
	sendBudgetWindow = 15 * time.Minute
	mailTimeout      = 5 * time.Second
)

// Code purposes (storage.EmailCode.Purpose) and mail wordings.
const (
	PurposeSignin    = "signin"
	PurposeReconfirm = "reconfirm" // a wording only: the code's purpose stays signin
	PurposeSignup    = "signup"
	PurposeReset     = "reset"
)

// Recipient is whom a code is for: a user, or a stand-in (StandIn) for an
// address without an account yet.
type Recipient struct {
	ID, Email, Name string
}

// RecipientOf is the recipient of a user.
func RecipientOf(u storage.User) Recipient { return Recipient{ID: u.ID, Email: u.Email, Name: u.Name} }

// SendCode mails a new code for (to, purpose, contextID), bound to the
// asking browser, after the resend gap and the send budget. wording says
// how the mail puts it (a purpose; "" = purpose). It returns a message for
// the user when it did not send.
func (s *Service) SendCode(ctx context.Context, to Recipient, purpose, contextID, wording string, from From) (string, error) {
	now := s.now()
	if wording == "" {
		wording = purpose
	}
	last, err := s.store.LatestEmailCode(ctx, to.ID, purpose, contextID)
	if err == nil && now.Sub(last.CreatedAt) < ResendGap {
		return MsgJustSent(ResendGap - now.Sub(last.CreatedAt)), nil
	} else if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return "", err
	}
	n, err := s.store.CountEmailCodesSince(ctx, to.ID, now.Add(-sendBudgetWindow))
	if err != nil {
		return "", err
	}
	if n >= sendBudget {
		return "Too many codes were sent to this address. Try again in a few minutes.", nil
	}
	code := factor.NewEmailCode()
	ec, err := s.store.CreateEmailCode(ctx, storage.EmailCode{
		UserID: to.ID, Purpose: purpose, ContextID: contextID,
		BrowserHash: from.BrowserHash,
		CodeHash:    s.kr.MACString(keyring.PurposeEmailCode, code),
		CreatedAt:   now, ExpiresAt: now.Add(s.cfg.EmailCodeTTL),
	})
	if err != nil {
		return "", err
	}
	msg, err := mail.CodeMail{
		Site: s.site, To: to.Email, Name: to.Name, Code: code, ValidFor: s.cfg.EmailCodeTTL,
		RequestedAt: now, Browser: from.Browser, IP: from.IP, Purpose: wording,
	}.Message()
	if err != nil {
		return "", err
	}
	sctx, cancel := context.WithTimeout(ctx, mailTimeout)
	defer cancel()
	// A sign-up has no user yet: its stand-in id stays out of the audit trail.
	auditUser := to.ID
	if IsStandIn(auditUser) {
		auditUser = ""
	}
	if err := s.mailer.Send(sctx, msg); err != nil {
		s.log.Error("send code mail", "err", err, "user", to.ID)
		s.Audit(ctx, from, storage.AuditEvent{UserID: auditUser, Email: to.Email, Event: "code.send_failed", Reason: purpose})
		// The code cannot arrive: kill it so it cannot be guessed either.
		_, _ = s.store.UpdateEmailCode(ctx, ec.ID, func(x *storage.EmailCode) error { x.DeadAt = now; return nil })
		return "We could not send the email just now. Try again in a moment.", nil
	}
	s.Audit(ctx, from, storage.AuditEvent{UserID: auditUser, Email: to.Email, Event: "code.sent", Reason: purpose})
	return "", nil
}

// MsgJustSent answers a resend asked for within ResendGap of the last code.
func MsgJustSent(wait time.Duration) string {
	return "We just sent a code. Wait " + flow.HumanDuration(wait) + " before asking for another."
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
