package flow

import (
	"testing"
	"time"
)

func TestConsentRequired(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	all := []string{"openid", "email", "offline_access"}
	for _, tc := range []struct {
		name string
		f    ConsentFacts
		want bool
	}{
		{"first party, nothing granted", ConsentFacts{Requested: all}, false},
		{"first party, prompt=consent", ConsentFacts{Prompt: []string{"consent"}, Requested: all}, false},
		{"third party, nothing granted", ConsentFacts{ThirdParty: true, Requested: all}, true},
		{"third party, all granted", ConsentFacts{ThirdParty: true, Requested: all, Granted: all}, false},
		{"third party, a subset asked", ConsentFacts{ThirdParty: true, Requested: all[:1], Granted: all}, false},
		{"third party, one more scope", ConsentFacts{ThirdParty: true, Requested: all, Granted: all[:2]}, true},
		{"prompt=consent, granted before", ConsentFacts{ThirdParty: true, Prompt: []string{"consent"}, Requested: all, Granted: all}, true},
		{"prompt=consent, answered in this sign-in", ConsentFacts{ThirdParty: true, Prompt: []string{"consent"}, Requested: all, Granted: all,
			AnsweredAt: t0}, false},
		{"prompt=consent, never granted", ConsentFacts{ThirdParty: true, Prompt: []string{"login", "consent"}, Requested: all}, true},
	} {
		if got := ConsentRequired(tc.f); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
