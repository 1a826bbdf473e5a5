package mailsink

import (
	"container/list"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/mail"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Received is one message as the sink saw it.
type Received struct {
	From    string   // envelope sender (MAIL FROM)
	To      []string // envelope recipients (RCPT TO)
	Subject string   // decoded (RFC 2047)
	Text    string   // first text/plain part, decoded, line ends "\n"
	HTML    string   // first text/html part, decoded, line ends "\n"
	Raw     []byte   // the message as received (CRLF line ends)
	At      time.Time
}

// ErrClosed is returned by Wait when the sink is closed.
var ErrClosed = errors.New("mailsink: closed")

// Options bounds the sink's memory. The zero value means the defaults.
type Options struct {
	// MaxMessages is how many messages Messages keeps (the newest).
	// Default 10,000.
	MaxMessages int
	// MaxRecipients is how many recipients Last, Count and Wait remember
	// (the most recently mailed). Default 100,000. A recipient's newest
	// message is kept whole while it is among the MaxMessages newest;
	// after that, its Raw and HTML are dropped to save memory.
	MaxRecipients int
	// MaxMessageBytes refuses larger messages. Default 10 MiB.
	MaxMessageBytes int64
}

const (
	defaultMaxMessages     = 10_000
	defaultMaxRecipients   = 100_000
	defaultMaxMessageBytes = 10 << 20
)

// Sink is an SMTP server that accepts every message and keeps it in
// memory for tests and benchmarks. It is safe for concurrent use.
type Sink struct {
	srv  *smtp.Server
	ln   net.Listener
	done chan struct{} // closed when Serve returns

	closeOnce sync.Once
	closed    chan struct{}
	closeErr  error

	maxMessages, maxRecipients int

	mu     sync.Mutex
	seq    uint64
	ring   []*stored // circular, len ≤ maxMessages
	head   int       // index of the oldest entry once the ring is full
	rcpts  map[string]*rcptEntry
	lru    *list.List // of *rcptEntry, most recently mailed at the back
	total  int
	waiter map[string][]chan Received
	refuse func(rcpt string) bool
}

// Refuse makes the sink answer RCPT TO with a permanent 550 for every
// recipient fn reports true for (nil: accept everybody again), for tests
// of mail that cannot be delivered.
func (s *Sink) Refuse(fn func(rcpt string) bool) {
	s.mu.Lock()
	s.refuse = fn
	s.mu.Unlock()
}

type stored struct {
	seq uint64
	msg Received
}

type rcptEntry struct {
	key    string
	latest *stored
	count  int
	unread bool
	elem   *list.Element
}

// Start listens on addr ("127.0.0.1:0" for a free port) and serves SMTP
// until Close. It accepts any sender and recipient, and AUTH PLAIN with
// any credentials over plain text.
func Start(addr string) (*Sink, error) {
	return StartWithOptions(addr, Options{})
}

// StartWithOptions is Start with memory bounds; see Options.
func StartWithOptions(addr string, opts Options) (*Sink, error) {
	if opts.MaxMessages <= 0 {
		opts.MaxMessages = defaultMaxMessages
	}
	if opts.MaxRecipients <= 0 {
		opts.MaxRecipients = defaultMaxRecipients
	}
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = defaultMaxMessageBytes
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Sink{
		ln:            ln,
		done:          make(chan struct{}),
		closed:        make(chan struct{}),
		maxMessages:   opts.MaxMessages,
		maxRecipients: opts.MaxRecipients,
		rcpts:         make(map[string]*rcptEntry),
		lru:           list.New(),
		waiter:        make(map[string][]chan Received),
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &session{sink: s, max: opts.MaxMessageBytes}, nil
	}))
	srv.Domain = "mailsink.localhost"
	srv.AllowInsecureAuth = true
	srv.MaxMessageBytes = opts.MaxMessageBytes
	srv.MaxRecipients = 100
	srv.ReadTimeout = time.Minute
	srv.WriteTimeout = time.Minute
	srv.EnableSMTPUTF8 = true
	srv.ErrorLog = log.New(io.Discard, "", 0)
	s.srv = srv
	go func() {
		defer close(s.done)
		_ = srv.Serve(ln)
	}()
	return s, nil
}

// Addr returns the listening address, host:port.
func (s *Sink) Addr() string { return s.ln.Addr().String() }

// URL returns the mailer URL for the sink, "smtp://127.0.0.1:PORT".
func (s *Sink) URL() string { return "smtp://" + s.Addr() }

// Close stops the server, drops open connections and wakes every Wait
// with ErrClosed. The messages stay readable.
func (s *Sink) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.closeErr = s.srv.Close()
		// Serve may not have registered the listener with the server
		// yet (Close right after Start): close it ourselves too.
		_ = s.ln.Close()
		<-s.done
		if errors.Is(s.closeErr, smtp.ErrServerClosed) {
			s.closeErr = nil
		}
	})
	return s.closeErr
}

// Messages returns the kept messages, oldest first.
func (s *Sink) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Received, 0, len(s.ring))
	for i := range s.ring {
		out = append(out, s.ring[(s.head+i)%len(s.ring)].msg)
	}
	return out
}

// Total returns how many messages the sink has accepted since Start.
func (s *Sink) Total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// Last returns the newest message for recipient to (case-insensitive) and
// marks it read (see Wait).
func (s *Sink) Last(to string) (Received, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.rcpts[key(to)]
	if !ok {
		return Received{}, false
	}
	e.unread = false
	return e.latest.msg, true
}

