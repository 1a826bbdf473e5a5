package mail

import (
	"bytes"
	"io"
	"mime"
	"net/mail"
	"strings"
	"testing"
	"time"
)

func mustAddr(t *testing.T, s string) *mail.Address {
	t.Helper()
	a, err := mail.ParseAddress(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestComposeHeaders(t *testing.T) {
	now := time.Date(2026, 11, 23, 14, 5, 0, 0, time.UTC)
	c, err := compose(mustAddr(t, testFrom), Message{To: "ada@example.com", Subject: "Hello", Text: "hi\n"}, now)
	if err != nil {
		t.Fatal(err)
	}
	m, err := mail.ReadMessage(bytes.NewReader(c.raw))
	if err != nil {
		t.Fatal(err)
	}
	if d, err := m.Header.Date(); err != nil || !d.Equal(now) {
		t.Errorf("Date = %v, %v", d, err)
	}
	for k, want := range map[string]string{
		"From": `"Latchkey" <no-reply@example.com>`, "To": "<ada@example.com>", "Subject": "Hello",
		"Mime-Version": "1.0", "Content-Type": "text/plain; charset=utf-8",
		"Content-Transfer-Encoding": "quoted-printable", "Auto-Submitted": "auto-generated",
	} {
		if got := m.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if id := m.Header.Get("Message-Id"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@example.com>") {
		t.Errorf("Message-ID = %q", id)
	}
	c2, _ := compose(mustAddr(t, testFrom), Message{To: "ada@example.com", Subject: "Hello", Text: "hi\n"}, now)
	if c.messageID == c2.messageID {
		t.Error("Message-ID repeats")
	}
	body, _ := io.ReadAll(m.Body)
	if string(body) != "hi\r\n" {
		t.Errorf("body = %q", body)
	}
}

func TestEncodeSubject(t *testing.T) {
	dec := new(mime.WordDecoder)
	for _, s := range []string{
		"Plain ASCII subject",
		"Bestätigung",
		"Ihr Bestätigungscode – 東京 ✓ " + strings.Repeat("sehr lang ", 15),
		"=?utf-8?q?looks_encoded?=",
		"tab\tand ctrl\x01",
		"a_b=c?d",
		strings.Repeat("é", 100),
	} {
		enc := encodeSubject(s)
		var b bytes.Buffer
		writeHeader(&b, "Subject", enc)
		for _, line := range strings.Split(strings.TrimSuffix(b.String(), "\r\n"), "\r\n") {
			if len(line) > 78 {
				t.Errorf("%q: line of %d characters: %q", s, len(line), line)
			}
		}
		got, err := dec.DecodeHeader(enc)
		if err != nil || got != s {
			t.Errorf("decode(encode(%q)) = %q, %v", s, got, err)
		}
		for i := 0; i < len(enc); i++ {
			if enc[i] >= 0x80 || enc[i] == '\r' || enc[i] == '\n' {
				t.Errorf("%q: encoded subject not 7-bit printable: %q", s, enc)
				break
			}
		}
	}
	if got := encodeSubject("Plain ASCII subject"); got != "Plain ASCII subject" {
		t.Errorf("ASCII subject encoded: %q", got)
	}
}

func TestWriteHeaderFolds(t *testing.T) {
	var b bytes.Buffer
	writeHeader(&b, "Subject", strings.Repeat("word ", 40)+"end")
	lines := strings.Split(strings.TrimSuffix(b.String(), "\r\n"), "\r\n")
	if len(lines) < 3 {
		t.Fatalf("not folded: %q", b.String())
	}
	for i, l := range lines {
		if len(l) > 78 {
			t.Errorf("line %d too long: %q", i, l)
		}
		if i > 0 && !strings.HasPrefix(l, " ") {
			t.Errorf("continuation line %d does not start with a space: %q", i, l)
		}
	}
	unfolded := strings.ReplaceAll(b.String(), "\r\n ", " ")
	if unfolded != "Subject: "+strings.Repeat("word ", 40)+"end\r\n" {
		t.Errorf("unfolding does not give the value back: %q", unfolded)
	}
}

// TestComposeFromDisplayName: a display name outside ASCII goes out as
// RFC 2047 encoded-words (7-bit clean), and reads back as written.
func TestComposeFromDisplayName(t *testing.T) {
	now := time.Date(2026, 11, 23, 14, 5, 0, 0, time.UTC)
	c, err := compose(mustAddr(t, `"Société Générale — Connexion" <connexion@example.fr>`), Message{To: "ada@example.com", Subject: "Hello", Text: "hi\n"}, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range c.raw {
		if b >= 0x80 {
			t.Fatalf("8-bit byte in the message:\n%s", c.raw)
		}
	}
	m, err := mail.ReadMessage(bytes.NewReader(c.raw))
	if err != nil {
		t.Fatal(err)
	}
	raw := m.Header.Get("From")
	if !strings.Contains(raw, "=?utf-8?q?") {
		t.Errorf("From = %q, want encoded-words", raw)
	}
	from, err := m.Header.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Name != "Société Générale — Connexion" || from[0].Address != "connexion@example.fr" {
		t.Errorf("From reads back as %v, %v", from, err)
	}
}
