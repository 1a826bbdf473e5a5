package mail

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/latchkey/latchkey/login/mail/mailsink"
)

const testFrom = "Latchkey <no-reply@example.com>"

func testLogger(w io.Writer) *slog.Logger {
	if w == nil {
		w = io.Discard
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func startSink(t *testing.T) *mailsink.Sink {
	t.Helper()
	s, err := mailsink.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestSendToSinkRoundTrip(t *testing.T) {
	sink := startSink(t)
	m, err := New(sink.URL(), testFrom, testLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	msg := Message{
		To:      "Jörg Müller <Joerg@Example.com>",
		Subject: "Ihr Bestätigungscode für Latchkey – 東京 ✓ " + strings.Repeat("lang ", 20),
		Text:    "Grüße aus Köln!\nZeile mit = Gleichheitszeichen und einer sehr langen Zeile, die weich umbrochen werden muss, weil sie länger als sechsundsiebzig Zeichen ist.\n.\n.. ein Punkt am Zeilenanfang\n東京\n",
		HTML:    "<p>Grüße aus <b>Köln</b> &amp; 東京</p>\n<p style=\"color:red\">" + strings.Repeat("x", 200) + "</p>\n",
	}
	if err := m.Send(ctxTimeout(t, 10*time.Second), msg); err != nil {
		t.Fatal(err)
	}
	got, err := sink.Wait(ctxTimeout(t, 5*time.Second), "joerg@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if got.Subject != msg.Subject {
		t.Errorf("subject = %q, want %q", got.Subject, msg.Subject)
	}
	if got.Text != msg.Text {
		t.Errorf("text = %q, want %q", got.Text, msg.Text)
	}
	if got.HTML != msg.HTML {
		t.Errorf("html = %q, want %q", got.HTML, msg.HTML)
	}
	if got.From != "no-reply@example.com" {
		t.Errorf("envelope from = %q", got.From)
	}
	if len(got.To) != 1 || got.To[0] != "Joerg@Example.com" {
		t.Errorf("envelope to = %q", got.To)
	}
	for i, b := range got.Raw {
		if b >= 0x80 {
			t.Fatalf("raw message is not 7-bit clean at byte %d", i)
		}
	}
	raw := string(got.Raw)
	if !strings.HasPrefix(raw, "Date: ") {
		t.Errorf("raw message does not start with Date:\n%s", raw)
	}
	for _, want := range []string{"\r\nFrom: \"Latchkey\" <no-reply@example.com>\r\n", "\r\nTo: =?utf-8?q?J=C3=B6rg_M=C3=BCller?= <Joerg@Example.com>\r\n",
		"\r\nSubject: =?utf-8?q?", "\r\nMessage-ID: <", "@example.com>\r\n", "\r\nMIME-Version: 1.0\r\n",
		"Content-Type: multipart/alternative;", "Content-Type: text/plain; charset=utf-8", "Content-Type: text/html; charset=utf-8",
		"Content-Transfer-Encoding: quoted-printable",
	} {
		if !strings.Contains(raw, want) {
			t.Errorf("raw message lacks %q", want)
		}
	}
	for _, line := range strings.Split(raw, "\r\n") {
		if len(line) > 78 {
			t.Errorf("line longer than 78 characters: %q", line)
		}
	}
	if strings.Index(raw, "text/plain") > strings.Index(raw, "text/html") {
		t.Error("text/plain must come before text/html (RFC 2046 §5.1.4)")
	}
}

func TestSendTextOnlyWithCredentialsToSink(t *testing.T) {
	sink := startSink(t)
	u := strings.Replace(sink.URL(), "smtp://", "smtp://bob%40example.com:s3cr%3At@", 1)
	m, err := New(u, "no-reply@example.com", testLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	if s := m.(*SMTPMailer).String(); strings.Contains(s, "s3cr") || !strings.Contains(s, "xxxxx") {
		t.Errorf("String() = %q, want the password redacted", s)
	}
	if err := m.Send(ctxTimeout(t, 10*time.Second), Message{To: "ada@example.com", Subject: "Hi", Text: "Your code is 123456"}); err != nil {
		t.Fatal(err)
	}
	got, ok := sink.Last("ADA@example.com")
	if !ok {
		t.Fatal("no message")
	}
	if got.Text != "Your code is 123456\n" || got.HTML != "" {
		t.Errorf("text = %q, html = %q", got.Text, got.HTML)
	}
	if !strings.Contains(string(got.Raw), "Content-Type: text/plain; charset=utf-8\r\n") {
		t.Errorf("text-only message should be a single text/plain part:\n%s", got.Raw)
	}
}

func TestHeaderInjectionRefused(t *testing.T) {
	sink := startSink(t)
	m, err := New(sink.URL(), testFrom, testLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, msg := range []Message{
		{To: "ada@example.com\r\nBcc: eve@example.com", Subject: "x", Text: "x"},
		{To: "ada@example.com\n", Subject: "x", Text: "x"},
		{To: "ada@example.com", Subject: "Hello\r\nBcc: eve@example.com", Text: "x"},
		{To: "ada@example.com", Subject: "Hello\nX-Evil: 1", Text: "x"},
		{To: "ada@example.com", Subject: "Hello\rX-Evil: 1", Text: "x"},
	} {
		err := m.Send(ctxTimeout(t, 5*time.Second), msg)
		if !errors.Is(err, ErrHeaderInjection) {
			t.Errorf("Send(%q, %q) = %v, want ErrHeaderInjection", msg.To, msg.Subject, err)
		}
	}
	if n := sink.Total(); n != 0 {
		t.Errorf("sink received %d messages, want none", n)
	}
	if _, err := New(sink.URL(), "a@example.com\r\nBcc: eve@example.com", nil); !errors.Is(err, ErrHeaderInjection) {
		t.Errorf("New with CRLF in from = %v, want ErrHeaderInjection", err)
	}
}

func TestInvalidMessagesRefused(t *testing.T) {
	sink := startSink(t)
	m, err := New(sink.URL(), testFrom, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, msg := range []Message{
		{To: "", Subject: "x", Text: "x"},
		{To: "not an address", Subject: "x", Text: "x"},
		{To: "ada@example.com", Subject: "x", Text: ""},
	} {
		if err := m.Send(ctxTimeout(t, 5*time.Second), msg); err == nil {
			t.Errorf("Send(%+v) succeeded", msg)
		}
	}
}

// fakeServer is a go-smtp server whose answers the test controls.
type fakeServer struct {
	addr string

	rcpt     func(call int32) error // nil = accept
	user     string                 // when set, AUTH PLAIN with user/pass is required
	pass     string
	rcpts    atomic.Int32
	sessions atomic.Int32 // one per EHLO (go-smtp starts a session at EHLO)

	mu    sync.Mutex
	mails []fakeMail
}

type fakeMail struct {
	raw      []byte
	tls      bool
	authUser string
}

func (f *fakeServer) received() []fakeMail {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeMail(nil), f.mails...)
}

type fakeSession struct {
	f        *fakeServer
	conn     *smtp.Conn
	authUser string
}

func (s *fakeSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *fakeSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != s.f.user || password != s.f.pass {
			return smtp.ErrAuthFailed
		}
		s.authUser = username
		return nil
	}), nil
}
func (s *fakeSession) Mail(string, *smtp.MailOptions) error {
	if s.f.user != "" && s.authUser == "" {
		return smtp.ErrAuthRequired
	}
	return nil
}
func (s *fakeSession) Rcpt(string, *smtp.RcptOptions) error {
	n := s.f.rcpts.Add(1)
	if s.f.rcpt != nil {
		return s.f.rcpt(n)
	}
	return nil
}
func (s *fakeSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.f.mu.Lock()
	s.f.mails = append(s.f.mails, fakeMail{raw: b, tls: isTLS, authUser: s.authUser})
	s.f.mu.Unlock()
	return nil
}
func (s *fakeSession) Reset()        {}
func (s *fakeSession) Logout() error { return nil }

// start serves f. With cfg and !implicit the server offers STARTTLS; with
// implicit it speaks TLS from the first byte.
func (f *fakeServer) start(t *testing.T, cfg *tls.Config, implicit bool) {
	t.Helper()
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		f.sessions.Add(1)
		return &fakeSession{f: f, conn: c}, nil
	}))
	srv.Domain = "fake.test"
	srv.AllowInsecureAuth = cfg == nil
	srv.ErrorLog = quietLog{}
	var ln net.Listener
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg != nil && implicit {
		ln = tls.NewListener(ln, cfg)
	} else {
		srv.TLSConfig = cfg
	}
	f.addr = ln.Addr().String()
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); ln.Close(); <-done })
}

