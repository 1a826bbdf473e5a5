// Package op is Latchkey's OpenID provider: zitadel/oidc v3's op.Provider
// (built with op.NewProvider, not the experimental op.Server) on our
// storage, behind our own endpoints for everything a relying party
// authenticates or presents a token at.
//
// # What it owns
//
//   - The adapter from *storage.Store to zitadel's op.Storage and its
//     optional interfaces (storage.go, authrequest.go, device.go): auth
//     requests and codes (short-lived, single use, a replay revokes what
//     they issued), access tokens, refresh rotation with reuse detection,
//     idle and absolute expiry and the re-verification rule, device codes
//     (single use, polling pace), end-session handed to the login UI's
//     logout page.
//   - The authorization endpoint and pushed authorization requests
//     (authorize.go): every rule of an authorization request in one
//     function (checkAuthRequest) applied at /authorize and at /par; the
//     native loopback redirect rule of RFC 8252 (redirectAllowed); PAR
//     request_uris that work once, for 60 s (storage.RedeemPushedRequest);
//     request_uri values of others and request objects refused.
//   - The authorization response (response.go): query, fragment or
//     form_post for success and error alike, iss in all of them (RFC
//     9207), the form_post page with its own Content-Security-Policy, and
//     RedirectAway, the redirect that survives form-action 'self'.
//   - Client authentication (clientauth.go), one function for the token,
//     introspection, revocation and PAR endpoints: client_secret_basic,
//     client_secret_post, private_key_jwt (inline JWKS or jwks_uri,
//     RS256/PS256/ES256/EdDSA, jti once: storage.UseOnce) and none.
//   - DPoP (dpop.go, RFC 9449): proofs, nonces, bindings of access and
//     (public clients') refresh tokens, proof jtis used once.
//   - The token endpoint (token.go): every grant; client_credentials
//     (clientcredentials.go) and refresh_token (refresh.go) signed by our
//     own JWS signer (signer.go) with fixed-shape JSON, the code and
//     device grants built by zitadel's CreateTokenResponse on our storage.
//   - Userinfo, introspection and revocation (resource.go), and
//     AuthenticateResource for the account API: RFC 6750, 7662 and 7009
//     answers, Bearer and DPoP.
//   - Back-channel logout delivery (backchannel.go): the worker that
//     claims queued deliveries (storage.ClaimBackchannelLogouts, exclusive
//     across instances), posts signed logout tokens and retries with
//     back-off, each outcome an audit event. The queue is filled by
//     storage.EnqueueBackchannelLogouts where sessions end (login UI,
//     cmd/latchkey).
//   - Clients (client.go): zitadel's op.Client over storage.Client, a short
//     cache, constant-time secret checks, HashClientSecret.
//   - Signing keys (keys.go): RS256 and ES256 (and Options.Algorithm /
//     AccessTokenAlgorithm when they are EdDSA) published together, one
//     key per algorithm in each generation; generated, sealed in the
//     database, rotated together on schedule across instances (a planned
//     rotation is published a lead before it signs; other instances hear
//     of it at once on PostgreSQL), cached as one immutable snapshot that
//     the token path reads without I/O; the JWKS document built from it.
//     Which key signs what: ID tokens and logout tokens with the client's
//     registered id_token_signed_response_alg (Options.Algorithm when it
//     registered none), JWT access tokens with Options.AccessTokenAlgorithm
//     (ES256) — on every path: our grants pick the key themselves, the
//     code and device grants (zitadel's token builders) get it through
//     the context (withSigningAlg, SigningKey).
//   - Claims: sub, auth_time, amr, acr and sid in every ID token, the user
//     claims by scope, the privacy claim (SPEC 7), cnf in DPoP-bound JWT
//     access tokens.
//   - Text hygiene (text.go): one filter in front of every endpoint but
//     /authorize answers a parameter that is not valid UTF-8 or holds a
//     NUL with invalid_request; /authorize's values are checked in
//     checkAuthRequest, so the error goes to a trusted client redirect.
//   - Discovery (provider.go): what works, nothing more, served as fixed
//     bytes with an ETag, at the OIDC and the RFC 8414 well-known URIs.
//
// # What it must not touch
//
// It never renders a page of the sign-in: browser-facing errors go
// through Options.ErrorPage, naming a message of the pages' catalogue by
// id (pageMsg), which the sign-in renders in the user's language (the
// only pages of its own are the form_post response and RedirectAway's
// interstitial, which are protocol, not sign-in; their few words come
// from Options.PageWords in the request's language). It never imports the
// login packages: the languages it advertises (ui_locales_supported,
// claims_locales_supported) come in Options.UILocales. What the sign-in policy
// decides reaches it as values and functions in Options (ACRValues,
// ReverifyDue), and the login UI calls it through OP.Respond,
// OP.RespondError and OP.AuthenticateResource. Time comes only from
// Options.Now, and from Options.TokenNow for the iat and exp that relying
// parties and zitadel check against their own clocks.
//
// # Size
//
// The package is well past DESIGN.md's ~2k lines (about 4.7k without
// tests). zitadel's storage interfaces, the adapters they pass around
// (authRequest, refreshRequest, client, signingKey) and our endpoints that
// reuse those adapters belong together; and issue 12 moved the
// authorization, token, userinfo, introspection and revocation endpoints
// here from zitadel, because zitadel's versions could not do what the
// protocol requires (private_key_jwt with a jti check and the endpoint as
// audience, DPoP, PAR, RFC 9207, form_post errors, RFC 6750/7009 errors).
// A split into subpackages would export the adapters only to call them
// from next door.
//
// # Endpoints
//
// Served by Handler; "zitadel" means zitadel's handler on our storage.
//
//	GET  /.well-known/openid-configuration  ours: discovery, fixed bytes + ETag
//	GET  /.well-known/oauth-authorization-server  the same document (RFC 8414)
//	GET  /keys                              ours: JWKS from the key snapshot
//	GET|POST /authorize                     ours: checkAuthRequest, CreateAuthRequest,
//	                                        302 to Options.LoginPath?authRequestID=…;
//	                                        errors to the client (with iss) or, when
//	                                        they cannot go there, Options.ErrorPage
//	     /authorize/callback                404: sign-ins finish through OP.Respond
//	POST /par                               ours: pushed authorization requests (RFC 9126)
//	POST /oauth/token                       ours: every grant; the JWT-bearer grant is
//	                                        unsupported_grant_type; POST only
//	POST /oauth/introspect                  ours (RFC 7662)
//	GET|POST /userinfo                      ours (OIDC Core §5.3, RFC 6750, RFC 9449)
//	POST /revoke                            ours (RFC 7009)
//	GET|POST /end_session                   zitadel, then 302 to Options.LogoutPath?id=…;
//	                                        its errors on Options.ErrorPage
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
