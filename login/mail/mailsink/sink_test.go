package mailsink_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/latchkey/latchkey/login/mail"
	"github.com/latchkey/latchkey/login/mail/mailsink"
)

func start(t *testing.T, opts mailsink.Options) *mailsink.Sink {
	t.Helper()
	s, err := mailsink.StartWithOptions("127.0.0.1:0", opts)
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

func mailer(t *testing.T, s *mailsink.Sink) mail.Mailer {
	t.Helper()
	m, err := mail.New(s.URL(), "Latchkey <no-reply@example.com>", nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func send(t *testing.T, m mail.Mailer, to, text string) {
	t.Helper()
	if err := m.Send(ctxTimeout(t, 10*time.Second), mail.Message{To: to, Subject: "Code", Text: text, HTML: "<p>" + text + "</p>"}); err != nil {
		t.Fatal(err)
	}
}

func TestAddrAndURL(t *testing.T) {
	s := start(t, mailsink.Options{})
	if !strings.HasPrefix(s.Addr(), "127.0.0.1:") || s.URL() != "smtp://"+s.Addr() {
		t.Errorf("Addr %q, URL %q", s.Addr(), s.URL())
	}
}

func TestLastCountMessages(t *testing.T) {
	s := start(t, mailsink.Options{})
	m := mailer(t, s)
	if _, ok := s.Last("ada@example.com"); ok {
		t.Error("Last on an empty sink")
	}
	send(t, m, "Ada@Example.com", "first 111111")
	send(t, m, "bob@example.com", "for bob 222222")
	send(t, m, "ada@example.com", "second 333333")
	if n := s.Count("ADA@example.com"); n != 2 {
		t.Errorf("Count(ada) = %d", n)
	}
	if n := s.Count("Ada <ada@example.com>"); n != 2 {
		t.Errorf("Count with a display name = %d", n)
	}
	if n := s.Count("nobody@example.com"); n != 0 {
		t.Errorf("Count(nobody) = %d", n)
	}
	r, ok := s.Last("ada@EXAMPLE.com")
	if !ok || !strings.Contains(r.Text, "second") || r.Subject != "Code" || r.From != "no-reply@example.com" || r.At.IsZero() {
		t.Errorf("Last(ada) = %+v, %v", r, ok)
	}
	if code, ok := mailsink.Code(r); !ok || code != "333333" {
		t.Errorf("Code = %q, %v", code, ok)
	}
	all := s.Messages()
	if len(all) != 3 || !strings.Contains(all[0].Text, "first") || !strings.Contains(all[2].Text, "second") {
		t.Errorf("Messages = %d, want 3 oldest first", len(all))
	}
	if s.Total() != 3 {
		t.Errorf("Total = %d", s.Total())
	}
}

func TestWait(t *testing.T) {
	s := start(t, mailsink.Options{})
	m := mailer(t, s)

	// Arrives after the call.
	got := make(chan mailsink.Received, 1)
	errc := make(chan error, 1)
	go func() {
		r, err := s.Wait(ctxTimeout(t, 10*time.Second), "ada@example.com")
		errc <- err
		got <- r
	}()
	send(t, m, "ada@example.com", "code 123456")
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if r := <-got; !strings.Contains(r.Text, "123456") {
		t.Errorf("Wait = %q", r.Text)
	}

	// Arrived before the call and unread: returned at once, newest first.
	send(t, m, "bob@example.com", "old 111111")
	send(t, m, "bob@example.com", "new 222222")
	r, err := s.Wait(ctxTimeout(t, 10*time.Second), "BOB@example.com")
	if err != nil || !strings.Contains(r.Text, "222222") {
		t.Fatalf("Wait(bob) = %q, %v", r.Text, err)
	}

	// Already read: waits for the next one, and the context ends first.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.Wait(ctx, "bob@example.com"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait with nothing new = %v, want DeadlineExceeded", err)
	}

	// Last marks read too.
	send(t, m, "carol@example.com", "x 333333")
	if _, ok := s.Last("carol@example.com"); !ok {
		t.Fatal("Last(carol)")
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if _, err := s.Wait(ctx2, "carol@example.com"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait after Last = %v, want DeadlineExceeded", err)
	}
}

func TestWaitWokenByClose(t *testing.T) {
	s, err := mailsink.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := s.Wait(context.Background(), "ada@example.com")
		errc <- err
	}()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, mailsink.ErrClosed) {
		t.Errorf("Wait = %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestBoundedMemory(t *testing.T) {
	s := start(t, mailsink.Options{MaxMessages: 3, MaxRecipients: 4})
	m := mailer(t, s)
	for i := range 6 {
		send(t, m, fmt.Sprintf("u%d@example.com", i), fmt.Sprintf("message %d code %06d", i, i))
	}
	all := s.Messages()
	if len(all) != 3 || !strings.Contains(all[0].Text, "message 3") || !strings.Contains(all[2].Text, "message 5") {
		t.Errorf("Messages kept %d: %q…", len(all), all[0].Text)
	}
	if s.Total() != 6 {
		t.Errorf("Total = %d", s.Total())
	}
	// u0, u1 were evicted from the recipient index (it keeps 4).
	for i, want := range []bool{false, false, true, true, true, true} {
		_, ok := s.Last(fmt.Sprintf("u%d@example.com", i))
		if ok != want {
			t.Errorf("Last(u%d) found = %v, want %v", i, ok, want)
		}
	}
	// u2's message left the ring: its bulky parts are dropped, the text stays.
	r, _ := s.Last("u2@example.com")
	if r.Raw != nil || r.HTML != "" || !strings.Contains(r.Text, "message 2") {
		t.Errorf("u2 = raw %d bytes, html %q, text %q", len(r.Raw), r.HTML, r.Text)
	}
	r, _ = s.Last("u5@example.com")
	if r.Raw == nil || r.HTML == "" {
		t.Error("u5's message lost its parts while still in the ring")
	}
}

func TestParseBase64NestedAndAuth(t *testing.T) {
	s := start(t, mailsink.Options{})
	raw := strings.Join([]string{
		"From: a@example.com",
		"To: zoe@example.com",
		"Subject: =?UTF-8?B?R3LDvMOfZQ==?= =?utf-8?q?_aus_K=C3=B6ln?=",
		"MIME-Version: 1.0",
		`Content-Type: multipart/mixed; boundary="outer"`,
		"",
		"--outer",
		`Content-Type: multipart/alternative; boundary="inner"`,
		"",
		"--inner",
		"Content-Type: text/plain; charset=utf-8",
		"Content-Transfer-Encoding: base64",
		"",
		"R3LDvMOfZSEgWW91ciBjb2RlIGlzIDY1NDMyMS4K",
		"--inner",
		"Content-Type: text/html; charset=utf-8",
		"Content-Transfer-Encoding: quoted-printable",
		"",
		"<p>Gr=C3=BC=C3=9Fe! Code 654321=",
		"</p>",
		"--inner--",
		"--outer",
		"Content-Type: text/plain",
		"Content-Disposition: attachment; filename=x.txt",
		"",
		"not the body 999999",
		"--outer--",
		"",
	}, "\r\n")
	c, err := smtp.Dial(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "anyone", "anything")); err != nil {
		t.Fatalf("AUTH PLAIN refused: %v", err)
	}
	if err := c.SendMail("a@example.com", []string{"zoe@example.com", "yves@example.com"}, strings.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	_ = c.Quit()

	r, err := s.Wait(ctxTimeout(t, 5*time.Second), "zoe@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if r.Subject != "Grüße aus Köln" {
		t.Errorf("Subject = %q", r.Subject)
	}
	if r.Text != "Grüße! Your code is 654321.\n" {
		t.Errorf("Text = %q", r.Text)
	}
	if r.HTML != "<p>Grüße! Code 654321</p>" {
		t.Errorf("HTML = %q", r.HTML)
	}
	if len(r.To) != 2 || s.Count("yves@example.com") != 1 {
		t.Errorf("To = %q", r.To)
	}
	if code, _ := mailsink.Code(r); code != "654321" {
		t.Errorf("Code = %q", code)
	}
}

func TestCode(t *testing.T) {
	for text, want := range map[string]string{
		"Your code is 123456.": "123456",
		"123456":               "123456",
		"On 23 Nov 2026 from 203.0.113.7: 000042 ok": "000042",
		"order 1234567 then 654321":                  "654321",
		"phone 12345 and 1234567":                    "",
		"":                                           "",
	} {
		got, ok := mailsink.Code(mailsink.Received{Text: text})
		if got != want || ok != (want != "") {
			t.Errorf("Code(%q) = %q, %v; want %q", text, got, ok, want)
		}
	}
}

// TestConcurrentLoad sends many messages in parallel while as many
// goroutines wait for them: every waiter gets its own code.
func TestConcurrentLoad(t *testing.T) {
	s := start(t, mailsink.Options{MaxMessages: 50})
	m := mailer(t, s)
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		to := fmt.Sprintf("user%d@example.com", i)
		code := fmt.Sprintf("%06d", 100000+i)
		wg.Add(2)
		go func() {
			defer wg.Done()
			r, err := s.Wait(ctxTimeout(t, 30*time.Second), to)
			if err != nil {
				errs <- err
				return
			}
			if got, _ := mailsink.Code(r); got != code {
				errs <- fmt.Errorf("%s got code %q, want %q", to, got, code)
			}
		}()
		go func() {
			defer wg.Done()
			if err := m.Send(ctxTimeout(t, 30*time.Second), mail.Message{To: to, Subject: "Code", Text: "Your code is " + code}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if s.Total() != n || len(s.Messages()) != 50 {
		t.Errorf("Total %d, kept %d", s.Total(), len(s.Messages()))
	}
}
