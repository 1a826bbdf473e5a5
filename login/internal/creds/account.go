package creds

import (
	"context"
	"time"

	"github.com/latchkey/latchkey/login/factor"
	"github.com/latchkey/latchkey/login/mail"
	"github.com/latchkey/latchkey/storage"
)

// --- passwords ---

// CheckPassword verifies password against u's hash; u nil (an email with
// no account) or a user without a password runs a dummy verification, so
// the answer takes the same time. A hash made with weaker parameters is
// upgraded after a successful check.
func (s *Service) CheckPassword(ctx context.Context, u *storage.User, password string) bool {
	if u == nil || u.PasswordHash == "" || len(password) > factor.MaxPasswordBytes {
		s.verify.DummyPassword(password)
		return false
	}
	ok, rehash, err := s.verify.Password(u.PasswordHash, password)
	if err != nil {
		s.log.Error("stored password hash unreadable", "user", u.ID, "err", err)
	}
	if ok && rehash {
		if phc, err := s.hasher.Hash(password); err == nil {
			if _, err := s.store.UpdateUser(ctx, u.ID, func(x *storage.User) error { x.PasswordHash = phc; return nil }); err != nil {
				s.log.Warn("password rehash", "err", err)
			}
		}
	}
	return ok
}

// HashPassword hashes a new password (argon2id).
func (s *Service) HashPassword(password string) (string, error) { return s.hasher.Hash(password) }

// NewPassword hashes a new password and returns the change of the user
// row that sets it (verified: the address is proven too), to be applied
// with what it revokes (Revoke with storage.Revocation.User).
func (s *Service) NewPassword(password string, verified bool) (func(*storage.User) error, error) {
	phc, err := s.hasher.Hash(password)
	if err != nil {
		return nil, err
	}
	now := s.now()
	return func(u *storage.User) error {
		u.PasswordHash = phc
		u.PasswordChangedAt = now
		u.UpdatedAt = now
		if verified {
			u.EmailVerified = true
		}
		return nil
	}, nil
}

// --- after a change: revoke and tell ---

// Revoke ends the user's grants as storage.RevokeCause's table says for
// r.Cause, with r.User's change of the user row, in one transaction.
func (s *Service) Revoke(ctx context.Context, userID string, r storage.Revocation) (storage.Revoked, error) {
	return s.store.RevokeUserGrants(ctx, userID, r, s.now())
}

// Notify sends the mandatory notification of a security change. A mail
// that cannot be sent does not undo the change; it reports false and the
// caller tells the user.
func (s *Service) Notify(ctx context.Context, u storage.User, change string, from From) bool {
	msg, err := mail.NoticeMail{Site: s.site, To: u.Email, Name: u.Name, Change: change, At: s.now(),
		Browser: from.Browser, IP: from.IP}.Message()
	if err == nil {
		sctx, cancel := context.WithTimeout(ctx, mailTimeout)
		defer cancel()
		err = s.mailer.Send(sctx, msg)
	}
	if err != nil {
		s.log.Error("send notice mail", "err", err, "user", u.ID, "change", change)
		s.Audit(ctx, from, storage.AuditEvent{UserID: u.ID, Email: u.Email, Event: "notice.send_failed", Reason: change})
		return false
	}
	return true
}

// signupNoticeEvery: "someone tried to create an account" at most this
// often per account.
const signupNoticeEvery = time.Hour

// NotifySignupAttempt tells the owner of an address that someone tried to
// create an account with it (at most once an hour per account).
func (s *Service) NotifySignupAttempt(ctx context.Context, u storage.User, from From) {
	now := s.now()
	send := false
	if _, err := s.store.UpdateThrottle(ctx, "signup-notice:"+u.ID, func(t *storage.Throttle) error {
		send = t.LastFailureAt.IsZero() || now.Sub(t.LastFailureAt) >= signupNoticeEvery || t.LastFailureAt.After(now)
		if send {
			t.LastFailureAt = now
			t.Failures++
		}
		return nil
	}); err != nil {
		s.log.Error("signup notice throttle", "err", err)
		return
	}
	if !send {
		return
	}
	msg, err := mail.SignupExistsMail{Site: s.site, To: u.Email, Name: u.Name, At: now, Browser: from.Browser, IP: from.IP}.Message()
	if err == nil {
		sctx, cancel := context.WithTimeout(ctx, mailTimeout)
		defer cancel()
		err = s.mailer.Send(sctx, msg)
	}
	if err != nil {
		s.log.Error("send signup notice", "err", err, "user", u.ID)
		return
	}
	s.Audit(ctx, from, storage.AuditEvent{UserID: u.ID, Email: u.Email, Event: "signup.exists_notified"})
}
