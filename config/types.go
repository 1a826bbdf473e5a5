package config

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration written for humans: "90s", "10m", "24h", "30d",
// "1d12h", or any Go duration ("1h30m", "500ms"). A day is exactly 24 hours
// (no calendar or DST arithmetic). Negative durations are rejected.
//
// Use Std to get the time.Duration; the conversion time.Duration(d) works too.
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

const day = 24 * time.Hour

// ParseDuration parses the forms accepted by Duration.
func ParseDuration(s string) (Duration, error) {
	in := strings.TrimSpace(s)
	if in == "" {
		return 0, errors.New("empty duration")
	}
	if strings.HasPrefix(in, "-") {
		return 0, fmt.Errorf("duration %q is negative", s)
	}
	in = strings.TrimPrefix(in, "+")
	if in == "0" {
		return 0, nil
	}
	// Split into number+unit pieces; "d" is ours, the rest is Go's syntax.
	var total time.Duration
	for in != "" {
		i := 0
		for i < len(in) && (in[i] == '.' || ('0' <= in[i] && in[i] <= '9')) {
			i++
		}
		j := i
		for j < len(in) && in[j] != '.' && (in[j] < '0' || in[j] > '9') {
			j++
		}
		if i == 0 || j == i {
			return 0, fmt.Errorf("invalid duration %q (use e.g. 90s, 10m, 24h, 30d)", s)
		}
		num, unit := in[:i], in[i:j]
		var piece time.Duration
		var err error
		if unit == "d" {
			piece, err = time.ParseDuration(num + "h")
			if err == nil && piece > math.MaxInt64/24 {
				err = errors.New("overflow")
			}
			piece *= 24
		} else {
			piece, err = time.ParseDuration(num + unit)
		}
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q (use e.g. 90s, 10m, 24h, 30d)", s)
		}
		if total > math.MaxInt64-piece {
			return 0, fmt.Errorf("duration %q is too long", s)
		}
		total += piece
		in = in[j:]
	}
	return Duration(total), nil
}

// String formats d in its shortest readable form: whole days from two days
// up ("30d", "2d12h"), otherwise hours, minutes and seconds ("24h", "1h30m",
// "90s" becomes "1m30s"). The output parses back to the same value.
func (d Duration) String() string {
	v := time.Duration(d)
	if v == 0 {
		return "0s"
	}
	var b strings.Builder
	if v < 0 {
		b.WriteByte('-')
		v = -v
	}
	if v >= 2*day {
		b.WriteString(strconv.FormatInt(int64(v/day), 10) + "d")
		v %= day
	}
	if h := v / time.Hour; h > 0 {
		b.WriteString(strconv.FormatInt(int64(h), 10) + "h")
		v %= time.Hour
	}
	if m := v / time.Minute; m > 0 {
		b.WriteString(strconv.FormatInt(int64(m), 10) + "m")
		v %= time.Minute
	}
	if v > 0 {
		b.WriteString(v.String()) // "30s", "1.5s", "500ms"
	}
	return b.String()
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errors.New("expected a duration such as 10m, 24h or 30d")
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Date is an instant given as a calendar date ("2025-04-02", meaning 00:00
// UTC that day) or as an RFC 3339 timestamp ("2025-04-02T06:00:00+02:00",
// kept to the second and stored in UTC). The zero Date is unset.
type Date struct{ t time.Time }

// NewDate returns the Date for t (converted to UTC).
func NewDate(t time.Time) Date { return Date{t: t.UTC()} }

// ParseDate parses the forms accepted by Date.
func ParseDate(s string) (Date, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return Date{t: t}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return Date{t: t.UTC()}, nil
	}
	return Date{}, fmt.Errorf("invalid date %q (use YYYY-MM-DD or an RFC 3339 timestamp)", s)
}

// Time returns the instant (UTC); the zero time when unset.
func (d Date) Time() time.Time { return d.t }

// IsZero reports whether d is unset.
func (d Date) IsZero() bool { return d.t.IsZero() }

// String returns "2025-04-02" for midnight UTC, else the RFC 3339 form.
func (d Date) String() string {
	if d.t.IsZero() {
		return ""
	}
	if d.t.Equal(d.t.Truncate(day)) {
		return d.t.Format(time.DateOnly)
	}
	return d.t.Format(time.RFC3339)
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Date) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errors.New("expected a date such as 2025-04-02")
	}
	v, err := ParseDate(n.Value)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Date) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Date) UnmarshalText(b []byte) error {
	v, err := ParseDate(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Date) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// JWKS is a JSON Web Key Set (RFC 7517 §5) written inline: in YAML as a
// mapping ({keys: [...]}) or as a JSON string. It holds the JSON text.
type JWKS string

// UnmarshalYAML implements yaml.Unmarshaler.
func (j *JWKS) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*j = JWKS(strings.TrimSpace(n.Value))
		return nil
	case yaml.MappingNode:
		var m map[string]any
		if err := n.Decode(&m); err != nil {
			return err
		}
		b, err := json.Marshal(m)
		if err != nil {
			return fmt.Errorf("a JWK set must be plain JSON values: %w", err)
		}
		*j = JWKS(b)
		return nil
	}
	return errors.New(`expected a JWK set: {keys: [...]}`)
}

