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
//	GET  /demo …                  the built-in demo relying party (serve --demo)
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
