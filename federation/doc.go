// Package federation sends organisation users to their company's own
// OpenID provider (SPEC section 4): home-realm discovery by email domain,
// the upstream authorization-code round trip with state, nonce and PKCE,
// and verification of the upstream ID token (coreos/go-oidc, x/oauth2).
//
// It owns the upstream protocol only; linking identities to users and the
// sign-in decision stay in login and login/flow.
package federation
