package op

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// TestRefreshReverify: the refresh grant applies the re-verification rule
// to the grant's stored times. Exactly the period after the second factor
// still refreshes and one second more does not; a second factor (or, for
// a password-only grant, a password) from the future is refused, failing
// closed; a federated grant follows its upstream.
func TestRefreshReverify(t *testing.T) {
	for _, d := range storagetest.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			e := newTokenEnv(t, d.Open(t))
			var zero time.Time
			pwdOTP := []string{"pwd", "otp", "mfa"}
			for _, tc := range []struct {
				name           string
				secondFactorAt time.Time
				authTime       time.Time
				amr            []string
				ok             bool
			}{
				{"second factor exactly the period ago", e.now.Add(-testReverify), e.now.Add(-testReverify), pwdOTP, true},
				{"second factor the period and 1s ago", e.now.Add(-testReverify - time.Second), e.now.Add(-testReverify - time.Second), pwdOTP, false},
				{"second factor 1s in the future", e.now.Add(time.Second), e.now.Add(-time.Hour), pwdOTP, false},
				{"second factor a year in the future", e.now.Add(365 * 24 * time.Hour), e.now, pwdOTP, false},
				{"password only, exactly the period ago", zero, e.now.Add(-testReverify), []string{"pwd"}, true},
				{"password only, from the future", zero, e.now.Add(time.Second), []string{"pwd"}, false},
				{"federated, long ago", zero, e.now.Add(-3 * testReverify), []string{"fed"}, true},
			} {
				rt := e.refreshTokenWith("conf", func(r *storage.RefreshToken) {
					r.SecondFactorAt, r.AuthTime, r.AMR = tc.secondFactorAt, tc.authTime, tc.amr
				})
				a := e.post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "conf:"+confSecret)
				if tc.ok {
					if a.status != http.StatusOK || a.body["refresh_token"] == nil {
						t.Errorf("%s: %d %v, want a refreshed grant", tc.name, a.status, a.body)
					}
					continue
				}
				checkError(t, tc.name, a, http.StatusBadRequest, "invalid_grant", false)
			}
		})
	}
}

// TestTokenTimesOnTheTokenClock: the JWTs our own grant handlers sign
// carry iat and exp from Options.TokenNow, the clock zitadel stamps its
// own tokens with and verifies every JWT against, and not from the
// decision clock. Here the decision clock stands 40 days behind: JWTs
// stamped with it would be long expired to zitadel's verifier, while
// these still pass VerifyAccessToken and introspection, and the stored
// tokens still expire by the decision clock.
func TestTokenTimesOnTheTokenClock(t *testing.T) {
	behind := time.Now().Add(-40 * 24 * time.Hour).Truncate(time.Second)
	// A minute before the real time: distinguishable from it, and still
	// valid to zitadel's verifier, which reads the real time.
	tokenNow := time.Now().Add(-time.Minute).Truncate(time.Second)
	e := newTokenEnvWith(t, storagetest.OpenSQLite(t), func(o *Options) {
		o.Now = func() time.Time { return behind }
		o.TokenNow = func() time.Time { return tokenNow }
	})
	ctx := context.Background()
	const jwtSecret = "jwt-secret-0123456789abcdefghijklmnopq"
	if err := e.store.CreateClient(ctx, storage.Client{
		ID: "jwtc", SecretHash: HashClientSecret(e.kr, jwtSecret), AccessTokenFormat: storage.TokenFormatJWT, Scopes: []string{"api"},
		GrantTypes: []string{GrantRefreshToken, GrantClientCredentials}, RedirectURIs: []string{confRedir},
		AppType: storage.AppTypeWeb, CreatedAt: behind, UpdatedAt: behind,
	}); err != nil {
		t.Fatal(err)
	}
	times := func(what, tok string, life time.Duration) {
		t.Helper()
		jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		var c struct{ Iat, Exp int64 }
		if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &c); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if c.Iat != tokenNow.Unix() || c.Exp != tokenNow.Add(life).Unix() {
			t.Errorf("%s: iat %d exp %d, want %d %d (the token clock)", what, c.Iat, c.Exp, tokenNow.Unix(), tokenNow.Add(life).Unix())
		}
	}

	rt := e.refreshTokenWith("jwtc", nil)
	a := e.post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "jwtc:"+jwtSecret)
	at, _ := a.body["access_token"].(string)
	idt, _ := a.body["id_token"].(string)
	if a.status != http.StatusOK || at == "" || idt == "" {
		t.Fatalf("refresh: %d %v", a.status, a.body)
	}
	times("refreshed access token", at, time.Hour)
	times("refreshed ID token", idt, time.Hour)
	if info, err := e.o.VerifyAccessToken(ctx, at); err != nil || info.Subject != e.user.ID {
		t.Fatalf("VerifyAccessToken: %+v, %v", info, err)
	}

	a = e.post(url.Values{"grant_type": {"client_credentials"}, "scope": {"api"}}, "jwtc:"+jwtSecret)
	cc, _ := a.body["access_token"].(string)
	if a.status != http.StatusOK || cc == "" {
		t.Fatalf("client_credentials: %d %v", a.status, a.body)
	}
	times("client credentials token", cc, time.Hour)
	r := httptest.NewRequest(http.MethodPost, "https://id.example/oauth/introspect", strings.NewReader(url.Values{"token": {cc}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth("jwtc", jwtSecret)
	w := httptest.NewRecorder()
	e.o.Handler().ServeHTTP(w, r)
	var intro struct {
		Active bool `json:"active"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &intro); err != nil || !intro.Active {
		t.Fatalf("introspection of the client credentials token: %d %s", w.Code, w.Body)
	}
}

// TestRefreshUserGone: a refresh token whose user no longer exists is
// refused (invalid_grant) and stays unused; one that was used beyond the
// reuse grace is still reuse, and ends its family, user or no user.
func TestRefreshUserGone(t *testing.T) {
	for _, d := range storagetest.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			e := newTokenEnv(t, d.Open(t))
			ctx := context.Background()
			ghost := func(r *storage.RefreshToken) { r.UserID = "no-such-user" }

			raw := e.refreshTokenWith("conf", ghost)
			a := e.post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {raw}}, "conf:"+confSecret)
			checkError(t, "user gone", a, http.StatusBadRequest, "invalid_grant", false)
			rt, err := e.store.GetRefreshTokenByHash(ctx, RefreshFamilyOf(raw), e.kr.MACString(keyring.PurposeRefresh, raw))
			if err != nil || !rt.UsedAt.IsZero() || !rt.RevokedAt.IsZero() {
				t.Fatalf("the refused token: %+v, %v; want it unused and not revoked", rt, err)
			}

			// A used token of the same family, presented long after its use.
			used := e.refreshTokenWith("conf", func(r *storage.RefreshToken) {
				ghost(r)
				r.FamilyID, r.UsedAt = rt.FamilyID, e.now.Add(-time.Hour)
			})
			a = e.post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {used}}, "conf:"+confSecret)
			checkError(t, "reuse, user gone", a, http.StatusBadRequest, "invalid_grant", false)
			if _, err := e.store.LiveRefreshFamily(ctx, rt.FamilyID); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("the family after reuse: %v, want it revoked", err)
			}
		})
	}
}