type quietLog struct{}

func (quietLog) Printf(string, ...any) {}
func (quietLog) Println(...any)        {}

func fastOptions() Options { return Options{Backoff: 10 * time.Millisecond} }

var testMsg = Message{To: "ada@example.com", Subject: "Code", Text: "Your code is 123456\n", HTML: "<p>Your code is 123456</p>\n"}

func TestRetryOnTemporaryFailure(t *testing.T) {
	f := &fakeServer{rcpt: func(n int32) error {
		if n == 1 {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Try again later"}
		}
		return nil
	}}
	f.start(t, nil, false)
	var logs bytes.Buffer
	m, err := NewWithOptions("smtp://"+f.addr, testFrom, testLogger(&logs), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(ctxTimeout(t, 10*time.Second), testMsg); err != nil {
		t.Fatalf("Send = %v, want success on the second attempt", err)
	}
	if n := f.rcpts.Load(); n != 2 {
		t.Errorf("RCPT calls = %d, want 2", n)
	}
	if n := len(f.received()); n != 1 {
		t.Errorf("delivered %d messages, want 1", n)
	}
	if !strings.Contains(logs.String(), "retrying") {
		t.Errorf("retry not logged: %s", logs.String())
	}
}

// TestFailedSendRetries: every RCPT gets the same refusal; how many
// attempts are made depends on the reply and on the time left.
func TestFailedSendRetries(t *testing.T) {
	for _, tc := range []struct {
		name      string
		reply     *smtp.SMTPError
		opts      Options
		wantRcpts int32
	}{
		{"temporary, give up after three attempts",
			&smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 5}, Message: "Busy"}, fastOptions(), 3},
		{"permanent, no retry on 5xx",
			&smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user"}, fastOptions(), 1},
		{"temporary, no retry past the deadline",
			&smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Try again later"}, Options{Backoff: time.Hour}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeServer{rcpt: func(int32) error { return tc.reply }}
			f.start(t, nil, false)
			m, err := NewWithOptions("smtp://"+f.addr, testFrom, testLogger(nil), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			err = m.Send(ctxTimeout(t, 30*time.Second), testMsg)
			var te *textproto.Error
			if !errors.As(err, &te) || te.Code != tc.reply.Code {
				t.Fatalf("Send = %v, want the %d reply", err, tc.reply.Code)
			}
			if n := f.rcpts.Load(); n != tc.wantRcpts {
				t.Errorf("RCPT calls = %d, want %d", n, tc.wantRcpts)
			}
		})
	}
}

