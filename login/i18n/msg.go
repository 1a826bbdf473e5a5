package i18n

import "time"

// Msg is a message to show: an id of the catalogue and its arguments,
// localized where it is rendered (a page, a mail), never before. Handlers
// and services pass Msgs around instead of text, so that no sentence is
// assembled from fragments and every word comes from the catalogue.
//
// Arguments are name/value pairs. A value is shown as it is (strings,
// numbers), or localized when it is one of: time.Duration ("10 minutes"),
// time.Time (a date and time in the time's location), Msg, Date,
// ShortDate, RelativeDay, List.
type Msg struct {
	ID    string
	Args  []any
	Count int
	// Plural: Count picks the plural form ("1 day", "2 days").
	Plural bool
}

// M is the message id with arguments given as name, value pairs:
// M("throttle.wait", "Wait", d).
func M(id string, args ...any) Msg { return Msg{ID: id, Args: args} }

// N is a message whose plural form follows n (CLDR plural rules of the
// language); the template sees n as {{.Count}}.
func N(id string, n int, args ...any) Msg { return Msg{ID: id, Args: args, Count: n, Plural: true} }

// With is m with more arguments (name, value pairs).
func (m Msg) With(args ...any) Msg {
	m.Args = append(append([]any(nil), m.Args...), args...)
	return m
}

// IsZero reports whether m is no message at all.
func (m Msg) IsZero() bool { return m.ID == "" }

// Date is a day: "2 Dec 2026" (in its location).
type Date time.Time

// ShortDate is a day near Now: "2 Dec", with the year when it is not
// Now's year.
type ShortDate struct{ T, Now time.Time }

// RelativeDay is when something last happened, relative to Now: "today",
// "yesterday", "3 days ago", then "on 2 Dec"; the zero time is "never".
type RelativeDay struct{ T, Now time.Time }

// List is a list of items joined the language's way ("a, b, c").
type List []Msg
