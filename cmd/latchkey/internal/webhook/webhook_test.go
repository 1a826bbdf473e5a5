package webhook

import (
	"testing"
	"time"
)

func TestVerify(t *testing.T) {
	const secret = "s3cret-s3cret-s3cret-s3cret-s3cret"
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"type":"signin.failure"}`)
	h := Sign(secret, now.Unix(), body)
	for _, tc := range []struct {
		name   string
		header string
		body   []byte
		at     time.Time
		ok     bool
	}{
		{"good", h, body, now.Add(time.Minute), true},
		{"tampered body", h, []byte(`{"type":"signin.success"}`), now, false},
		{"replayed later", h, body, now.Add(10 * time.Minute), false},
		{"from the future", h, body, now.Add(-10 * time.Minute), false},
		{"other secret", Sign(secret+"x", now.Unix(), body), body, now, false},
		{"no signature", "t=1", body, now, false},
		{"garbage", "v1=zz,t=x", body, now, false},
	} {
		if err := Verify(secret, tc.header, tc.body, tc.at, 5*time.Minute); (err == nil) != tc.ok {
			t.Errorf("%s: err = %v", tc.name, err)
		}
	}
}

func TestBackoffAndEvents(t *testing.T) {
	if Backoff(1) != 5*time.Second || Backoff(2) != 10*time.Second || Backoff(30) != 4*time.Hour {
		t.Fatalf("backoff %v %v %v", Backoff(1), Backoff(2), Backoff(30))
	}
	for ev, want := range map[string]bool{
		"signin.failure": true, "signin.locked": true, "refresh.reused": true, "user.second_step_reset": true,
		"totp.enabled": true, "password.reset": true, "keys.rotated": true,
		"code.sent": false, "signout": false, "privacy.updated": false,
	} {
		if IsSecurityEvent(ev) != want {
			t.Errorf("IsSecurityEvent(%q) = %v", ev, !want)
		}
	}
}
