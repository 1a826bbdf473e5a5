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
	// allowed this client before, at GrantedAt (zero: never).
	Requested []string
	Granted   []string
	GrantedAt time.Time
	// RequestedAt is when this authorization request started.
	RequestedAt time.Time
}

// ConsentRequired: a third-party client asks for something the user has
// not allowed it yet, or asks again with prompt=consent and the user has
// not answered since this request started. First-party clients: never.
func ConsentRequired(f ConsentFacts) bool {
	if !f.ThirdParty {
		return false
	}
	if slices.Contains(f.Prompt, "consent") && (f.GrantedAt.IsZero() || f.GrantedAt.Before(f.RequestedAt)) {
		return true
	}
	for _, sc := range f.Requested {
		if !slices.Contains(f.Granted, sc) {
			return true
		}
	}
	return false
}
