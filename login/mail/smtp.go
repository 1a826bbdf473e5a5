package mail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"
)

// SMTPMailer sends mail through an SMTP submission server. Build it with
// New or NewWithOptions; it is safe for concurrent use (one connection per
// message).
type SMTPMailer struct {
	addr        string // host:port
	host        string
	implicitTLS bool
	requireTLS  bool
	username    string
	password    string
	redacted    string

	from      *mail.Address
	tlsConfig *tls.Config
	localName string

	dialTimeout    time.Duration
	commandTimeout time.Duration
	attempts       int
	backoff        time.Duration

	logger *slog.Logger
	now    func() time.Time
}

var _ Mailer = (*SMTPMailer)(nil)

// String returns the server URL with the password replaced by "xxxxx".
func (m *SMTPMailer) String() string { return m.redacted }

// permanentError marks a failure that a retry cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return &permanentError{err} }

// Send delivers m. It makes up to Options.Attempts attempts on temporary
// failures with exponential back-off, never past ctx's deadline. When ctx
// ends first, the error wraps ctx.Err() (errors.Is(err,
// context.DeadlineExceeded) holds). SMTP replies are reachable with
// errors.As(err, **textproto.Error).
func (m *SMTPMailer) Send(ctx context.Context, msg Message) error {
	c, err := compose(m.from, msg, m.now())
	if err != nil {
		return permanent(err) // no retry composes it better
	}
	backoff := m.backoff
	for attempt := 1; ; attempt++ {
		err := m.attempt(ctx, c)
		if err == nil {
			return nil
		}
		if cerr := contextError(ctx); cerr != nil {
			return fmt.Errorf("mail: send to %s via %s: %w (%w)", c.rcpt, m.redacted, cerr, err)
		}
		if !isTemporary(err) {
			return fmt.Errorf("mail: send to %s via %s: %w", c.rcpt, m.redacted, err)
		}
		if attempt >= m.attempts {
			return fmt.Errorf("mail: send to %s via %s: giving up after %d attempts: %w", c.rcpt, m.redacted, attempt, err)
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= backoff {
			return fmt.Errorf("mail: send to %s via %s: no time left to retry: %w", c.rcpt, m.redacted, err)
		}
		m.logger.WarnContext(ctx, "mail: temporary failure, retrying",
			"mailer", m.redacted, "to", c.rcpt, "attempt", attempt, "retry_in", backoff, "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("mail: send to %s via %s: %w (%w)", c.rcpt, m.redacted, ctx.Err(), err)
		case <-t.C:
		}
		backoff *= 2
	}
}

// contextError returns ctx's error, or context.DeadlineExceeded when the
// deadline has passed but the context has not noticed yet (a connection
// deadline set to the same instant may fire first).
func contextError(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

// attempt makes one connection and one SMTP transaction.
func (m *SMTPMailer) attempt(ctx context.Context, c *composed) error {
	ctxDeadline, _ := ctx.Deadline()
	dialCtx, cancel := context.WithTimeout(ctx, m.dialTimeout)
	defer cancel()
	raw, err := (&net.Dialer{}).DialContext(dialCtx, "tcp", m.addr)
	if err != nil {
		return err
	}
	defer raw.Close()
	// Cancellation without a deadline: closing the socket unblocks any
	// read or write in progress.
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()

	// arm bounds the next exchange by the command timeout and the
	// context's deadline, whichever comes first.
	arm := func(d time.Duration) {
		t := time.Now().Add(d)
		if !ctxDeadline.IsZero() && ctxDeadline.Before(t) {
			t = ctxDeadline
		}
		_ = raw.SetDeadline(t)
	}

	var conn net.Conn = raw
	if m.implicitTLS {
		arm(m.dialTimeout)
		tc := tls.Client(raw, m.tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			return classifyTLS(err)
		}
		conn = tc
	}

	arm(m.commandTimeout)
	cl, err := smtp.NewClient(conn, m.host) // reads the greeting
	if err != nil {
		return err
	}
	defer cl.Close()

	arm(m.commandTimeout)
	if err := cl.Hello(m.localName); err != nil {
		return err
	}
	if !m.implicitTLS {
		if ok, _ := cl.Extension("STARTTLS"); ok {
			arm(m.commandTimeout)
			if err := cl.StartTLS(m.tlsConfig); err != nil {
				return classifyTLS(err)
			}
		} else if m.requireTLS {
			return permanent(errors.New("server does not offer STARTTLS; refusing to send credentials in clear"))
		}
	}
	if m.username != "" {
		ok, mechs := cl.Extension("AUTH")
		if !ok {
			return permanent(errors.New("server does not offer AUTH but credentials are configured"))
		}
		var a smtp.Auth
		switch {
		case hasMechanism(mechs, "PLAIN"):
			a = &plainAuth{user: m.username, pass: m.password, allowClear: !m.requireTLS}
		case hasMechanism(mechs, "LOGIN"):
			a = &loginAuth{user: m.username, pass: m.password, allowClear: !m.requireTLS}
		default:
			return permanent(fmt.Errorf("server offers no supported AUTH mechanism (offers %q, want PLAIN or LOGIN)", mechs))
		}
		arm(m.commandTimeout)
		if err := cl.Auth(a); err != nil {
			return err
		}
	}
	arm(m.commandTimeout)
	if err := cl.Mail(m.from.Address); err != nil {
		return err
	}
	arm(m.commandTimeout)
	if err := cl.Rcpt(c.rcpt); err != nil {
		return err
	}
	arm(m.commandTimeout)
	w, err := cl.Data()
	if err != nil {
		return err
	}
	arm(m.commandTimeout)
	if _, err := w.Write(c.raw); err != nil {
		return err
	}
	if err := w.Close(); err != nil { // the reply to the final dot
		return err
	}
	// The mail is accepted; a failing QUIT does not change that.
	arm(m.commandTimeout)
	_ = cl.Quit()
	return nil
}

func hasMechanism(list, mech string) bool {
	for _, f := range strings.Fields(list) {
		if strings.EqualFold(f, mech) {
			return true
		}
	}
	return false
}

// classifyTLS makes certificate and protocol failures permanent: the
// next attempt would meet the same certificate.
func classifyTLS(err error) error {
	var (
		verr  *tls.CertificateVerificationError
		uaerr x509.UnknownAuthorityError
		herr  x509.HostnameError
		cierr x509.CertificateInvalidError
		rherr tls.RecordHeaderError
	)
	if errors.As(err, &verr) || errors.As(err, &uaerr) || errors.As(err, &herr) ||
		errors.As(err, &cierr) || errors.As(err, &rherr) {
		return permanent(fmt.Errorf("TLS: %w", err))
	}
	return err
}

// isTemporary: 4xx replies and network failures are worth another try;
// 5xx replies, TLS verification failures and configuration mismatches
// are not.
func isTemporary(err error) bool {
	var perm *permanentError
	if errors.As(err, &perm) {
		return false
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code >= 400 && te.Code < 500
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return false
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	return true
}

// plainAuth is SASL PLAIN (RFC 4616). net/smtp's PlainAuth would do,
// except that it only knows "localhost" and two addresses as loopback.
type plainAuth struct {
	user, pass string
	allowClear bool
}

func (a *plainAuth) Start(s *smtp.ServerInfo) (string, []byte, error) {
	if !s.TLS && !a.allowClear {
		return "", nil, permanent(errors.New("refusing to send credentials over an unencrypted connection"))
	}
	return "PLAIN", []byte("\x00" + a.user + "\x00" + a.pass), nil
}

func (a *plainAuth) Next(_ []byte, more bool) ([]byte, error) {
	if more {
		return nil, permanent(errors.New("unexpected server challenge during AUTH PLAIN"))
	}
	return nil, nil
}

// loginAuth is the non-standard but widespread AUTH LOGIN, for servers
// that offer nothing else.
type loginAuth struct {
	user, pass string
	allowClear bool
	step       int
}

func (a *loginAuth) Start(s *smtp.ServerInfo) (string, []byte, error) {
	if !s.TLS && !a.allowClear {
		return "", nil, permanent(errors.New("refusing to send credentials over an unencrypted connection"))
	}
	a.step = 0
	return "LOGIN", nil, nil
}

func (a *loginAuth) Next(_ []byte, more bool) ([]byte, error) {
	if !more {
		return nil, nil
	}
	a.step++
	switch a.step {
	case 1:
		return []byte(a.user), nil
	case 2:
		return []byte(a.pass), nil
	}
	return nil, permanent(errors.New("unexpected server challenge during AUTH LOGIN"))
}
