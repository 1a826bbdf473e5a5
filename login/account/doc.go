// Package account is the account pages (/account/security,
// /account/devices, /account/privacy, /account/language), the account API for products
// (GET/PUT /api/v1/me/privacy, bearer access token with the privacy
// scope) and the built-in demo relying party (/demo).
//
// The account pages are a relying party of this very OP (rp.go, shared
// with the demo): signing in to them is an ordinary OIDC sign-in of the
// built-in confidential client "account" through the front door
// (authorization code + PKCE, ID token verified against the JWKS; the
// only shortcut is that the HTTP calls to the OP are served in-process).
// Every change first asks for a reconfirmation (a new request with
// prompt=login and acr_values=urn:latchkey:acr:mfa:fresh) that holds for
// Config.Reconfirm. The account session is a sealed cookie that is only
// believed together with this browser's live session, so signing out
// anywhere ends it at once.
//
// Routes:
//
//	GET  /account                      → /account/security
//	GET  /account/callback             redirect URI of the "account" client
//	GET  /account/reconfirm?return=…   reconfirm identity
//	GET  /account/security             authenticator app, backup code, password
//	GET|POST /account/security/totp    "Set up" / "Update": QR code, key, "Turn on"
//	GET  /account/security/totp/manage "Update" / "Turn off"
//	GET|POST /account/security/totp/off
//	GET|POST /account/security/backup-code, GET …/show, POST …/saved
//	GET|POST /account/security/passkeys passkeys: list, "Set up" (passkeys.go); POST …/remove
//	GET|POST /account/security/password
//	GET  /account/devices              trusted browsers, sessions, products
//	POST /account/devices/remove, POST /account/devices/signout-others
//	GET|POST /account/privacy          product privacy settings
//	GET|POST /account/language         language and time zone of pages and mails (language.go)
//	GET|PUT /api/v1/me/privacy         account API
//	GET  /demo, /demo/callback         the demo relying party (serve --demo)
//
// The pages speak the account's saved language (storage.User.Language),
// else the browser's, and show times in the account's time zone
// (account.in); built-in clients are named in that language.
//
// It declares its own narrow Store; credentials, budgets and "revoke
// everything" come from login/internal/creds, the page machinery from
// login/internal/web, the session idle rule from login/flow. It does not
// import package login (the sign-in): the two meet only through the OP.
package account
