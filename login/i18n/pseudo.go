package i18n

import (
	"strings"
	"unicode/utf8"

	goi18n "github.com/nicksnyder/go-i18n/v2/i18n"
)

// The pseudo-locale (Pseudo, "en-XA") is English with every letter of
// every message accented and every message wrapped in PseudoOpen …
// PseudoClose: "⟦Šîĝñ îñ⟧". A page rendered in it shows at a glance, and
// to a test (strip the marked segments, no letter may remain), any text
// that did not come from the catalogue; the accents show text that is cut
// or that breaks a layout. Placeholders ({{.Name}}) and, in messages with
// markup, tags and entities are kept as they are.
const (
	PseudoOpen  = "⟦"
	PseudoClose = "⟧"
)

var pseudoLetters = map[rune]rune{
	'a': 'å', 'b': 'ƀ', 'c': 'ç', 'd': 'ð', 'e': 'é', 'f': 'ƒ', 'g': 'ĝ', 'h': 'ĥ', 'i': 'î', 'j': 'ĵ',
	'k': 'ķ', 'l': 'ļ', 'm': 'ɱ', 'n': 'ñ', 'o': 'ö', 'p': 'þ', 'q': 'ǫ', 'r': 'ŕ', 's': 'š', 't': 'ţ',
	'u': 'û', 'v': 'ṽ', 'w': 'ŵ', 'x': 'ẋ', 'y': 'ý', 'z': 'ž',
	'A': 'Å', 'B': 'Ɓ', 'C': 'Ç', 'D': 'Ð', 'E': 'É', 'F': 'Ƒ', 'G': 'Ĝ', 'H': 'Ĥ', 'I': 'Î', 'J': 'Ĵ',
	'K': 'Ķ', 'L': 'Ļ', 'M': 'Ṁ', 'N': 'Ñ', 'O': 'Ö', 'P': 'Þ', 'Q': 'Ǫ', 'R': 'Ŕ', 'S': 'Š', 'T': 'Ţ',
	'U': 'Û', 'V': 'Ṽ', 'W': 'Ŵ', 'X': 'Ẋ', 'Y': 'Ý', 'Z': 'Ž',
}

func pseudoMessages(en []*goi18n.Message) []*goi18n.Message {
	out := make([]*goi18n.Message, len(en))
	for i, m := range en {
		p := *m
		markup := IsHTML(m.ID)
		for _, f := range []*string{&p.Zero, &p.One, &p.Two, &p.Few, &p.Many, &p.Other} {
			if *f != "" {
				*f = PseudoText(*f, markup)
			}
		}
		out[i] = &p
	}
	return out
}

// PseudoText is the pseudo-locale's form of an English message source.
func PseudoText(src string, markup bool) string {
	var b strings.Builder
	b.WriteString(PseudoOpen)
	for i := 0; i < len(src); {
		rest := src[i:]
		var skip int
		switch {
		case strings.HasPrefix(rest, "{{"):
			skip = strings.Index(rest, "}}") + 2
		case markup && rest[0] == '<':
			skip = strings.IndexByte(rest, '>') + 1
		case markup && rest[0] == '&':
			if j := strings.IndexByte(rest, ';'); j > 0 && j < 10 && !strings.ContainsAny(rest[:j], " <") {
				skip = j + 1
			}
		}
		if skip > 0 {
			b.WriteString(rest[:skip])
			i += skip
			continue
		}
		r, n := utf8.DecodeRuneInString(rest)
		if a, ok := pseudoLetters[r]; ok {
			b.WriteRune(a)
		} else {
			b.WriteString(rest[:n])
		}
		i += n
	}
	b.WriteString(PseudoClose)
	return b.String()
}
