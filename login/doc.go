// Package login is Latchkey's browser side: the sign-in steps, the account
// pages, sign-out and the demo relying party, as echo handlers rendering
// embedded html/template pages (no JavaScript needed, no external assets).
//
// Routes:
//
//	GET  /login?authRequestID=…   the dispatcher: the only place that decides what comes next
//	GET  /login/identify …        identifier (email) page
//	GET  /login/password …        password page
//	GET  /login/code …            second step (email code, authenticator, backup code)
//	POST /login/code/send         (re)send the email code
//	GET  /login/remember …        "Trust this device" / "Stay signed in for 30 days"
//	GET  /login/backup-code …     show a new backup code once
//	GET  /logout?id=…             end-session confirmation; POST signs out
//	GET  /federation/start?id=…   single sign-on: off to the organisation's IdP
//	GET  /federation/callback     … and back (federated.go)
//	GET  /demo …                  the built-in demo relying party (serve --demo)
//
// Account pages, sign-up and password reset (account*.go, signup.go,
// forgot.go, privacyapi.go):
//
//	GET  /account                      → /account/security
//	GET  /account/callback             redirect URI of the built-in "account" client
//	GET  /account/reconfirm?return=…   reconfirm identity (prompt=login, acr mfa:fresh)
//	GET  /account/security             authenticator app, backup code, password
//	GET|POST /account/security/totp    "Set up" / "Update": QR code, key, "Turn on"
//	GET  /account/security/totp/manage "Update" / "Turn off"
//	GET|POST /account/security/totp/off
//	GET|POST /account/security/backup-code, GET …/show, POST …/saved
//	GET|POST /account/security/password
//	GET  /account/devices              trusted browsers, sessions, products
//	POST /account/devices/remove, POST /account/devices/signout-others
//	GET|POST /account/privacy          product privacy settings
//	GET|POST /account/set-password?token=…   the operator's one-time link
//	GET|PUT /api/v1/me/privacy         account API (bearer access token, privacy scope)
//	GET|POST /signup?id=…, /signup/code, POST /signup/code/send
//	GET|POST /forgot?id=…, POST /forgot/code, /forgot/code/send, /forgot/second, /forgot/password
//
// The account pages are a relying party of this very OP (rp.go, the same
// code as the demo): signing in to them is an ordinary sign-in of the
// built-in confidential client "account", and every change first asks for
// a reconfirmation (a new request with prompt=login and
// acr_values=urn:latchkey:acr:mfa:fresh) that holds for Config.Reconfirm.
// The account session is a sealed cookie that is only believed together
// with this browser's live session (see account.go).
//
// Size: the package is past the ~2k lines DESIGN.md suggests. Every page
// shares one renderer, the browser handle, CSRF, cookies, throttling and
// the email-code machinery, and the account pages reuse the sign-in's
// verifiers directly; a split into packages would export all of that for
// no gain. Instead it is split by file, one flow per file.
//
// Every step verifies exactly one thing, records the result on the auth
// request in one storage transaction, and redirects back to the
// dispatcher — never to another step. The dispatcher recomputes the
// decision (login/flow.Decide) from persisted state on every visit, so
// back buttons, double submits and parallel tabs cannot skip a step. Every
// step request must come from the browser that started the sign-in: a
// cookie carries a random handle whose HMAC is stored on the auth request.
//
// Handlers parse and render; policy lives in login/flow, verification in
// login/factor, persistence in storage. The package never mints tokens:
// it marks the auth request done and hands it to the OP (op.OP.Respond).
package login
