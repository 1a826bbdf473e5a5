package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/url"
	"os"
	"strings"
	"time"
)

// Message is one mail to one recipient.
type Message struct {
	To      string // "ada@example.com" or "Ada Lovelace <ada@example.com>"
	Subject string
	Text    string // plain-text part (required)
	HTML    string // HTML part ("" = text only)
}

// Mailer sends one message. Implementations must honour ctx (deadline) and
// never block longer than it allows.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}

// ErrHeaderInjection is returned (wrapped) by Send when Message.To or
// Message.Subject contains a CR or LF: such a value would let its author
// add headers or recipients to the mail.
var ErrHeaderInjection = errors.New("mail: CR or LF in a header value")

// Permanent reports whether a Send error is one a retry cannot fix: a
// message that cannot be composed (bad recipient, header injection), a
// 5xx reply, an unknown host, a TLS or configuration mismatch. Network
// errors, 4xx replies and deadlines are temporary; so is a cancelled
// context (the sender was stopped, the mail was not refused).
func Permanent(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	return !isTemporary(err)
}

// Options tunes NewWithOptions. The zero value gives the production
// defaults; tests use it to trust a test server's self-signed certificate
// and to shorten timeouts.
type Options struct {
	// TLSConfig is the base configuration for STARTTLS and implicit TLS
	// (smtps). Set RootCAs to trust a private CA or a test certificate.
	// ServerName is filled in from the URL's host when empty. nil means
	// the system roots and TLS 1.2 or later.
	TLSConfig *tls.Config
	// DialTimeout bounds one TCP connect (and the TLS handshake for
	// smtps). Default 10s. The context's deadline always wins when sooner.
	DialTimeout time.Duration
	// CommandTimeout bounds each SMTP command and reply (greeting, EHLO,
	// STARTTLS, AUTH, MAIL, RCPT, DATA, the message and its reply).
	// Default 30s. The context's deadline always wins when sooner.
	CommandTimeout time.Duration
	// Attempts is the number of tries on temporary failures (network
	// errors, 4xx replies). Default 3. 5xx replies are never retried.
	Attempts int
	// Backoff is the pause before the second attempt; it doubles before
	// each further attempt (200ms, 400ms, …). Default 200ms. A retry that
	// could not start before the context's deadline is not made.
	Backoff time.Duration
	// LocalName is the name sent in EHLO. Default: the host name, or
	// "localhost" when it is not a plain DNS name.
	LocalName string
	// Now is the clock for the Date header. Default time.Now.
	Now func() time.Time
}

const (
	defaultDialTimeout    = 10 * time.Second
	defaultCommandTimeout = 30 * time.Second
	defaultAttempts       = 3
	defaultBackoff        = 200 * time.Millisecond
)

// New builds a Mailer from a URL:
//
//   - "smtp://user:pass@host:587": plain SMTP upgraded with STARTTLS when the
//     server offers it; STARTTLS is required when credentials are given and
//     the host is not a loopback address. Default port 25.
//   - "smtps://user:pass@host:465": implicit TLS. Default port 465.
//   - "log:": a development sink that writes each mail (headers and text
//     part) to logger at INFO under the banner
//     "===== MAIL (not sent: log sink) =====" and sends nothing.
//
// User name and password are percent-decoded. from is the envelope sender
// and the From header ("no-reply@example.com" or
// "Latchkey <no-reply@example.com>"). A nil logger means slog.Default().
// Neither errors nor log lines ever contain the password.
func New(rawURL, from string, logger *slog.Logger) (Mailer, error) {
	return NewWithOptions(rawURL, from, logger, Options{})
}

// NewWithOptions is New with tuning knobs; see Options.
func NewWithOptions(rawURL, from string, logger *slog.Logger, opts Options) (Mailer, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if strings.ContainsAny(from, "\r\n") {
		return nil, fmt.Errorf("mail: from address: %w", ErrHeaderInjection)
	}
	fromAddr, err := mail.ParseAddress(from)
	if err != nil {
		return nil, fmt.Errorf("mail: invalid from address %q: %v", from, err)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}

	trimmed := strings.TrimSpace(rawURL)
	switch strings.ToLower(trimmed) {
	case "log", "log:", "log://":
		logger.Warn("mail: log sink in use: mails, codes included, are written to this log and not sent (development only)")
		return &LogMailer{from: fromAddr, logger: logger, now: now}, nil
	case "":
		return nil, errors.New("mail: empty mail URL (want smtp://, smtps:// or log:)")
	}

	u, err := url.Parse(trimmed)
	if err != nil {
		// url.Parse quotes the whole input, password included: keep only
		// the inner reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("mail: invalid mail URL: %v", err)
	}
	return newSMTP(u, fromAddr, logger, opts, now)
}

