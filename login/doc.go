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
//	GET|POST /login/code          second step (passkey, email code, authenticator, backup code); POST /login/code/send
//	POST /login/passkey           a passkey's answer: passwordless (identifier page) or the second step (passkey.go)
//	GET|POST /login/remember      "Trust this device" / "Stay signed in for 30 days"
//	GET|POST /login/backup-code   a new backup code, shown once
//	GET|POST /device, /device/confirm   RFC 8628 user-code entry and approval
//	GET|POST /logout, GET /logout/done  sign-out (the OP's end_session lands here)
//	GET  /federation/start, /federation/callback   single sign-on (federated.go)
//	GET|POST /signup, /signup/code, POST /signup/code/send
//	GET|POST /forgot, POST /forgot/code, /forgot/code/send, /forgot/second, /forgot/password
//	GET  /signup, /forgot without a sign-in: entry points that start the account pages' sign-in (entry.go)
//	GET|POST /account/set-password?token=…   the operator's one-time link
//	GET  /    home
//
// Every step verifies exactly one thing, records the result on the auth
// request in one storage transaction, and continues with the dispatcher's
// decision — it never chooses the next step itself. The dispatcher
// recomputes the decision (login/flow.Decide) from persisted state on
// every visit, so back buttons, double submits and parallel tabs cannot
// skip a step. Every step request must come from the browser that holds
// the sign-in's current handle: a sealed cookie carries the handle, its
// HMAC is stored on the auth request, and every step that records a
// verified factor (and the completion of a sign-in that verified one)
// moves the sign-in to a new handle of this browser in the same update
// (progress, in dispatch.go). A handle planted in a victim's browser is
// left behind at her first step, so its planter can neither continue nor
// finish her sign-in. A sign-in bound to an earlier handle of the same
// browser (another tab) is taken over by that browser.
//
// Redirect after POST: a step whose POST fails (a wrong password, a wrong
// code) or only asks for something (a new code) redirects to the GET of
// its page, handing it the error or notice in a sealed one-time cookie
// (web.SeeOther, web.TakeFlash), so a reload never resubmits the form.
//
// Mails about sign-ins (README "Mails people get"): finish tells an
// account that signs in from a browser new to it (Config.NewSignInMail;
// new is what creds.RememberBrowser's one insert decides), unless the
// account was made in this very sign-in; the code step tells of a used
// backup code. Both go to the outbox.
//
// Language (login/i18n, README "Languages"): load sets the page language's
// preferences — the sign-in's ui_locales, and the account's saved
// language only once the person has proven who they are (proven: a
// verified step or this browser's session), so that the page's language
// never tells whether an email has an account. Handlers pass message ids
// (i18n.Msg), never text; sign-up keeps the browser's language on the new
// account.
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
// Operations: it counts sign-in outcomes (with the second step and the
// acr of a success), email codes by purpose and stage, and throttle hits
// through Metrics, an interface of its own that cmd implements with
// Prometheus; the start of a lockout is audited as signin.locked. Log
// lines of a request are written with its context, so they carry its
// request id.
//
// It imports storage for its types and its narrow Store interface, op
// only for RedirectAway's page and its words, never config or cmd; nothing below it (op, storage, config, federation)
// imports it.
package login
