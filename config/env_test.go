package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "latchkey.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestEnvOverrides(t *testing.T) {
	const file = "issuer: http://localhost:8080\nsite_name: File\npolicy:\n  session_idle: 1h\nsignup:\n  enabled: true\n"
	hexKey := strings.Repeat("0f", 32)
	cases := []struct {
		name     string
		file     string // "" for no file
		environ  []string
		check    func(t *testing.T, c *Config)
		warnings []string // exact, WarnNoSMTP excluded
		errLines []string // exact lines; nil for success
	}{
		{
			name:    "no file, no environment",
			environ: nil,
			check: func(t *testing.T, c *Config) {
				if c.Issuer != "http://localhost:8080" || c.DatabaseURL != "sqlite:/var/lib/latchkey/latchkey.db" || !c.Signup.Enabled {
					t.Errorf("defaults: %+v", c)
				}
			},
		},
		{
			name: "environment wins over the file",
			file: file,
			environ: []string{
				"LATCHKEY_ISSUER=https://id.example.com", "LATCHKEY_SECRET_KEY=" + hexKey,
				"LATCHKEY_SMTP_URL=smtp://mail.example.com:587", "LATCHKEY_TRUSTED_PROXIES=[10.0.0.0/8, 192.0.2.1]",
				"LATCHKEY_POLICY_SESSION_IDLE=2d", "LATCHKEY_SITE_NAME=Env: \"quoted\" # kept",
				"LATCHKEY_KEYS_ALGORITHM=EdDSA", "LATCHKEY_TOTP_ISSUER=Env TOTP",
				"LATCHKEY_POLICY_ROLLOUT_DEFAULT=2026-01-01",
			},
			check: func(t *testing.T, c *Config) {
				if c.Issuer != "https://id.example.com" || c.MailFrom != `"Env: \"quoted\" # kept" <noreply@id.example.com>` {
					t.Errorf("issuer %q, mail_from %q", c.Issuer, c.MailFrom)
				}
				if c.Policy.SessionIdle.Std() != 48*time.Hour {
					t.Errorf("session_idle = %v", c.Policy.SessionIdle)
				}
				if c.SiteName != `Env: "quoted" # kept` {
					t.Errorf("site_name = %q (strings are taken literally)", c.SiteName)
				}
				if c.Keys.Algorithm != "EdDSA" || c.TOTP.Issuer != "Env TOTP" {
					t.Errorf("keys.algorithm %q, totp.issuer %q", c.Keys.Algorithm, c.TOTP.Issuer)
				}
				if len(c.SecretKey) != 32 || c.Policy.Rollout.Default.String() != "2026-01-01" {
					t.Errorf("secret %d bytes, rollout %v", len(c.SecretKey), c.Policy.Rollout.Default)
				}
				if ps := c.TrustedProxyPrefixes(); len(ps) != 2 || ps[1].String() != "192.0.2.1/32" {
					t.Errorf("trusted proxies %v", ps)
				}
			},
		},
		{
			name:    "explicit false sticks",
			file:    file,
			environ: []string{"LATCHKEY_SIGNUP_ENABLED=false"},
			check: func(t *testing.T, c *Config) {
				if c.Signup.Enabled {
					t.Error("signup.enabled is true")
				}
			},
		},
		{
			name:    "explicit false in the file sticks",
			file:    "signup:\n  enabled: false\n",
			environ: nil,
			check: func(t *testing.T, c *Config) {
				if c.Signup.Enabled {
					t.Error("signup.enabled is true")
				}
			},
		},
		{
			name:    "empty value keeps the file's value",
			file:    file,
			environ: []string{"LATCHKEY_SITE_NAME=", "LATCHKEY_POLICY_SESSION_IDLE="},
			check: func(t *testing.T, c *Config) {
				if c.SiteName != "File" || c.Policy.SessionIdle.Std() != time.Hour {
					t.Errorf("site_name %q, session_idle %v", c.SiteName, c.Policy.SessionIdle)
				}
			},
		},
		{
			name:    "the last of two assignments wins",
			environ: []string{"LATCHKEY_SITE_NAME=One", "LATCHKEY_SITE_NAME=Two"},
			check: func(t *testing.T, c *Config) {
				if c.SiteName != "Two" {
					t.Errorf("site_name = %q", c.SiteName)
				}
			},
		},
		{
			name:    "data_dir moves the derived database",
			environ: []string{"LATCHKEY_DATA_DIR=/srv/lk/"},
			check: func(t *testing.T, c *Config) {
				if c.DatabaseURL != "sqlite:/srv/lk/latchkey.db" {
					t.Errorf("database_url = %q", c.DatabaseURL)
				}
			},
		},
		{
			name:    "regions replace the defaults wholesale",
			environ: []string{"LATCHKEY_POLICY_ROLLOUT_REGIONS={EU: 2025-04-09}"},
			check: func(t *testing.T, c *Config) {
				r := c.Policy.Rollout.Regions
				if len(r) != 1 || r["EU"].String() != "2025-04-09" {
					t.Errorf("regions = %v", r)
				}
			},
		},
		{
			name: "lists as JSON and as YAML flow",
			environ: []string{
				`LATCHKEY_CLIENTS=[{"id": "tv", "public": true, "type": "native", "grant_types": ["device_code"]}]`,
				`LATCHKEY_ORGANIZATIONS=[{name: Acme, domains: [ACME.com], issuer: "https://sso.acme.com", client_id: lk, client_secret: s, jit: false}]`,
			},
			check: func(t *testing.T, c *Config) {
				if len(c.Clients) != 1 || !slices.Equal(c.Clients[0].GrantTypes, []string{GrantDeviceCode}) {
					t.Errorf("clients = %+v", c.Clients)
				}
				if len(c.Organizations) != 1 || c.Organizations[0].Domains[0] != "acme.com" || c.Organizations[0].JITEnabled() {
					t.Errorf("organizations = %+v", c.Organizations)
				}
			},
		},
		{
			name:     "unknown variables warn, test variables are silent",
			environ:  []string{"LATCHKEY_SESION_IDLE=1h", "LATCHKEY_POLICY_SESION_IDLE=1h", "LATCHKEY_TEST_DATABASE_URL=postgres://x", "LATCHKEY_NOPE=1", "LATCHKEY_NOPE=2", "HOME=/root", "LATCHKEY"},
			warnings: []string{"LATCHKEY_SESION_IDLE: unknown configuration variable, ignored", "LATCHKEY_POLICY_SESION_IDLE: unknown configuration variable, ignored; did you mean LATCHKEY_POLICY_SESSION_IDLE?", "LATCHKEY_NOPE: unknown configuration variable, ignored"},
		},
		{
			name:     "bad values name the variable, all at once",
			file:     file,
			environ:  []string{"LATCHKEY_TOKENS_AUTH_CODE_LIFETIME=1h", "LATCHKEY_KEYS_ROTATION_PERIOD=soon", "LATCHKEY_LOG=debug", "LATCHKEY_CLIENTS={id: x}"},
			warnings: []string{"LATCHKEY_LOG: unknown configuration variable, ignored"},
			errLines: []string{
				`keys.rotation_period: invalid duration "soon" (use e.g. 90s, 10m, 24h, 30d) (from LATCHKEY_KEYS_ROTATION_PERIOD)`,
				`clients: expected a list (from LATCHKEY_CLIENTS)`,
				`tokens.auth_code_lifetime: must be at most 10m, got 1h (from LATCHKEY_TOKENS_AUTH_CODE_LIFETIME)`,
			},
		},
		{
			name:     "a secret never appears in the error",
			environ:  []string{"LATCHKEY_SECRET_KEY=hunter2hunter2"}, // base64 for 10 bytes
			errLines: []string{"secret_key: decodes to 10 bytes, need at least 32; generate one with: openssl rand -hex 32 (from LATCHKEY_SECRET_KEY)"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := ""
			if tc.file != "" {
				path = writeFile(t, tc.file)
			}
			c, warnings, err := Load(path, tc.environ)
			warnings = slices.DeleteFunc(warnings, func(w string) bool { return w == WarnNoSMTP })
			if !slices.Equal(warnings, tc.warnings) {
				t.Errorf("warnings:\n got %q\nwant %q", warnings, tc.warnings)
			}
			if tc.errLines != nil {
				if err == nil {
					t.Fatal("Load succeeded")
				}
				if got := strings.Split(err.Error(), "\n"); !slices.Equal(got, tc.errLines) {
					t.Errorf("errors:\n got %q\nwant %q", got, tc.errLines)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if tc.check == nil {
				return
			}
			tc.check(t, c)
		})
	}
}

func TestLoadWarnsAboutMail(t *testing.T) {
	_, w, err := Load("", nil)
	if err != nil || !slices.Contains(w, WarnNoSMTP) {
		t.Errorf("no smtp_url: warnings %q, %v", w, err)
	}
	_, w, err = Load("", []string{"LATCHKEY_SMTP_URL=log:"})
	if err != nil || len(w) != 0 {
		t.Errorf("smtp_url log: chosen on purpose: warnings %q, %v", w, err)
	}
}

func TestLoadErrors(t *testing.T) {
	if _, _, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, _, err := Load(writeFile(t, "a: 1\n---\nb: 2\n"), nil); err == nil || !strings.Contains(err.Error(), "single YAML document") {
		t.Errorf("two documents: %v", err)
	}
	_, _, err := Load(writeFile(t, "issuer: https://id.example.com\nlog:\n  level: loud\nsmtp_url: \"log:\"\n"), nil)
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) != 2 {
		t.Fatalf("want a *ValidationError with 2 problems, got %#v", err)
	}
	var p *Problem
	if !errors.As(err, &p) || p.Path != "secret_key" {
		t.Errorf("errors.As(*Problem) = %+v", p)
	}
	if ve.Problems[1].Path != "log.level" || ve.Problems[1].Where != "line 3" {
		t.Errorf("problem = %+v", ve.Problems[1])
	}
}
