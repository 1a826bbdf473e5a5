// Package creds checks credentials and spends the budgets that guard
// them, for the sign-in and the account pages alike: passwords (argon2id,
// a dummy check for unknown accounts, rehash on upgrade), email codes
// (queued with their mail in one transaction, under the resend gap and a
// send budget per purpose; verified bound to the browser and the flow,
// five tries counted before the compare), the authenticator app (set-up,
// confirmation, each time step accepted once), backup codes (use, first
// code, generate — each written together with where its display copy
// goes), passkeys (the WebAuthn ceremonies on go-webauthn, passkeys.go:
// challenges single use and bound like email codes, counters), device
// user codes (a guess counted against the authorizations
// it could aim at before the compare), the throttle with every parameter
// and the known browsers it exempts, "revoke everything of a user"
// (storage.RevokeUserGrants with its per-cause table) and the
// notification mails (queued in the outbox with the change they report)
// — each in the language and time zone of its recipient (mailLanguage:
// the request's ui_locales, the recipient's saved language, the request's
// browser, the default; the recipient's time zone or UTC). What it tells
// the user comes back as i18n.Msg (a message id and arguments), never as
// text.
//
// Every limit is one atomic statement in the database, taken before the
// expensive or secret-revealing check (storage.TakeThrottles,
// TakeEmailCodeAttempt, GuessDeviceUserCode, IssueEmailCode), so that
// concurrent requests on any number of instances cannot get past it; the
// checks themselves go through a Verifier, which tests count. No mail is
// sent here: mail goes to the outbox (login/mail/outbox), sealed, and the
// instance's worker is kicked.
//
// It is the one place these rules live; handlers parse and render. The
// verifiers' arithmetic is in login/factor (pure), persistence in storage
// (narrow Store interface, satisfied by *storage.Store). It does not know
// HTTP: who is asking comes in as a From.
package creds