func newSMTP(u *url.URL, from *mail.Address, logger *slog.Logger, opts Options, now func() time.Time) (*SMTPMailer, error) {
	m := &SMTPMailer{
		from:           from,
		logger:         logger,
		now:            now,
		dialTimeout:    opts.DialTimeout,
		commandTimeout: opts.CommandTimeout,
		attempts:       opts.Attempts,
		backoff:        opts.Backoff,
		localName:      opts.LocalName,
	}
	scheme := strings.ToLower(u.Scheme)
	var defPort string
	switch scheme {
	case "smtp":
		defPort = "25"
	case "smtps":
		defPort = "465"
		m.implicitTLS = true
	default:
		return nil, fmt.Errorf("mail: unsupported mail URL scheme %q (want smtp, smtps or log)", u.Scheme)
	}
	if u.Opaque != "" {
		return nil, errors.New("mail: invalid mail URL: want " + scheme + "://[user:password@]host[:port]")
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("mail: invalid mail URL: no path, query or fragment allowed")
	}
	host := u.Hostname()
	if host == "" {
		return nil, errors.New("mail: invalid mail URL: missing host")
	}
	port := u.Port()
	if port == "" {
		port = defPort
	}
	m.host = host
	m.addr = net.JoinHostPort(host, port)
	if u.User != nil {
		m.username = u.User.Username()
		m.password, _ = u.User.Password()
	}
	// Requiring TLS for credentials keeps them off the wire in clear; a
	// relay on the same machine is the exception (nothing to sniff).
	m.requireTLS = m.username != "" && !isLoopback(host)

	red := &url.URL{Scheme: scheme, Host: u.Host}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			red.User = url.UserPassword(m.username, "xxxxx")
		} else {
			red.User = url.User(m.username)
		}
	}
	m.redacted = red.String()

	if m.dialTimeout <= 0 {
		m.dialTimeout = defaultDialTimeout
	}
	if m.commandTimeout <= 0 {
		m.commandTimeout = defaultCommandTimeout
	}
	if m.attempts <= 0 {
		m.attempts = defaultAttempts
	}
	if m.backoff <= 0 {
		m.backoff = defaultBackoff
	}
	if m.localName == "" {
		m.localName = defaultLocalName()
	}
	if strings.ContainsAny(m.localName, "\r\n ") {
		return nil, errors.New("mail: invalid LocalName")
	}
	if opts.TLSConfig != nil {
		m.tlsConfig = opts.TLSConfig.Clone()
	} else {
		m.tlsConfig = &tls.Config{}
	}
	if m.tlsConfig.ServerName == "" {
		m.tlsConfig.ServerName = host
	}
	if m.tlsConfig.MinVersion == 0 {
		m.tlsConfig.MinVersion = tls.VersionTLS12
	}
	return m, nil
}

// isLoopback reports whether host names this machine.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func defaultLocalName() string {
	h, err := os.Hostname()
	if err != nil || h == "" || len(h) > 253 {
		return "localhost"
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return "localhost"
		}
	}
	return h
}

// LogMailer is the development sink built by New("log:", …): it writes each
// mail to the logger instead of sending it.
type LogMailer struct {
	from   *mail.Address
	logger *slog.Logger
	now    func() time.Time
}

var _ Mailer = (*LogMailer)(nil)

// LogBanner is the message of the log record written by LogMailer.
const LogBanner = "===== MAIL (not sent: log sink) ====="

// Send validates m like the SMTP mailer does and writes one INFO record
// with the banner as message and the headers and text part as attributes.
func (l *LogMailer) Send(ctx context.Context, m Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c, err := compose(l.from, m, l.now())
	if err != nil {
		return permanent(err)
	}
	attrs := []any{
		slog.String("from", c.from),
		slog.String("to", c.to),
		slog.String("subject", m.Subject),
		slog.String("date", c.date),
		slog.String("message_id", c.messageID),
		slog.String("text", m.Text),
	}
	if m.HTML != "" {
		attrs = append(attrs, slog.String("html", fmt.Sprintf("(%d bytes, not shown)", len(m.HTML))))
	}
	l.logger.InfoContext(ctx, LogBanner, attrs...)
	return nil
}

// String returns "log:".
func (l *LogMailer) String() string { return "log:" }
