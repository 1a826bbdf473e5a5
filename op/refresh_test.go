package op

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/latchkey/latchkey/storage"
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
