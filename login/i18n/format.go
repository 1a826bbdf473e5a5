package i18n

import (
	"fmt"
	"strings"
	"time"

	"github.com/latchkey/latchkey/login/flow"
)

// Duration says a duration the way pages and mails speak, split as
// flow.DurationParts splits it (the one rule for every speaker). Each unit
// is a plural message of its own (duration.days, …) and the units are
// joined by the language's pattern (duration.join).
func (l *Localizer) Duration(d time.Duration) string {
	if d < time.Minute {
		return l.TN("duration.seconds", int(d/time.Second))
	}
	days, hours, minutes, _ := flow.DurationParts(d)
	var parts []string
	if days > 0 {
		parts = append(parts, l.TN("duration.days", days))
	}
	if hours > 0 {
		parts = append(parts, l.TN("duration.hours", hours))
	}
	if minutes > 0 {
		parts = append(parts, l.TN("duration.minutes", minutes))
	}
	out := parts[0]
	for _, p := range parts[1:] {
		out = l.T("duration.join", "Larger", out, "Smaller", p)
	}
	return out
}

// monthIDs are the abbreviated month names, January first.
var monthIDs = [12]string{"date.month.jan", "date.month.feb", "date.month.mar", "date.month.apr", "date.month.may",
	"date.month.jun", "date.month.jul", "date.month.aug", "date.month.sep", "date.month.oct", "date.month.nov", "date.month.dec"}

// dateArgs are what the date patterns may use: Day, Month (abbreviated
// name), MonthNumber, Year, Hour and Minute (two digits), Zone.
func (l *Localizer) dateArgs(t time.Time) []any {
	return []any{
		"Day", t.Day(), "Month", l.T(monthIDs[t.Month()-1]), "MonthNumber", int(t.Month()), "Year", t.Year(),
		"Hour", fmt.Sprintf("%02d", t.Hour()), "Minute", fmt.Sprintf("%02d", t.Minute()), "Zone", zoneName(t),
	}
}

// zoneName names t's zone: "UTC", an abbreviation ("CET"), or the offset
// ("UTC+05:30") when the zone has no letters of its own.
func zoneName(t time.Time) string {
	name, off := t.Zone()
	if off == 0 && (name == "UTC" || name == "GMT" || name == "") {
		return "UTC"
	}
	if name != "" && strings.IndexFunc(name, func(r rune) bool { return r < 'A' || r > 'Z' }) < 0 {
		return name
	}
	sign := "+"
	if off < 0 {
		sign, off = "-", -off
	}
	return fmt.Sprintf("UTC%s%02d:%02d", sign, off/3600, off%3600/60)
}

// Date is a day in t's location: "2 Dec 2026" (date.day).
func (l *Localizer) Date(t time.Time) string { return l.T("date.day", l.dateArgs(t)...) }

// DateTime is a day and time in t's location with its zone: "23 Nov 2026,
// 14:05 UTC" (date.time); the zero time is "never".
func (l *Localizer) DateTime(t time.Time) string {
	if t.IsZero() {
		return l.T("date.never")
	}
	return l.T("date.time", l.dateArgs(t)...)
}

// ShortDate is "2 Dec" (date.short), with the year ("2 Dec 2025",
// date.day) when t is not in now's year.
func (l *Localizer) ShortDate(t, now time.Time) string {
	t = t.In(now.Location())
	if t.Year() == now.Year() {
		return l.T("date.short", l.dateArgs(t)...)
	}
	return l.Date(t)
}

// RelativeDay is "today", "yesterday", "3 days ago", then "on 2 Dec";
// "never" for the zero time. Days are counted in now's location.
func (l *Localizer) RelativeDay(t, now time.Time) string {
	if t.IsZero() {
		return l.T("date.never")
	}
	t = t.In(now.Location())
	ty, tm, td := t.Date()
	ny, nm, nd := now.Date()
	days := int(time.Date(ny, nm, nd, 0, 0, 0, 0, time.UTC).Sub(time.Date(ty, tm, td, 0, 0, 0, 0, time.UTC)) / (24 * time.Hour))
	switch {
	case days <= 0:
		return l.T("date.today")
	case days == 1:
		return l.T("date.yesterday")
	case days < 7:
		return l.TN("date.days_ago", days)
	}
	return l.T("date.on", "Date", l.ShortDate(t, now))
}

// List joins items the language's way: "a, b and c" is not assembled
// here — items are separated by list.separator (", " in English), which
// reads right for the lists we show (what a product may do).
func (l *Localizer) List(items List) string {
	parts := make([]string, len(items))
	for i, m := range items {
		parts[i] = l.Msg(m)
	}
	return strings.Join(parts, l.T("list.separator"))
}
