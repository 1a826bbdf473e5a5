package federation

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseAMR(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string // JSON
		want []string
	}{
		{"array", `["pwd","otp","mfa"]`, []string{"pwd", "otp", "mfa"}},
		{"single string", `"mfa"`, []string{"mfa"}},
		{"space-separated string", `"pwd  hwk"`, []string{"pwd", "hwk"}},
		{"duplicates and blanks dropped", `["pwd","","pwd"," mfa "]`, []string{"pwd", "mfa"}},
		{"non-strings in the array skipped", `["pwd",1,null,{"x":1}]`, []string{"pwd"}},
		{"number", `42`, nil},
		{"object", `{"pwd":true}`, nil},
		{"null", `null`, nil},
		{"empty array", `[]`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v any
			if err := json.Unmarshal([]byte(tc.in), &v); err != nil {
				t.Fatal(err)
			}
			if got := ParseAMR(v); !slices.Equal(got, tc.want) {
				t.Fatalf("ParseAMR(%s) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
	if got := ParseAMR(nil); got != nil {
		t.Fatalf("absent amr = %q", got)
	}
	long := strings.Repeat("x", 257)
	if got := ParseAMR([]any{long, "pwd"}); !slices.Equal(got, []string{"pwd"}) {
		t.Fatalf("oversized value kept: %q", got)
	}
}

func TestMapClaims(t *testing.T) {
	now := time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)
	decode := func(s string) map[string]any {
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	for _, tc := range []struct {
		name    string
		claims  string
		mapping ClaimMapping
		want    Identity
	}{
		{"defaults", `{"email":" ada@corp.example ","email_verified":true,"name":"Ada L","amr":["pwd","mfa"],"auth_time":1746097200}`,
			ClaimMapping{},
			Identity{Email: "ada@corp.example", EmailVerified: true, Name: "Ada L", AMR: []string{"pwd", "mfa"},
				AuthTime: time.Unix(1746097200, 0).UTC()}},
		{"custom claim names", `{"email":"wrong@x.example","upn":"bob@corp.example","displayName":"Bob","roles":["eng","ops"]}`,
			ClaimMapping{Email: "upn", Name: "displayName", Groups: "roles"},
			Identity{Email: "bob@corp.example", EmailVerified: true, Name: "Bob", Groups: []string{"eng", "ops"},
				AuthTime: now, AuthTimeAbsent: true}},
		{"groups as one string keep their spaces", `{"email":"c@corp.example","grp":"Finance Team"}`,
			ClaimMapping{Groups: "grp"},
			Identity{Email: "c@corp.example", EmailVerified: true, Groups: []string{"Finance Team"}, AuthTime: now, AuthTimeAbsent: true}},
		{"groups ignored without a mapping", `{"email":"c@corp.example","groups":["a"]}`,
			ClaimMapping{},
			Identity{Email: "c@corp.example", EmailVerified: true, AuthTime: now, AuthTimeAbsent: true}},
		{"email_verified false", `{"email":"d@corp.example","email_verified":false}`,
			ClaimMapping{},
			Identity{Email: "d@corp.example", EmailVerified: false, AuthTime: now, AuthTimeAbsent: true}},
		{"email_verified as strings", `{"email":"d@corp.example","email_verified":"false"}`,
			ClaimMapping{},
			Identity{Email: "d@corp.example", EmailVerified: false, AuthTime: now, AuthTimeAbsent: true}},
		{"email_verified garbage is not a no", `{"email":"d@corp.example","email_verified":"maybe"}`,
			ClaimMapping{},
			Identity{Email: "d@corp.example", EmailVerified: true, AuthTime: now, AuthTimeAbsent: true}},
		{"name from given and family", `{"email":"e@corp.example","given_name":"Grace","family_name":"Hopper"}`,
			ClaimMapping{},
			Identity{Email: "e@corp.example", EmailVerified: true, Name: "Grace Hopper", AuthTime: now, AuthTimeAbsent: true}},
		{"name from preferred_username", `{"email":"f@corp.example","preferred_username":"fh"}`,
			ClaimMapping{},
			Identity{Email: "f@corp.example", EmailVerified: true, Name: "fh", AuthTime: now, AuthTimeAbsent: true}},
		{"email of the wrong type", `{"email":["g@corp.example"]}`,
			ClaimMapping{},
			Identity{EmailVerified: true, AuthTime: now, AuthTimeAbsent: true}},
		{"amr as a string, auth_time as a string", `{"email":"h@corp.example","amr":"hwk","auth_time":"1746097200"}`,
			ClaimMapping{},
			Identity{Email: "h@corp.example", EmailVerified: true, AMR: []string{"hwk"}, AuthTime: time.Unix(1746097200, 0).UTC()}},
		{"absurd auth_time is absent", `{"email":"i@corp.example","auth_time":-5}`,
			ClaimMapping{},
			Identity{Email: "i@corp.example", EmailVerified: true, AuthTime: now, AuthTimeAbsent: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := mapClaims(decode(tc.claims), tc.mapping, now)
			if got.Email != tc.want.Email || got.EmailVerified != tc.want.EmailVerified || got.Name != tc.want.Name ||
				!slices.Equal(got.Groups, tc.want.Groups) || !slices.Equal(got.AMR, tc.want.AMR) ||
				!got.AuthTime.Equal(tc.want.AuthTime) || got.AuthTimeAbsent != tc.want.AuthTimeAbsent {
				t.Fatalf("mapClaims =\n %+v\nwant\n %+v", got, tc.want)
			}
		})
	}
}

func TestParseTime(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want int64
		ok   bool
	}{
		{float64(1746097200), 1746097200, true},
		{json.Number("1746097200"), 1746097200, true},
		{"1746097200", 1746097200, true},
		{int64(1746097200), 1746097200, true},
		{"soon", 0, false},
		{float64(0), 0, false},
		{float64(1 << 41), 0, false},
		{true, 0, false},
		{nil, 0, false},
	} {
		got, ok := parseTime(tc.in)
		if ok != tc.ok || (ok && got.Unix() != tc.want) {
			t.Errorf("parseTime(%#v) = %v, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
