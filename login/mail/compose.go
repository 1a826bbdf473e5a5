package mail

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"time"
)

// composed is a ready-to-send RFC 5322 message plus the values the log
// sink shows.
type composed struct {
	raw       []byte
	rcpt      string // envelope recipient (bare address)
	from      string // From header value
	to        string // To header value
	date      string
	messageID string
}

// compose validates m and builds the RFC 5322 message (RFC 2045-2047 MIME,
// 7-bit clean: non-ASCII headers as RFC 2047 encoded-words, bodies as
// quoted-printable UTF-8).
func compose(from *mail.Address, m Message, now time.Time) (*composed, error) {
	if strings.ContainsAny(m.To, "\r\n") {
		return nil, fmt.Errorf("mail: recipient: %w", ErrHeaderInjection)
	}
	if strings.ContainsAny(m.Subject, "\r\n") {
		return nil, fmt.Errorf("mail: subject: %w", ErrHeaderInjection)
	}
	if strings.TrimSpace(m.To) == "" {
		return nil, errors.New("mail: message has no recipient")
	}
	to, err := mail.ParseAddress(m.To)
	if err != nil {
		return nil, fmt.Errorf("mail: invalid recipient %q: %v", m.To, err)
	}
	if m.Text == "" {
		return nil, errors.New("mail: message has no text part")
	}

	c := &composed{
		rcpt:      to.Address,
		from:      from.String(),
		to:        to.String(),
		date:      now.Format(time.RFC1123Z),
		messageID: newMessageID(from.Address),
	}

	var b bytes.Buffer
	writeHeader(&b, "Date", c.date)
	writeHeader(&b, "From", c.from)
	writeHeader(&b, "To", c.to)
	writeHeader(&b, "Subject", encodeSubject(m.Subject))
	writeHeader(&b, "Message-ID", c.messageID)
	// RFC 3834: tells auto-responders (vacation replies) to keep quiet.
	writeHeader(&b, "Auto-Submitted", "auto-generated")
	writeHeader(&b, "MIME-Version", "1.0")

	if m.HTML == "" {
		writeHeader(&b, "Content-Type", "text/plain; charset=utf-8")
		writeHeader(&b, "Content-Transfer-Encoding", "quoted-printable")
		b.WriteString("\r\n")
		if err := writeQP(&b, m.Text); err != nil {
			return nil, err
		}
		if !bytes.HasSuffix(b.Bytes(), []byte("\r\n")) {
			b.WriteString("\r\n")
		}
	} else {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		writeHeader(&b, "Content-Type", mime.FormatMediaType("multipart/alternative", map[string]string{"boundary": mw.Boundary()}))
		b.WriteString("\r\n")
		// RFC 2046 §5.1.4: the preferred (richest) alternative comes last.
		for _, p := range []struct{ ctype, content string }{
			{"text/plain; charset=utf-8", m.Text},
			{"text/html; charset=utf-8", m.HTML},
		} {
			h := textproto.MIMEHeader{}
			h.Set("Content-Type", p.ctype)
			h.Set("Content-Transfer-Encoding", "quoted-printable")
			w, err := mw.CreatePart(h)
			if err != nil {
				return nil, err
			}
			if err := writeQP(w, p.content); err != nil {
				return nil, err
			}
		}
		if err := mw.Close(); err != nil {
			return nil, err
		}
		b.Write(body.Bytes()) // ends with "--boundary--\r\n"
	}
	c.raw = b.Bytes()
	return c, nil
}

func writeQP(w interface{ Write([]byte) (int, error) }, s string) error {
	qp := quotedprintable.NewWriter(w)
	if _, err := qp.Write([]byte(s)); err != nil {
		return err
	}
	return qp.Close()
}

// writeHeader writes "Name: value" folded at spaces so that lines stay
// within 78 characters where possible (RFC 5322 §2.1.1, §2.2.3).
func writeHeader(b *bytes.Buffer, name, value string) {
	const limit = 78
	line := name + ":"
	for i, word := range strings.Split(value, " ") {
		if i > 0 && len(line)+1+len(word) > limit && strings.TrimSpace(line) != "" && line != name+":" {
			b.WriteString(line)
			b.WriteString("\r\n")
			line = ""
		}
		line += " " + word
	}
	b.WriteString(line)
	b.WriteString("\r\n")
}

// encodeSubject returns s as is when it is printable ASCII, and otherwise
// as RFC 2047 Q encoded-words short enough (≤ 66 characters) that the
// folded header lines stay within 78 characters. mime.QEncoding would
// make words of up to 75 characters, too long for the first line.
func encodeSubject(s string) string {
	plain := !strings.Contains(s, "=?")
	for i := 0; i < len(s) && plain; i++ {
		plain = s[i] == '\t' || (s[i] >= ' ' && s[i] <= '~')
	}
	if plain {
		return s
	}
	const (
		prefix  = "=?utf-8?q?"
		suffix  = "?="
		maxWord = 66
	)
	var words []string
	var cur strings.Builder
	for _, r := range s {
		var enc string
		switch {
		case r == ' ':
			enc = "_"
		case r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!*+-/", r)):
			enc = string(r)
		default:
			var sb strings.Builder
			for _, c := range []byte(string(r)) {
				fmt.Fprintf(&sb, "=%02X", c)
			}
			enc = sb.String()
		}
		if cur.Len() > 0 && len(prefix)+cur.Len()+len(enc)+len(suffix) > maxWord {
			words = append(words, prefix+cur.String()+suffix)
			cur.Reset()
		}
		cur.WriteString(enc)
	}
	if cur.Len() > 0 {
		words = append(words, prefix+cur.String()+suffix)
	}
	return strings.Join(words, " ")
}

func newMessageID(fromAddr string) string {
	domain := "latchkey.invalid"
	if at := strings.LastIndexByte(fromAddr, '@'); at >= 0 && at < len(fromAddr)-1 {
		domain = fromAddr[at+1:]
	}
	var r [16]byte
	_, _ = rand.Read(r[:])
	return "<" + hex.EncodeToString(r[:]) + "@" + domain + ">"
}
