package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/config"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// BenchmarkTokenEndpoint measures the token endpoint through the real HTTP
// handler (everything but the socket), with the default keys (ID tokens
// RS256 unless a client registered ES256, JWT access tokens ES256):
// client_credentials with JWT and opaque access tokens, and the rotating
// refresh grant of a client registered for RS256 ID tokens and of one
// registered for ES256, on each database. cpu-ns/op is the test process's
// CPU time per request (server and database driver, SQLite included; not
// PostgreSQL's own).
//
//	go test -run x -bench TokenEndpoint ./cmd/latchkey/
func BenchmarkTokenEndpoint(b *testing.B) {
	for _, d := range storagetest.Dialects(b) {
		e := newTestEnv(b, d, func(c *config.Config) { c.Keys = config.Default().Keys })
		app := e.newRP("app", func(c *storage.Client) { c.Scopes = []string{"api"} })
		e.newRP("app-jwt", func(c *storage.Client) { c.AccessTokenFormat, c.Scopes = storage.TokenFormatJWT, []string{"api"} })
		jwt := *app
		jwt.id = "app-jwt"
		jwt.secret = "s3cret-app-jwt-0123456789abcdefghijklmnop"

		for _, c := range []*rp{&jwt, app} {
			name := "opaque"
			if c.id == "app-jwt" {
				name = "jwt"
			}
			b.Run(d.Name+"/client_credentials/"+name, func(b *testing.B) {
				form := url.Values{"grant_type": {"client_credentials"}, "scope": {"api"}}.Encode()
				b.ReportAllocs()
				start := processCPU()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						rec := tokenRequest(e, c, form)
						if rec.Code != http.StatusOK {
							b.Fatalf("status %d: %s", rec.Code, rec.Body)
						}
					}
				})
				reportCPU(b, start)
			})
		}

		for _, alg := range []string{"RS256", "ES256"} {
			rp := e.newRP("app-"+alg, func(c *storage.Client) { c.IDTokenSigningAlg = alg })
			u := e.createUser("bench-" + alg + "@example.com")
			authURL, verifier, state, nonce := rp.authorizeURL()
			code := e.newBrowser().signIn(authURL, u.Email, signInOpts{}).code(b, state)
			tok, _, _ := rp.exchange(code, verifier, nonce)
			rt := tok.RefreshToken // the chain continues across b.Run's repeated calls
			b.Run(d.Name+"/refresh/id_token="+alg, func(b *testing.B) {
				b.ReportAllocs()
				start := processCPU()
				defer reportCPU(b, start)
				for i := 0; i < b.N; i++ {
					rt = refreshOnce(b, e, rp, rt)
				}
			})
		}
	}
}

// refreshOnce spends refresh token rt at the token endpoint and returns
// the rotated one.
func refreshOnce(b *testing.B, e *testEnv, c *rp, rt string) string {
	rec := tokenRequest(e, c, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}.Encode())
	if rec.Code != http.StatusOK {
		b.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var out struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.RefreshToken == "" {
		b.Fatalf("no rotated token: %s", rec.Body)
	}
	return out.RefreshToken
}

func tokenRequest(e *testEnv, c *rp, form string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, e.issuer+"/oauth/token", strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(c.id, c.secret)
	rec := httptest.NewRecorder()
	e.srv.handler.ServeHTTP(rec, req)
	return rec
}

// BenchmarkRefreshGrant measures the rotating refresh grant through the
// real HTTP handler with many chains at once (as 50 clients load it):
// the group commit then shares transactions, and on PostgreSQL pipelines
// them. The client registered ES256 (no RSA on the path), opaque access
// tokens. cpu-ns/op is the test process's CPU per refresh (handler,
// driver, SQLite; not PostgreSQL's own).
//
//	go test -run x -bench RefreshGrant ./cmd/latchkey/
func BenchmarkRefreshGrant(b *testing.B) {
	chains := max(16, runtime.GOMAXPROCS(0))
	for _, d := range storagetest.Dialects(b) {
		e := newTestEnv(b, d, func(c *config.Config) { c.Keys = config.Default().Keys })
		rp := e.newRP("app-es", func(c *storage.Client) { c.IDTokenSigningAlg = "ES256" })
		pool := make(chan string, chains)
		for i := range chains {
			u := e.createUser(fmt.Sprintf("bench-%d@example.com", i))
			authURL, verifier, state, nonce := rp.authorizeURL()
			code := e.newBrowser().signIn(authURL, u.Email, signInOpts{}).code(b, state)
			tok, _, _ := rp.exchange(code, verifier, nonce)
			pool <- tok.RefreshToken
		}
		b.Run(d.Name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(chains / runtime.GOMAXPROCS(0))
			start := processCPU()
			defer reportCPU(b, start)
			b.RunParallel(func(pb *testing.PB) {
				rt := <-pool // each goroutine follows its own chain
				defer func() { pool <- rt }()
				for pb.Next() {
					rt = refreshOnce(b, e, rp, rt)
				}
			})
		})
	}
}
