package ratelog

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func lines(b *bytes.Buffer) []string {
	s := strings.TrimSpace(b.String())
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// TestRepeatedErrorsCounted: a failure repeated 1,000 times in a window
// is one line; the next one after the window carries the count; other
// failures, warnings below the bar, and lines with an error id pass.
func TestRepeatedErrorsCounted(t *testing.T) {
	var buf bytes.Buffer
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	log := slog.New(New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}), 10*time.Second, clk.now))
	down := errors.New("storage: get client: dial tcp: connect: connection refused")
	for i := range 1000 {
		log.With("request_id", i).Error("client lookup: database unavailable", "err", down)
		clk.t = clk.t.Add(time.Millisecond)
	}
	if got := lines(&buf); len(got) != 1 {
		t.Fatalf("%d lines for one failure, want 1:\n%s", len(got), buf.String())
	}
	log.Error("another failure", "err", down)
	log.Info("request", "path", "/userinfo")
	log.Error("request failed", "error_id", "abc", "err", down)
	log.Error("request failed", "error_id", "abd", "err", down)
	if got := lines(&buf); len(got) != 5 {
		t.Fatalf("%d lines, want 5:\n%s", len(got), buf.String())
	}
	clk.t = clk.t.Add(10 * time.Second)
	log.Error("client lookup: database unavailable", "err", down)
	// The run's count (the 999 left out, the last of them written with
	// it), then the new run's first line.
	got := lines(&buf)
	if len(got) != 7 || !strings.Contains(got[5], "repeated=999") || strings.Contains(got[6], "repeated") {
		t.Fatalf("after the window, want the count of the 999 left out:\n%s", buf.String())
	}
	// A run that stops is summed up by the next line of any kind.
	for range 5 {
		log.Warn("slow", "err", down)
	}
	clk.t = clk.t.Add(11 * time.Second)
	log.Info("tick")
	got = lines(&buf)
	if !strings.Contains(buf.String(), `msg=slow err="storage: get client: dial tcp: connect: connection refused" repeated=4`) {
		t.Fatalf("the stopped run's count is missing:\n%s", strings.Join(got, "\n"))
	}
}