// silentServer accepts connections and never says a word.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

func TestContextDeadlineHonoured(t *testing.T) {
	addr := silentServer(t)
	for _, scheme := range []string{"smtp", "smtps"} {
		m, err := New(scheme+"://"+addr, testFrom, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err = m.Send(ctx, testMsg)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: Send = %v, want context.DeadlineExceeded", scheme, err)
		}
	}
}

func TestContextCancelHonoured(t *testing.T) {
	addr := silentServer(t)
	m, err := New("smtp://"+addr, testFrom, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	if err := m.Send(ctx, testMsg); !errors.Is(err, context.Canceled) {
		t.Errorf("Send = %v, want context.Canceled", err)
	}
}

// selfSigned returns a server certificate for 127.0.0.1 and a pool that
// trusts it.
func selfSigned(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mail test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, pool
}

// TestTLSWithAuth: STARTTLS and implicit TLS (smtps) both deliver over
// TLS, authenticated with the URL's percent-decoded credentials.
func TestTLSWithAuth(t *testing.T) {
	for _, tc := range []struct {
		scheme, userinfo, pass string
		implicit               bool
	}{
		{"smtp", "bob:pa%3Ass%20word", "pa:ss word", false},
		{"smtps", "bob:secret", "secret", true},
	} {
		t.Run(tc.scheme, func(t *testing.T) {
			serverTLS, pool := selfSigned(t)
			f := &fakeServer{user: "bob", pass: tc.pass}
			f.start(t, serverTLS, tc.implicit)
			m, err := NewWithOptions(tc.scheme+"://"+tc.userinfo+"@"+f.addr, testFrom, testLogger(nil), Options{TLSConfig: &tls.Config{RootCAs: pool}})
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Send(ctxTimeout(t, 10*time.Second), testMsg); err != nil {
				t.Fatal(err)
			}
			got := f.received()
			if len(got) != 1 || !got[0].tls || got[0].authUser != "bob" {
				t.Fatalf("received %+v, want one message over TLS authenticated as bob", got)
			}
		})
	}
}

func TestSTARTTLSUntrustedCertificateIsPermanent(t *testing.T) {
	serverTLS, _ := selfSigned(t)
	f := &fakeServer{}
	f.start(t, serverTLS, false)
	m, err := NewWithOptions("smtp://"+f.addr, testFrom, testLogger(nil), fastOptions())
	if err != nil {
		t.Fatal(err)
	}
	err = m.Send(ctxTimeout(t, 10*time.Second), testMsg)
	var uae x509.UnknownAuthorityError
	if !errors.As(err, &uae) {
		t.Fatalf("Send = %v, want an unknown-authority error", err)
	}
	if n := f.sessions.Load(); n != 1 {
		t.Errorf("sessions = %d, want 1 (no retry on a certificate error)", n)
	}
}

func TestCredentialsNeedTLSOffLoopback(t *testing.T) {
	sink := startSink(t) // offers no STARTTLS
	m, err := NewWithOptions(strings.Replace(sink.URL(), "smtp://", "smtp://bob:secret@", 1), testFrom, testLogger(nil), fastOptions())
	if err != nil {
		t.Fatal(err)
	}
	sm := m.(*SMTPMailer)
	if sm.requireTLS {
		t.Fatal("TLS required for a loopback host")
	}
	sm.requireTLS = true // as for a host on the network
	err = sm.Send(ctxTimeout(t, 10*time.Second), testMsg)
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("Send = %v, want a STARTTLS error", err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error leaks the password: %v", err)
	}
	if n := sink.Total(); n != 0 {
		t.Errorf("sink received %d messages", n)
	}

	for host, want := range map[string]bool{
		"localhost": false, "127.0.0.1": false, "127.0.0.2": false, "::1": false, "a.localhost": false,
		"mail.example.com": true, "192.0.2.1": true, "2001:db8::1": true,
	} {
		u := "smtp://bob:secret@" + net.JoinHostPort(host, "587")
		m, err := New(u, testFrom, nil)
		if err != nil {
			t.Fatalf("New(%s): %v", u, err)
		}
		if got := m.(*SMTPMailer).requireTLS; got != want {
			t.Errorf("requireTLS(%s) = %v, want %v", host, got, want)
		}
	}
	m2, _ := New("smtp://mail.example.com:25", testFrom, nil)
	if m2.(*SMTPMailer).requireTLS {
		t.Error("TLS required without credentials")
	}
}

func TestPasswordNeverLeaks(t *testing.T) {
	const pw = "Sup3rS3cret"
	// A port nobody listens on: every attempt fails with a network error.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	var logs bytes.Buffer
	m, err := NewWithOptions("smtp://bob:"+pw+"@"+addr, testFrom, testLogger(&logs), fastOptions())
	if err != nil {
		t.Fatal(err)
	}
	if s := m.(*SMTPMailer).String(); s != "smtp://bob:xxxxx@"+addr {
		t.Errorf("String() = %q", s)
	}
	err = m.Send(ctxTimeout(t, 10*time.Second), testMsg)
	if err == nil {
		t.Fatal("Send to a closed port succeeded")
	}
	if strings.Contains(err.Error(), pw) || strings.Contains(logs.String(), pw) {
		t.Errorf("password leaked: err=%v logs=%s", err, logs.String())
	}
	if !strings.Contains(err.Error(), "3 attempts") {
		t.Errorf("network errors should be retried: %v", err)
	}

	for _, bad := range []string{
		"smtp://bob:" + pw + "@host:notaport",
		"smtp://bob:" + pw + "@ho st:25",
		"smtp://bob:" + pw + "@host:25/path",
		"smtp://bob:" + pw + "@host:25?x=1",
		"smtp://bob:" + pw + "@:25",
		"ftp://bob:" + pw + "@host:25",
		"smtp:bob:" + pw + "@host",
		"%zz://bob:" + pw + "@host",
	} {
		_, err := New(bad, testFrom, nil)
		if err == nil {
			t.Errorf("New(%q) succeeded", bad)
			continue
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("New(%q) error leaks the password: %v", bad, err)
		}
	}
}

func TestNewParsesURLs(t *testing.T) {
	for _, tc := range []struct{ url, addr, str string }{
		{"smtp://mail.example.com", "mail.example.com:25", "smtp://mail.example.com"},
		{"smtps://u:p@mail.example.com", "mail.example.com:465", "smtps://u:xxxxx@mail.example.com"},
		{"SMTP://u@[::1]:2525/", "[::1]:2525", "smtp://u@[::1]:2525"},
	} {
		m, err := New(tc.url, testFrom, nil)
		if err != nil {
			t.Fatalf("New(%q): %v", tc.url, err)
		}
		sm := m.(*SMTPMailer)
		if sm.addr != tc.addr || sm.String() != tc.str {
			t.Errorf("New(%q): addr %q, String %q; want %q, %q", tc.url, sm.addr, sm.String(), tc.addr, tc.str)
		}
	}
	for _, u := range []string{"log:", "log", "LOG://"} {
		m, err := New(u, testFrom, nil)
		if err != nil {
			t.Fatalf("New(%q): %v", u, err)
		}
		if _, ok := m.(*LogMailer); !ok {
			t.Errorf("New(%q) = %T, want *LogMailer", u, m)
		}
	}
	for _, bad := range []string{"", "smtp://", "http://example.com", "smtp://h:25#frag"} {
		if _, err := New(bad, testFrom, nil); err == nil {
			t.Errorf("New(%q) succeeded", bad)
		}
	}
	if _, err := New("log:", "not an address", nil); err == nil {
		t.Error("New with a bad from address succeeded")
	}
}

func TestLogSink(t *testing.T) {
	var buf bytes.Buffer
	m, err := New("log:", testFrom, testLogger(&buf))
	if err != nil {
		t.Fatal(err)
	}
	msg := Message{To: "ada@example.com", Subject: "Your Latchkey sign-in confirmation code", Text: "Use this code to confirm your sign-in:\n\n    123456\n", HTML: "<p>123456</p>"}
	if err := m.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"level=INFO", "===== MAIL (not sent: log sink) =====", "to=<ada@example.com>",
		`subject="Your Latchkey sign-in confirmation code"`, "from=", "date=", "message_id=",
		"Use this code to confirm your sign-in:", "123456",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if err := m.Send(context.Background(), Message{To: "ada@example.com", Subject: "a\nb", Text: "x"}); !errors.Is(err, ErrHeaderInjection) {
		t.Errorf("log sink accepted a header injection: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := m.Send(ctx, msg); !errors.Is(err, context.Canceled) {
		t.Errorf("Send with a cancelled context = %v", err)
	}
}
