package op

import (
	"github.com/latchkey/latchkey/storage"

	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestClientAuth(t *testing.T) {
	for _, tc := range []struct {
		name       string
		basic      [2]string
		form       url.Values
		id, secret string
		wantErr    bool
		method     string
	}{
		{name: "basic", basic: [2]string{"svc", "s%3Acret"}, id: "svc", secret: "s:cret", method: authSecretBasic},
		{name: "post", form: url.Values{"client_id": {"svc"}, "client_secret": {"x"}}, id: "svc", secret: "x", method: authSecretPost},
		{name: "both", basic: [2]string{"svc", "x"}, form: url.Values{"client_secret": {"x"}}, wantErr: true},
		{name: "mismatched id", basic: [2]string{"svc", "x"}, form: url.Values{"client_id": {"other"}}, wantErr: true},
		{name: "bad escape", basic: [2]string{"svc", "%zz"}, wantErr: true},
		{name: "assertion without type", form: url.Values{"client_assertion": {"a.b.c"}}, wantErr: true},
		{name: "assertion of the wrong type", form: url.Values{"client_assertion": {"a.b.c"}, "client_assertion_type": {"urn:x"}}, wantErr: true},
		{name: "assertion", form: url.Values{"client_assertion": {"a.b.c"}, "client_assertion_type": {assertionType}}, id: "", method: authPrivateKeyJWT},
		{name: "assertion and basic", basic: [2]string{"svc", "x"}, form: url.Values{"client_assertion": {"a.b.c"}, "client_assertion_type": {assertionType}}, wantErr: true},
		{name: "none", form: url.Values{"client_id": {"pub"}}, id: "pub", method: authNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(tc.form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.basic[0] != "" {
				r.SetBasicAuth(tc.basic[0], tc.basic[1])
			}
			if err := r.ParseForm(); err != nil {
				t.Fatal(err)
			}
			cr, err := readClientCreds(r)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err == nil && (cr.id != tc.id || cr.secret != tc.secret || cr.method != tc.method) {
				t.Fatalf("got %+v", cr)
			}
		})
	}
}

func TestCCScopesAndJSON(t *testing.T) {
	allowed := []string{"api", "read"}
	for req, want := range map[string]string{"": "api read", "read": "read", "read read api": "read api", "openid": "!", "api write": "!"} {
		got, ok := ccScopes(req, allowed, allowed)
		if s := strings.Join(got, " "); (!ok && want != "!") || (ok && s != want) {
			t.Errorf("ccScopes(%q) = %q %v, want %q", req, s, ok, want)
		}
	}
	// The admin API's scopes only for the clients granted them.
	for access, want := range map[string]string{
		"":                "api",
		storage.AdminRead: "api " + ScopeAdminRead,
		storage.AdminFull: "api " + ScopeAdmin + " " + ScopeAdminRead,
	} {
		c := &client{c: storage.Client{Scopes: []string{"api"}, AdminAccess: access}}
		if got := strings.Join(c.ccAllowedScopes(), " "); got != want {
			t.Fatalf("admin access %q: allowed = %q, want %q", access, got, want)
		}
		// Asking for nothing gives the configured scopes, never the admin API's.
		if got, _ := ccScopes("", c.ccAllowedScopes(), c.c.Scopes); strings.Join(got, " ") != "api" {
			t.Fatalf("admin access %q: default scopes %v", access, got)
		}
	}
	for _, s := range []string{"plain", `quo"te`, "back\\slash", "ctl\x01", "ünï"} {
		var back string
		if err := json.Unmarshal(appendJSONString(nil, s), &back); err != nil || back != s {
			t.Fatalf("%q → %s", s, appendJSONString(nil, s))
		}
	}
}

// BenchmarkOpaqueToken mints and opens an opaque access token (the
// AES-GCM sealed "id:subject").
func BenchmarkOpaqueToken(b *testing.B) {
	tc, _ := newTokenCrypto([32]byte{1})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		tok, err := tc.Encrypt("01j9zv7m3k6w2c5x8p4q1r0tb7:njg7fmoawqba36uvl5lp7ygjgd")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tc.Decrypt(tok); err != nil {
			b.Fatal(err)
		}
	}
}
