// Package login is the sign-in: the dispatcher and its steps (identifier,
// password, second step, "Trust this device" / "Stay signed in", the
// backup code shown once), sign-up, "Forgot password?", the set-password
// link, the device-code entry page, sign-out, and the single sign-on
// round trip to an organisation's identity provider. Pages are echo
// handlers rendering embedded html/template pages (no JavaScript needed,
// no external assets).
//
// Routes:
//
//	GET  /login?authRequestID=…   the dispatcher: the only place that decides what comes next
//	GET|POST /login/identify      identifier (email) page; POST /login/restart ("Use another account")
//	GET|POST /login/password      password page
//	GET|POST /login/code          second step (email code, authenticator, backup code); POST /login/code/send
//	GET|POST /login/remember      "Trust this device" / "Stay signed in for 30 days"
//	GET|POST /login/backup-code   a new backup code, shown once
//	GET|POST /device, /device/confirm   RFC 8628 user-code entry and approval
//	GET|POST /logout, GET /logout/done  sign-out (the OP's end_session lands here)
//	GET  /federation/start, /federation/callback   single sign-on (federated.go)
//	GET|POST /signup, /signup/code, POST /signup/code/send
//	GET|POST /forgot, POST /forgot/code, /forgot/code/send, /forgot/second, /forgot/password
//	GET|POST /account/set-password?token=…   the operator's one-time link
//	GET  /    home
//
// Every step verifies exactly one thing, records the result on the auth
// request in one storage transaction, and continues with the dispatcher's
// decision — it never chooses the next step itself. The dispatcher
// recomputes the decision (login/flow.Decide) from persisted state on
// every visit, so back buttons, double submits and parallel tabs cannot
// skip a step. Every step request must come from the browser that started
// the sign-in: a cookie carries a random handle whose HMAC is stored on
// the auth request.
//
// What it owns and what it leaves to others:
//   - policy: login/flow (pure), called by the dispatcher only;
//   - what a credential is worth and the budgets that guard it (email
//     codes, TOTP steps, backup codes, device user codes, passwords, the
//     throttle and the known browsers it exempts, "revoke everything of a
//     user" and the notification mails): login/internal/creds;
//   - sending mail: nothing here waits for a mail server; codes and
//     notices go to the durable outbox with what they belong to, and the
//     instance's worker (login/mail/outbox, Deps.Outbox) is kicked;
//   - the page machinery (templates, cookies, the browser handle, CSRF,
//     error pages, security headers): login/internal/web;
//   - the account pages, the demo and the account API: login/account, a
//     relying party of the OP like any product;
//   - tokens: the OP. The package never mints one; it marks the auth
//     request done and hands it to OP.Respond.
//
// Size: about 3k lines, past the ~2k DESIGN.md suggests. Sign-up, reset,
// device entry and SSO are each a flow of their own but all continue a
// sign-in: they load it through the dispatcher's load (browser binding,
// policy facts) and hand it back to it. Splitting them off would export
// the dispatcher's internals; the split that mattered — the account
// pages, the page machinery, the credential rules — is done.
//
// It imports storage for its types and its narrow Store interface, never
// op, config or cmd; nothing below it (op, storage, config, federation)
// imports it.
package login
