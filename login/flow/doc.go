// Package flow is Latchkey's sign-in policy, as one pure function.
//
// Decide(policy, facts) looks at everything known about a sign-in — the
// browser session, the trusted-device record, the user, what this
// authorization request has already done and what the product asked for —
// and answers what is still required, why, and, once nothing is, which
// acr/amr/auth_time the sign-in achieved. The login dispatcher is its only
// caller; it recomputes the decision from persisted state on every visit, so
// back buttons, double submits and parallel tabs cannot skip a step.
//
// This package owns every rule of SPEC sections 2, 4 (the SSO part of the
// decision), 5 and 6: idle expiry, trusted devices, stay-signed-in,
// re-verification, the regional rollout, acr step-up, prompt and max_age. It
// must not touch I/O: standard library only, no clock (Facts.Now is the
// time), no storage, no HTTP. Boundaries are inclusive of the limit: a
// session idle for exactly 24 h is still valid, one second more is not.
package flow
