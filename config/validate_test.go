package config

import (
	"errors"
	"strings"
	"testing"
)

// problemsAt validates c and returns the messages of the problems at path.
func problemsAt(t *testing.T, c *Config, path string) []string {
	t.Helper()
	err := c.Validate()
	if err == nil {
		return nil
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Validate = %v, want a *ValidationError", err)
	}
	var out []string
	for _, p := range ve.Problems {
		if p.Path == path {
			out = append(out, p.Msg)
		}
	}
	return out
}

// TestValidateIssuer: the issuer is every token's "iss" and the base of
// discovery (OpenID Connect Core §2, Discovery §4).
func TestValidateIssuer(t *testing.T) {
	for issuer, want := range map[string]string{
		"":                               "required",
		"id.example.com":                 "is not an absolute URL",
		"https://":                       "is not an absolute URL",
		"https://ada:pw@id.example.com":  "must not contain a user name or password",
		"ftp://id.example.com":           "must be an http or https URL",
		"https://id.example.com?x=1":     "must not have a query or fragment",
		"https://id.example.com?":        "must not have a query or fragment",
		"https://id.example.com#top":     "must not have a query or fragment",
		"https://id.example.com/":        "must not end with '/'",
		"http://id.example.com":          "must use https",
		"http://127.0.0.1.example.com":   "must use https",
		"https://id.example.com/tenant1": "",
		"http://localhost:8080":          "",
		"http://[::1]:8080":              "",
	} {
		c := Default()
		c.Issuer = issuer
		got := problemsAt(t, c, "issuer")
		if want == "" && len(got) > 0 || want != "" && (len(got) == 0 || !strings.Contains(got[0], want)) {
			t.Errorf("issuer %q: problems %q, want %q", issuer, got, want)
		}
	}
}

// TestValidateLocatesNothing: the CLI validates a copy of the loaded
// configuration with its own client or organisation in place of the
// file's; a problem must not point at the line of the entry it replaced.
func TestValidateLocatesNothing(t *testing.T) {
	c, _, err := Load("testdata/ok/full.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	check := *c
	check.Clients = []Client{{ID: "cli"}}
	check.Organizations = []Organization{{Name: "CLI", Domains: []string{"cli.example"}, Issuer: "https://sso.cli.example"}}
	var ve *ValidationError
	if err := check.Validate(); !errors.As(err, &ve) || len(ve.Problems) < 3 {
		t.Fatalf("Validate = %v, want the client's secret and redirect URIs and the organisation's client id and secret", err)
	}
	for _, p := range ve.Problems {
		if p.Where != "" {
			t.Errorf("%s located at %q", p.Path, p.Where)
		}
	}
}
