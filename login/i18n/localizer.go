package i18n

import (
	"errors"
	"fmt"
	"html"
	"html/template"
	"strings"
	"time"

	goi18n "github.com/nicksnyder/go-i18n/v2/i18n"
	gotemplate "github.com/nicksnyder/go-i18n/v2/i18n/template"
)

// Localizer renders messages in one language. It is safe for concurrent
// use.
type Localizer struct {
	lang string
	b    *Bundle
	gl   *goi18n.Localizer
}

func newLocalizer(b *Bundle, lang string) *Localizer {
	return &Localizer{lang: lang, b: b, gl: goi18n.NewLocalizer(b.b, lang)}
}

// Lang is the localizer's language: a BCP 47 tag for <html lang>.
func (l *Localizer) Lang() string { return l.lang }

// parser executes messages; a placeholder the caller did not give is an
// error (shown as the id), not "<no value>".
var msgParser = &gotemplate.TextParser{Option: "missingkey=error"}

// HTMLSuffix marks the ids of messages that contain HTML markup (a
// <code>, a link): their arguments are escaped, and pages take the result
// as HTML. Every other message is plain text, escaped where it lands.
const HTMLSuffix = "_html"

// IsHTML reports whether id names a message with markup.
func IsHTML(id string) bool { return strings.HasSuffix(id, HTMLSuffix) }

// T renders the message id with name/value arguments.
func (l *Localizer) T(id string, args ...any) string { return l.render(id, nil, args) }

// TN renders the message id in the plural form for n ({{.Count}}).
func (l *Localizer) TN(id string, n int, args ...any) string { return l.render(id, &n, args) }

// Msg renders m; the zero Msg is "".
func (l *Localizer) Msg(m Msg) string {
	if m.IsZero() {
		return ""
	}
	if m.Plural {
		return l.render(m.ID, &m.Count, m.Args)
	}
	return l.render(m.ID, nil, m.Args)
}

// HTML renders m for a page: a message with markup (IsHTML) as HTML, any
// other as text the page escapes.
func (l *Localizer) HTML(m Msg) any {
	s := l.Msg(m)
	if IsHTML(m.ID) {
		return template.HTML(s) // arguments escaped by render
	}
	return s
}

func (l *Localizer) render(id string, count *int, args []any) string {
	markup := IsHTML(id)
	data := make(map[string]any, len(args)/2+1)
	for i := 0; i+1 < len(args); i += 2 {
		name, ok := args[i].(string)
		if !ok {
			return missing(id)
		}
		data[name] = l.value(args[i+1], markup)
	}
	if len(args)%2 != 0 {
		return missing(id)
	}
	cfg := &goi18n.LocalizeConfig{MessageID: id, TemplateData: data, TemplateParser: msgParser}
	if count != nil {
		data["Count"] = *count
		cfg.PluralCount = *count
	}
	s, err := l.gl.Localize(cfg)
	if err != nil {
		var nf *goi18n.MessageNotFoundErr
		if errors.As(err, &nf) && s != "" {
			return s // not translated: the English message (the catalogue tests forbid this)
		}
		return missing(id)
	}
	return s
}

// missing is what a message that cannot be rendered shows: its id, so a
// page shows what is wrong (and the pseudo-locale sweep fails on it).
func missing(id string) string { return "[" + id + "]" }

// value is an argument as the message shows it; in a message with markup
// text is escaped.
func (l *Localizer) value(v any, markup bool) any {
	var s string
	switch x := v.(type) {
	case nil:
		s = ""
	case string:
		s = x
	case Msg:
		s = l.Msg(x)
		if markup && IsHTML(x.ID) {
			return s
		}
	case time.Duration:
		s = l.Duration(x)
	case time.Time:
		s = l.DateTime(x)
	case Date:
		s = l.Date(time.Time(x))
	case ShortDate:
		s = l.ShortDate(x.T, x.Now)
	case RelativeDay:
		s = l.RelativeDay(x.T, x.Now)
	case List:
		s = l.List(x)
	case int, int64, int32, uint, uint64, uint32:
		return x
	case fmt.Stringer:
		s = x.String()
	default:
		s = fmt.Sprint(x)
	}
	if markup {
		return html.EscapeString(s)
	}
	return s
}
