package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestParseDuration(t *testing.T) {
	good := []struct {
		in   string
		want time.Duration
		out  string // String() of the result
	}{
		{"0", 0, "0s"},
		{"0s", 0, "0s"},
		{"90s", 90 * time.Second, "1m30s"},
		{"10m", 10 * time.Minute, "10m"},
		{"24h", 24 * time.Hour, "24h"},
		{"1d", 24 * time.Hour, "24h"},
		{"2d", 48 * time.Hour, "2d"},
		{"30d", 30 * day, "30d"},
		{"1d12h", 36 * time.Hour, "36h"},
		{"45d12h", 45*day + 12*time.Hour, "45d12h"},
		{"1.5d", 36 * time.Hour, "36h"},
		{"1h30m", 90 * time.Minute, "1h30m"},
		{"500ms", 500 * time.Millisecond, "500ms"},
		{"1m1.5s", 61500 * time.Millisecond, "1m1.5s"},
		{" 15m ", 15 * time.Minute, "15m"},
		{"+5m", 5 * time.Minute, "5m"},
		{"2h3m4s", 2*time.Hour + 3*time.Minute + 4*time.Second, "2h3m4s"},
	}
	for _, tc := range good {
		got, err := ParseDuration(tc.in)
		if err != nil || got.Std() != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tc.in, got.Std(), err, tc.want)
			continue
		}
		if s := got.String(); s != tc.out {
			t.Errorf("Duration(%v).String() = %q, want %q", tc.want, s, tc.out)
		}
		if back, err := ParseDuration(got.String()); err != nil || back != got {
			t.Errorf("round trip of %q: %v, %v", got.String(), back, err)
		}
	}
	bad := []string{"", "-5m", "-0s", "10", "abc", "10x", "d", "1d-2h", "1 d", "5m30", "99999999999d", "1e3s", ".h"}
	for _, in := range bad {
		if got, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", in, got)
		}
	}
}

func TestDurationYAML(t *testing.T) {
	var v struct {
		D Duration `yaml:"d"`
	}
	if err := yaml.Unmarshal([]byte("d: 1d12h\n"), &v); err != nil || v.D.Std() != 36*time.Hour {
		t.Fatalf("unmarshal: %v, %v", v.D, err)
	}
	if err := yaml.Unmarshal([]byte("d: [1]\n"), &v); err == nil {
		t.Error("a list decoded as a duration")
	}
	v.D = Duration(30 * day)
	out, err := yaml.Marshal(v)
	if err != nil || string(out) != "d: 30d\n" {
		t.Errorf("marshal: %q, %v", out, err)
	}
}

func TestParseDate(t *testing.T) {
	good := []struct {
		in   string
		want time.Time
		out  string
	}{
		{"2025-04-02", time.Date(2025, 4, 2, 0, 0, 0, 0, time.UTC), "2025-04-02"},
		{"2025-04-09T00:00:00Z", time.Date(2025, 4, 9, 0, 0, 0, 0, time.UTC), "2025-04-09"},
		{"2025-04-09T06:00:00+02:00", time.Date(2025, 4, 9, 4, 0, 0, 0, time.UTC), "2025-04-09T04:00:00Z"},
		{"2024-02-29", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), "2024-02-29"},
	}
	for _, tc := range good {
		got, err := ParseDate(tc.in)
		if err != nil || !got.Time().Equal(tc.want) || got.Time().Location() != time.UTC {
			t.Errorf("ParseDate(%q) = %v, %v; want %v", tc.in, got.Time(), err, tc.want)
			continue
		}
		if got.String() != tc.out {
			t.Errorf("ParseDate(%q).String() = %q, want %q", tc.in, got.String(), tc.out)
		}
	}
	for _, in := range []string{"", "2025-4-2", "2025-02-30", "02/04/2025", "2025-04-02 10:00", "tomorrow"} {
		if got, err := ParseDate(in); err == nil {
			t.Errorf("ParseDate(%q) = %v, want an error", in, got)
		}
	}
	// Unquoted in YAML, a date is a !!timestamp; it must still decode.
	var v struct {
		D Date `yaml:"d"`
	}
	if err := yaml.Unmarshal([]byte("d: 2025-04-02\n"), &v); err != nil || v.D.String() != "2025-04-02" {
		t.Errorf("unmarshal: %v, %v", v.D, err)
	}
}

func TestParseSecret(t *testing.T) {
	raw := bytes.Repeat([]byte{0xfb, 0xff, 0x01}, 11) // 33 bytes; base64 has + and /
	hex64 := strings.Repeat("ab", 32)
	good := []struct {
		name, in string
		want     []byte
	}{
		{"hex", hex64, bytes.Repeat([]byte{0xab}, 32)},
		{"HEX", strings.ToUpper(hex64), bytes.Repeat([]byte{0xab}, 32)},
		{"base64 std", "+/8B+/8B+/8B+/8B+/8B+/8B+/8B+/8B+/8B+/8B+/8B", raw},
		{"base64 url", "-_8B-_8B-_8B-_8B-_8B-_8B-_8B-_8B-_8B-_8B-_8B", raw},
		{"base64 padded", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", make([]byte, 32)},
		{"base64 unpadded", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", make([]byte, 32)},
		{"surrounding space", " " + hex64 + "\n", bytes.Repeat([]byte{0xab}, 32)},
	}
	for _, tc := range good {
		got, err := ParseSecret(tc.in)
		if err != nil || !bytes.Equal(got.Bytes(), tc.want) {
			t.Errorf("%s: ParseSecret = %x, %v; want %x", tc.name, got.Bytes(), err, tc.want)
		}
	}
	bad := []struct{ name, in string }{
		{"empty", ""},
		{"short hex", strings.Repeat("ab", 31)},
		{"short base64", "c2hvcnQ="},
		{"not encoded", "correct horse battery staple and more words!!"},
		{"odd hex that is not base64", strings.Repeat("a", 63) + "!"},
	}
	for _, tc := range bad {
		got, err := ParseSecret(tc.in)
		if err == nil {
			t.Errorf("%s: ParseSecret = %x, want an error", tc.name, got.Bytes())
			continue
		}
		if tc.in != "" && strings.Contains(err.Error(), strings.TrimSpace(tc.in)) {
			t.Errorf("%s: the error reveals the input: %v", tc.name, err)
		}
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	s, err := ParseSecret(strings.Repeat("5e", 32))
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "key", s)
	js, _ := json.Marshal(struct{ K Secret }{s})
	y, _ := yaml.Marshal(struct{ K Secret }{s})
	cfg := Config{SecretKey: s}
	outputs := []string{
		fmt.Sprint(s), fmt.Sprintf("%s %v %x %X %q %#v %+v %d", s, s, s, s, s, s, s, s),
		fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg), s.String(), logged.String(), string(js), string(y),
	}
	for _, out := range outputs {
		if strings.Contains(strings.ToLower(out), "5e5e") || strings.Contains(out, "94 94") || !strings.Contains(out, "redacted") {
			t.Errorf("secret printed or not redacted: %q", out)
		}
	}
	if Secret(nil).String() != "" {
		t.Error("an unset secret should print as empty")
	}
}