// MarshalYAML implements yaml.Marshaler: the set as a mapping.
func (j JWKS) MarshalYAML() (any, error) {
	if j == "" {
		return "", nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(j), &m); err != nil {
		return string(j), nil
	}
	return m, nil
}

// MinSecretKeyLen is the shortest secret_key accepted, in decoded bytes.
const MinSecretKeyLen = 32

// Secret holds the decoded bytes of secret_key. It is given as hex or as
// base64 (standard or URL-safe, padded or not) and must decode to at least
// MinSecretKeyLen bytes. Every way of printing it (fmt verbs, slog, YAML,
// JSON, text) shows "<redacted>", so it cannot leak through a log line or
// an error message; use Bytes to get the key.
type Secret []byte

const redacted = "<redacted>"

// ParseSecret decodes hex or base64. The error never contains the input.
func ParseSecret(s string) (Secret, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("empty secret")
	}
	var b []byte
	// Hex first: a 64-character hex string is also valid base64, and an
	// operator who ran "openssl rand -hex 32" means hex.
	if len(s)%2 == 0 && isHex(s) {
		b, _ = hex.DecodeString(s)
	} else {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if v, err := enc.DecodeString(s); err == nil {
				b = v
				break
			}
		}
		if b == nil {
			return nil, errors.New("not valid hex or base64; generate one with: openssl rand -hex 32")
		}
	}
	if len(b) < MinSecretKeyLen {
		return nil, fmt.Errorf("decodes to %d bytes, need at least %d; generate one with: openssl rand -hex 32", len(b), MinSecretKeyLen)
	}
	return Secret(b), nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// Bytes returns the key material.
func (s Secret) Bytes() []byte { return []byte(s) }

// IsSet reports whether a secret was given.
func (s Secret) IsSet() bool { return len(s) > 0 }

// String returns "<redacted>", or "" when unset.
func (s Secret) String() string {
	if len(s) == 0 {
		return ""
	}
	return redacted
}

// Format makes every fmt verb (%x and %#v included) print String().
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalYAML implements yaml.Marshaler; it never reveals the value.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// MarshalText implements encoding.TextMarshaler (and so JSON); it never
// reveals the value.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalYAML implements yaml.Unmarshaler.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errors.New("expected hex or base64 text")
	}
	if strings.TrimSpace(n.Value) == "" { // secret_key: "" is unset, as printed by Redacted
		*s = nil
		return nil
	}
	v, err := ParseSecret(n.Value)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Secret) UnmarshalText(b []byte) error {
	v, err := ParseSecret(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}
