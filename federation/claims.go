package federation

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
)

// ClaimMapping names the upstream claims we read (config claims.*).
type ClaimMapping struct {
	Email  string // default "email"
	Name   string // default "name"
	Groups string // optional
}

func (m ClaimMapping) withDefaults() ClaimMapping {
	if m.Email == "" {
		m.Email = "email"
	}
	if m.Name == "" {
		m.Name = "name"
	}
	return m
}

// mapClaims reads the mapped claims of a verified ID token (merged with
// userinfo where the caller fetched it). now stands in for a missing
// auth_time.
func mapClaims(claims map[string]any, m ClaimMapping, now time.Time) Identity {
	m = m.withDefaults()
	var id Identity
	id.Email = strings.TrimSpace(stringClaim(claims[m.Email]))
	id.EmailVerified = true
	if v, ok := claims["email_verified"]; ok {
		if b, ok := boolClaim(v); ok && !b {
			id.EmailVerified = false
		}
	}
	id.Name = strings.TrimSpace(stringClaim(claims[m.Name]))
	if id.Name == "" {
		given, family := stringClaim(claims["given_name"]), stringClaim(claims["family_name"])
		id.Name = strings.TrimSpace(given + " " + family)
	}
	if id.Name == "" {
		id.Name = strings.TrimSpace(stringClaim(claims["preferred_username"]))
	}
	if m.Groups != "" {
		id.Groups = listClaim(claims[m.Groups], false)
	}
	id.AMR = ParseAMR(claims["amr"])
	if t, ok := parseTime(claims["auth_time"]); ok {
		id.AuthTime = t
	} else {
		id.AuthTime, id.AuthTimeAbsent = now, true
	}
	return id
}

// ParseAMR reads an amr claim: a JSON array of strings (RFC 8176), or a
// single string some IdPs send instead (space-separated values allowed).
// Empty and duplicate values are dropped; anything else yields nil.
func ParseAMR(v any) []string { return listClaim(v, true) }

// listClaim reads an array of strings or one string. split: a string is a
// space-separated list (amr); otherwise it is one value (a group name may
// contain spaces).
func listClaim(v any, split bool) []string {
	var raw []string
	switch x := v.(type) {
	case string:
		if split {
			raw = strings.Fields(x)
		} else {
			raw = []string{x}
		}
	case []string:
		raw = x
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok {
				raw = append(raw, s)
			}
		}
	}
	var out []string
	seen := map[string]bool{}
	for _, s := range raw {
		s = strings.TrimSpace(s)
		if s == "" || seen[s] || len(s) > 256 {
			continue
		}
		seen[s] = true
		out = append(out, s)
	}
	return out
}

func stringClaim(v any) string {
	s, _ := v.(string)
	return s
}

// boolClaim reads a JSON boolean or the strings "true"/"false" (some IdPs
// send email_verified as a string).
func boolClaim(v any) (bool, bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case string:
		b, err := strconv.ParseBool(x)
		return b, err == nil
	}
	return false, false
}

// parseTime reads a NumericDate (RFC 7519 §2): a JSON number, or a
// numeric string from lenient IdPs. Non-positive or absurd values are
// treated as absent.
func parseTime(v any) (time.Time, bool) {
	var f float64
	switch x := v.(type) {
	case float64:
		f = x
	case json.Number:
		var err error
		if f, err = x.Float64(); err != nil {
			return time.Time{}, false
		}
	case int64:
		f = float64(x)
	case int:
		f = float64(x)
	case string:
		var err error
		if f, err = strconv.ParseFloat(strings.TrimSpace(x), 64); err != nil {
			return time.Time{}, false
		}
	default:
		return time.Time{}, false
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 || f > 1<<40 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true
}
