// Package ratelog keeps a failure that repeats from flooding the log: a
// slog.Handler that writes the first of a run of identical warnings or
// errors and counts the rest. During a database outage every request
// fails the same way; without it the log gets a line per request (1,817
// in 30 s in issue #11), and the line that matters scrolls away.
//
// Two records are identical when they have the same level, message and
// "err" text (request ids and other attributes are not compared). Within
// Window of the last written one, an identical record is only counted;
// the count is written with the next identical record after the window
// (attribute "repeated": how many were left out), or, if the failure
// stopped, on the last left-out record itself (then "repeated" counts it
// too), written by the next record of any kind once the window is over. Records below Warn, and
// records carrying an "error_id" (a user was shown that id and support
// will look for it), are always written.
package ratelog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Window is the default: one line per failure per window.
const Window = 10 * time.Second

// maxKeys bounds the memory of distinct failures; beyond it the oldest
// is forgotten (its count written).
const maxKeys = 1024

type entry struct {
	written time.Time   // when the last identical record was written
	skipped int         // identical records left out since
	last    slog.Record // the last left-out record (to flush its count)
	handler slog.Handler
}

type state struct {
	mu        sync.Mutex
	entries   map[string]*entry
	lastFlush time.Time
	window    time.Duration
	now       func() time.Time
}

// Handler is the deduplicating handler.
type Handler struct {
	next slog.Handler
	st   *state
}

// New wraps next. now is the clock (time.Now in production); window 0
// means Window.
func New(next slog.Handler, window time.Duration, now func() time.Time) *Handler {
	if window <= 0 {
		window = Window
	}
	return &Handler{next: next, st: &state{entries: map[string]*entry{}, window: window, now: now}}
}

// Enabled implements slog.Handler.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

// WithAttrs implements slog.Handler (the memory is shared).
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &Handler{next: h.next.WithAttrs(as), st: h.st}
}

// WithGroup implements slog.Handler (the memory is shared).
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(name), st: h.st}
}

// Handle implements slog.Handler.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	now := h.st.now()
	flush := h.st.due(now)
	for _, f := range flush {
		_ = f.handler.Handle(ctx, f.rec)
	}
	if r.Level < slog.LevelWarn {
		return h.next.Handle(ctx, r)
	}
	key, ok := keyOf(r)
	if !ok {
		return h.next.Handle(ctx, r)
	}
	write, skipped := h.st.admit(key, r, h.next, now)
	if !write {
		return nil
	}
	if skipped > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("repeated", skipped))
	}
	return h.next.Handle(ctx, r)
}

// keyOf is what makes two records identical; ok false for records that
// are always written.
func keyOf(r slog.Record) (string, bool) {
	errText := ""
	keep := true
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "error_id":
			keep = false
			return false
		case "err":
			errText = a.Value.Resolve().String()
		}
		return true
	})
	if !keep {
		return "", false
	}
	return r.Level.String() + "\x00" + r.Message + "\x00" + errText, true
}

// admit decides whether r is written, and with how many left out before.
func (s *state) admit(key string, r slog.Record, next slog.Handler, now time.Time) (bool, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[key]
	if e == nil {
		if len(s.entries) >= maxKeys {
			s.evictOldest()
		}
		s.entries[key] = &entry{written: now}
		return true, 0
	}
	if now.Sub(e.written) < s.window && !now.Before(e.written) {
		e.skipped++
		e.last, e.handler = r.Clone(), next
		return false, 0
	}
	n := e.skipped
	e.written, e.skipped, e.last, e.handler = now, 0, slog.Record{}, nil
	return true, n
}

type pending struct {
	handler slog.Handler
	rec     slog.Record
}

// due takes the counts of runs whose window is over (at most once a
// second), for writing as their last record with its count.
func (s *state) due(now time.Time) []pending {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(s.lastFlush) < time.Second && !now.Before(s.lastFlush) {
		return nil
	}
	s.lastFlush = now
	var out []pending
	for k, e := range s.entries {
		if now.Sub(e.written) < s.window {
			continue
		}
		if e.skipped > 0 {
			rec := e.last
			rec.AddAttrs(slog.Int("repeated", e.skipped))
			out = append(out, pending{handler: e.handler, rec: rec})
		}
		delete(s.entries, k)
	}
	return out
}

func (s *state) evictOldest() {
	var oldest string
	var at time.Time
	for k, e := range s.entries {
		if oldest == "" || e.written.Before(at) {
			oldest, at = k, e.written
		}
	}
	delete(s.entries, oldest)
}
