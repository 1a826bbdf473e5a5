// Package federation sends organisation users to their company's own
// OpenID provider (SPEC section 4): the upstream authorization-code round
// trip with state, nonce and PKCE S256, and verification of the upstream
// ID token (coreos/go-oidc, golang.org/x/oauth2).
//
// It owns the upstream protocol only: a Connector builds the authorize URL
// and turns a code into a verified Identity; a Registry opens connectors
// lazily from storage.Organization rows and caches their discovery.
// Home-realm discovery (which organisation owns an email's domain), the
// state row bound to our auth request and browser, the auth_time checks
// against our product's max_age / prompt=login, linking identities to
// users and the sign-in decision stay in login and login/flow.
//
// What go-oidc verifies (signature from the upstream JWKS, iss, aud, exp)
// and what this package adds itself (notes/zitadel-oidc.md §10):
//
//   - nonce, compared in constant time with the one we sent;
//   - azp: required and equal to our client id when the token has several
//     audiences, and equal to it whenever present (OIDC Core 3.1.3.7);
//   - at_hash when present (OIDC Core 3.1.3.8);
//   - amr read as an array or as a space-separated string (some IdPs);
//   - auth_time read as a number or a numeric string; absent → the time
//     of the exchange, flagged (Identity.AuthTimeAbsent) so the caller can
//     refuse when the product asked for max_age (OIDC Core 2: auth_time is
//     then REQUIRED).
//
// Every upstream call (discovery, JWKS, token, userinfo) has a timeout:
// the HTTP client carries one, and each call runs under a context deadline.
// Discovery is cached per organisation for an hour and dropped when a call
// fails to reach the upstream, so a moved or restarted IdP is picked up.
//
// The package never touches storage rows beyond reading an Organization
// and never decides who may sign in.
package federation
