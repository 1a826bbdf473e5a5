package flow

import (
	"slices"
	"time"
)

// ConsentFacts are what the consent rule looks at (SPEC 8, issue 12
// item 11).
type ConsentFacts struct {
	// ThirdParty: the client is marked third_party. First-party clients
	// never show a consent page.
	ThirdParty bool
	Prompt     []string
	// Requested are the scopes of this request; Granted what the user
	// allowed this client before.
	Requested []string
	Granted   []string
	// AnsweredAt: when the user answered the consent page in this
	// sign-in (zero: not yet).
	AnsweredAt time.Time
}

// ConsentRequired: a third-party client asks for something the user has
// not allowed it yet, or asks with prompt=consent and the user has not
// answered in this sign-in. First-party clients: never.
func ConsentRequired(f ConsentFacts) bool {
	if !f.ThirdParty {
		return false
	}
	if slices.Contains(f.Prompt, "consent") && f.AnsweredAt.IsZero() {
		return true
	}
	for _, sc := range f.Requested {
		if !slices.Contains(f.Granted, sc) {
			return true
		}
	}
	return false
}
