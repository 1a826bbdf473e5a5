// Package op is Latchkey's OpenID provider: zitadel/oidc v3's op.Provider
// (built with op.NewProvider, not the experimental op.Server) on our
// storage, behind our own discovery, JWKS and request hygiene.
//
// # What it owns
//
//   - The adapter from *storage.Store to zitadel's op.Storage and its
//     optional interfaces (storage.go, authrequest.go, device.go): auth
//     requests and codes (S256 PKCE required of public clients, short-lived
//     single-use codes whose replay revokes what they issued), access
//     tokens, refresh rotation with reuse detection, idle and absolute
//     expiry and the re-verification rule, device codes (single use,
//     polling pace), end-session handed to the login UI's logout page.
//   - Clients (client.go): zitadel's op.Client over storage.Client, a short
//     cache, constant-time secret checks, HashClientSecret.
//   - Signing keys (keys.go): generated, sealed in the database, rotated on
//     schedule across instances, cached as one immutable snapshot that the
//     token path reads without I/O; the JWKS document built from it.
//   - Claims: sub, auth_time, amr, acr and sid in every ID token (zitadel
//     leaves acr and sid out of refreshed and device-flow tokens), the
//     user claims by scope, and the privacy claim (SPEC 7).
//   - Our own token endpoint handlers for the two busiest grants,
//     client_credentials (clientcredentials.go) and refresh_token
//     (refresh.go): the same storage methods zitadel would call, with
//     fixed-shape JSON and our own JWS signer (signer.go) and opaque-token
//     sealing (tokencrypto.go).
//   - Text hygiene (text.go): one filter in front of every endpoint but
//     /authorize answers a parameter that is not valid UTF-8 or holds a
//     NUL with invalid_request; /authorize's values are checked in
//     CreateAuthRequest, so the error goes to a trusted client redirect.
//   - Discovery (provider.go): zitadel's document, cut down to what we
//     really serve, with the acr values the sign-in can achieve, served as
//     fixed bytes with an ETag.
//
// # What it must not touch
//
// It never renders a page: browser-facing errors go through
// Options.ErrorPage, sign-in and sign-out happen in the login UI. It never
// imports the login packages. What the sign-in policy decides reaches it
// as values and functions in Options (ACRValues, ReverifyDue), and the
// login UI calls it through OP.Respond, OP.RespondError and
// OP.VerifyAccessToken. What a sign-in requires, which acr it earns and
// when a grant must re-verify are the sign-in policy's to decide, not this
// package's. Time comes only from Options.Now, and from Options.TokenNow
// for the iat and exp that zitadel/oidc checks against its own clock.
//
// # Size
//
// The package is past DESIGN.md's ~2k lines (about 2.7k without tests)
// because zitadel's storage interfaces, the adapters they pass around
// (authRequest, refreshRequest, client, signingKey) and our own grant
// handlers that reuse those adapters belong together: a split would
// export adapter internals only to call them from next door.
//
// # Endpoints
//
// Served by Handler; "zitadel" means zitadel's handler on our storage.
//
//	GET  /.well-known/openid-configuration  ours: discovery, fixed bytes + ETag
//	GET  /keys                              ours: JWKS from the key snapshot
//	GET|POST /authorize                     zitadel: validate, CreateAuthRequest, then
//	                                        302 to Options.LoginPath?authRequestID=…;
//	                                        bad requests rendered by Options.ErrorPage
//	     /authorize/callback                404: sign-ins finish through OP.Respond
//	POST /oauth/token                       client_credentials, refresh_token: ours;
//	                                        authorization_code, device_code: zitadel;
//	                                        the JWT-bearer grant is refused; POST only
//	POST /oauth/introspect                  zitadel (SetIntrospectionFromToken)
//	GET|POST /userinfo                      zitadel (SetUserinfoFromToken)
//	POST /revoke                            zitadel (GetRefreshTokenInfo, RevokeToken)
//	GET|POST /end_session                   zitadel, then 302 to Options.LogoutPath?id=…
//	POST /device_authorization              zitadel (RFC 8628); the user enters the
//	                                        code at Options.DevicePath (login UI)
//
// /healthz and /ready are the server's (cmd/latchkey), which asks SigningKey
// whether keys are loaded.
//
// # Operations
//
// The provider counts token grants by type and result and refresh-token
// reuse through Options.Metrics, an interface of its own (cmd wires
// Prometheus; op never imports it). Client mistakes (unknown client,
// bad redirect URI, failed client authentication — never the secret) are
// logged at INFO or WARN with the request's context, so they carry its
// request id; faults of ours at ERROR.
package op
