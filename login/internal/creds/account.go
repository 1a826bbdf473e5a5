package creds

import (
	"context"
	"time"

	"github.com/latchkey/latchkey/login/factor"
	"github.com/latchkey/latchkey/login/i18n"
	"github.com/latchkey/latchkey/login/mail"
	"github.com/latchkey/latchkey/login/mail/outbox"
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
	rv, err := s.store.RevokeUserGrants(ctx, userID, r, s.now())
	s.EndedSessions(ctx, userID, rv.SessionIDs, string(r.Cause))
	return rv, err
}

// SessionReplaced: a new sign-in in this browser replaced session old
// with next. The same user's products stay with the browser (they are
// told when next ends); another user's session has ended.
func (s *Service) SessionReplaced(ctx context.Context, old, next storage.Session) {
	if old.ID == "" {
		return
	}
	if old.UserID != next.UserID {
		s.EndedSessions(ctx, old.UserID, []string{old.ID}, "signin_replaced")
		return
	}
	if err := s.store.ContinueSession(context.WithoutCancel(ctx), old.ID, next.ID); err != nil {
		s.log.Error("continue session", "err", err, "user", old.UserID)
	}
}

// EndedSessions tells the products that got tokens in these ended
// sessions of userID: it queues their back-channel logouts (delivered in
// the background by op.BackchannelWorker). The sessions are gone
// already, so a failure is logged, not returned.
func (s *Service) EndedSessions(ctx context.Context, userID string, sessionIDs []string, cause string) {
	if _, err := s.store.EnqueueBackchannelLogouts(context.WithoutCancel(ctx), userID, sessionIDs, cause, s.now()); err != nil {
		s.log.Error("queue back-channel logouts", "err", err, "user", userID, "cause", cause)
	}
}

// noticeGiveUp: a notice not delivered within a day is given up (and
// the failure audited).
const noticeGiveUp = 24 * time.Hour

// notice renders (in the recipient's language and time zone) and seals
// the mandatory notification of a security change — a message of the
// catalogue: "Password changed" — for the outbox.
func (s *Service) notice(u storage.User, change i18n.Msg, from From) (storage.OutboxMessage, error) {
	now := s.now()
	l := s.mailLanguage(u.Language, from)
	msg, err := mail.NoticeMail{Site: s.site, To: u.Email, Name: u.Name, Change: l.Msg(change), At: now,
		Browser: l.Msg(from.Browser), IP: from.IP, Lang: l.Lang(), TimeZone: u.TimeZone}.Message()
	if err != nil {
		return storage.OutboxMessage{}, err
	}
	return s.sealNotice(u, change.ID, msg, now)
}

// sealNotice is a rendered notice to the account's owner as an outbox row
// (purpose: what it tells of).
func (s *Service) sealNotice(u storage.User, purpose string, msg mail.Message, now time.Time) (storage.OutboxMessage, error) {
	return outbox.SealRow(s.kr, storage.OutboxMessage{Kind: "notice", Purpose: purpose, Recipient: u.Email,
		UserID: u.ID, CreatedAt: now, GiveUpAt: now.Add(noticeGiveUp)}, msg)
}

// queueNotice writes a notice (m, or the error making it) to the outbox on
// its own; a failure is logged and audited, and reported false.
func (s *Service) queueNotice(ctx context.Context, u storage.User, m storage.OutboxMessage, err error, from From) bool {
	if err == nil {
		_, err = s.store.EnqueueMail(ctx, m)
	}
	if err != nil {
		s.log.Error("queue notice mail", "err", err, "user", u.ID, "purpose", m.Purpose)
		s.Audit(ctx, from, storage.AuditEvent{UserID: u.ID, Email: u.Email, Event: "notice.send_failed", Reason: m.Purpose})
		return false
	}
	s.kick()
	return true
}

// RevokeAndNotify ends the user's grants as Revoke does, and writes the
// change's notification to the outbox in the same transaction: it goes
// out if and only if the change stands.
func (s *Service) RevokeAndNotify(ctx context.Context, u storage.User, r storage.Revocation, change i18n.Msg, from From) (storage.Revoked, error) {
	m, err := s.notice(u, change, from)
	if err != nil {
		return storage.Revoked{}, err
	}
	r.Mail = append(r.Mail, m)
	out, err := s.Revoke(ctx, u.ID, r)
	if err == nil {
		s.kick()
	}
	return out, err
}

// Notify queues the mandatory notification of a change made on its own
// (a browser or product removed). It reports false, and audits, when the
// mail could not even be queued; the caller tells the user.
func (s *Service) Notify(ctx context.Context, u storage.User, change i18n.Msg, from From) bool {
	m, err := s.notice(u, change, from)
	m.Purpose = change.ID
	return s.queueNotice(ctx, u, m, err, from)
}

// NotifySignIn queues the mail about a sign-in of u (mail.SignInNewBrowser:
// from a browser new to the account; mail.SignInBackupCode: with the
// backup code), in the recipient's language and time zone, through the
// outbox like every notice. The sign-in stands whatever happens to the
// mail: a failure to queue it is logged and audited, and reported false.
func (s *Service) NotifySignIn(ctx context.Context, u storage.User, kind string, from From) bool {
	now := s.now()
	l := s.mailLanguage(u.Language, from)
	msg, err := mail.SignInMail{Site: s.site, To: u.Email, Name: u.Name, Kind: kind, At: now,
		Browser: l.Msg(from.Browser), IP: from.IP, Lang: l.Lang(), TimeZone: u.TimeZone}.Message()
	m := storage.OutboxMessage{Purpose: "signin." + kind}
	if err == nil {
		m, err = s.sealNotice(u, m.Purpose, msg, now)
	}
	return s.queueNotice(ctx, u, m, err, from)
}

// mailLanguage is the language of a mail to an account (or, with language
// "", to an address without one): the request's ui_locales, the
// recipient's saved language, the request's browser, the default. A mail
// goes to the owner of the address, so the account's language tells the
// asker nothing. Its times are in the recipient's time zone
// (mail.*.TimeZone, "" is UTC).
func (s *Service) mailLanguage(language string, from From) *i18n.Localizer {
	p := from.Langs
	p.Account = language
	return s.cfg.Languages.Localizer(p)
}

// Languages is the service's language chooser.
func (s *Service) Languages() *i18n.Chooser { return s.cfg.Languages }