// LastCode returns the newest kept message for recipient to that carries
// a code (see Code), and the code: mail delivered in one batch by an
// outbox worker may put a notice after the code a test is after.
func (s *Sink) LastCode(to string) (Received, string, bool) {
	msgs := s.Messages()
	for i := len(msgs) - 1; i >= 0; i-- {
		m := msgs[i]
		for _, rcpt := range m.To {
			if key(rcpt) != key(to) {
				continue
			}
			if code, ok := Code(m); ok {
				return m, code, true
			}
		}
	}
	return Received{}, "", false
}

// Count returns how many messages recipient to has received since Start
// (or since it was last among the MaxRecipients most recently mailed).
func (s *Sink) Count(to string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.rcpts[key(to)]; ok {
		return e.count
	}
	return 0
}

// Wait returns the newest message for recipient to that neither Wait nor
// Last has returned yet; when there is none, it waits for the next one to
// arrive. It returns ctx's error when ctx ends first, and ErrClosed when
// the sink is closed. Several Waits for one recipient all receive the
// same next message.
func (s *Sink) Wait(ctx context.Context, to string) (Received, error) {
	k := key(to)
	ch := make(chan Received, 1)
	s.mu.Lock()
	if e, ok := s.rcpts[k]; ok && e.unread {
		e.unread = false
		msg := e.latest.msg
		s.mu.Unlock()
		return msg, nil
	}
	s.waiter[k] = append(s.waiter[k], ch)
	s.mu.Unlock()

	var err error
	select {
	case msg := <-ch:
		return msg, nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-s.closed:
		err = ErrClosed
	}
	s.mu.Lock()
	ws := s.waiter[k]
	for i, w := range ws {
		if w == ch {
			ws = append(ws[:i:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(s.waiter, k)
	} else {
		s.waiter[k] = ws
	}
	s.mu.Unlock()
	// A message delivered while we were giving up has been marked read
	// on our behalf: hand it over rather than lose it.
	select {
	case msg := <-ch:
		return msg, nil
	default:
		return Received{}, err
	}
}

var codeRE = regexp.MustCompile(`(?:^|[^0-9])([0-9]{6})(?:[^0-9]|$)`)

// Code extracts the first 6-digit code (a run of exactly six digits) from
// a message's text part.
func Code(r Received) (string, bool) {
	m := codeRE.FindStringSubmatch(r.Text)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// key normalises a recipient: the bare address, lower case.
func key(to string) string {
	to = strings.TrimSpace(to)
	if a, err := mail.ParseAddress(to); err == nil {
		to = a.Address
	}
	return strings.ToLower(strings.Trim(to, "<>"))
}

// deliver records msg and wakes the waiters of its recipients.
func (s *Sink) deliver(msg Received) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	s.total++
	st := &stored{seq: s.seq, msg: msg}

	if len(s.ring) < s.maxMessages {
		s.ring = append(s.ring, st)
	} else {
		old := s.ring[s.head]
		s.ring[s.head] = st
		s.head = (s.head + 1) % len(s.ring)
		s.shrink(old)
	}

	seen := make(map[string]bool, len(msg.To))
	for _, to := range msg.To {
		k := key(to)
		if seen[k] {
			continue
		}
		seen[k] = true
		e, ok := s.rcpts[k]
		if !ok {
			e = &rcptEntry{key: k}
			e.elem = s.lru.PushBack(e)
			s.rcpts[k] = e
		} else {
			s.lru.MoveToBack(e.elem)
		}
		e.latest = st
		e.count++
		if ws := s.waiter[k]; len(ws) > 0 {
			for _, w := range ws {
				w <- msg // buffered, one message per waiter
			}
			delete(s.waiter, k)
			e.unread = false
		} else {
			e.unread = true
		}
	}
	for len(s.rcpts) > s.maxRecipients {
		front := s.lru.Front()
		e := front.Value.(*rcptEntry)
		s.lru.Remove(front)
		delete(s.rcpts, e.key)
	}
}

// shrink drops the bulky fields of a message leaving the ring, for the
// recipients that still point at it as their newest.
func (s *Sink) shrink(old *stored) {
	for _, to := range old.msg.To {
		if e, ok := s.rcpts[key(to)]; ok && e.latest == old {
			slim := *old
			slim.msg.Raw = nil
			slim.msg.HTML = ""
			e.latest = &slim
		}
	}
}

// session is one SMTP transaction at a time on one connection.
type session struct {
	sink *Sink
	max  int64
	from string
	to   []string
}

var _ smtp.AuthSession = (*session)(nil)

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error { return nil }), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	s.to = nil
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.sink.mu.Lock()
	refuse := s.sink.refuse
	s.sink.mu.Unlock()
	if refuse != nil && refuse(to) {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "mailsink: recipient refused"}
	}
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(io.LimitReader(r, s.max+1))
	if err != nil {
		return err
	}
	if int64(len(raw)) > s.max {
		return smtp.ErrDataTooLarge
	}
	msg := parse(raw)
	msg.From = s.from
	msg.To = append([]string(nil), s.to...)
	msg.At = time.Now()
	s.sink.deliver(msg)
	return nil
}

func (s *session) Reset() {
	s.from = ""
	s.to = nil
}

func (s *session) Logout() error { return nil }
