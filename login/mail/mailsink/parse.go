package mailsink

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
)

var wordDecoder = &mime.WordDecoder{
	// Only UTF-8 and ASCII are expected; other charsets pass through
	// undecoded rather than failing the whole subject.
	CharsetReader: func(charset string, input io.Reader) (io.Reader, error) { return input, nil },
}

// parse fills Subject, Text, HTML and Raw from a raw RFC 5322 message. It
// never fails: what it cannot parse stays empty (Raw is always kept).
func parse(raw []byte) Received {
	r := Received{Raw: raw}
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return r
	}
	subj := m.Header.Get("Subject")
	if dec, err := wordDecoder.DecodeHeader(subj); err == nil {
		subj = dec
	}
	r.Subject = subj
	walk(&r, m.Header.Get("Content-Type"), m.Header.Get("Content-Transfer-Encoding"), m.Header.Get("Content-Disposition"), m.Body, 0)
	return r
}

// walk decodes one MIME entity, descending into multiparts, and keeps
// the first text/plain and the first text/html that are not attachments.
func walk(r *Received, ctype, cte, disposition string, body io.Reader, depth int) {
	if depth > 10 {
		return
	}
	if ctype == "" {
		ctype = "text/plain"
	}
	mediatype, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		return
	}
	if strings.HasPrefix(mediatype, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			// NextRawPart: decode the transfer encoding ourselves, the
			// same way for every part.
			p, err := mr.NextRawPart()
			if err != nil {
				return
			}
			walk(r, p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p.Header.Get("Content-Disposition"), p, depth+1)
		}
	}
	if d, _, err := mime.ParseMediaType(disposition); err == nil && d == "attachment" {
		return
	}
	if mediatype != "text/plain" && mediatype != "text/html" {
		return
	}
	if (mediatype == "text/plain" && r.Text != "") || (mediatype == "text/html" && r.HTML != "") {
		return
	}
	var dec io.Reader = body
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "quoted-printable":
		dec = quotedprintable.NewReader(body)
	case "base64":
		dec = base64.NewDecoder(base64.StdEncoding, body)
	}
	b, err := io.ReadAll(dec)
	if err != nil && len(b) == 0 {
		return
	}
	s := strings.ReplaceAll(string(b), "\r\n", "\n")
	if mediatype == "text/plain" {
		r.Text = s
	} else {
		r.HTML = s
	}
}
