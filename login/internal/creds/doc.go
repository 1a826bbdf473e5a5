// Package creds checks credentials and spends the budgets that guard
// them, for the sign-in and the account pages alike: passwords (argon2id,
// a dummy check for unknown accounts, rehash on upgrade), email codes
// (send with the resend gap and the send budget, verify bound to the
// browser and the flow, five tries), the authenticator app (set-up,
// confirmation, each time step accepted once), backup codes (use, first
// code, generate — each written together with where its display copy
// goes), passkeys (the WebAuthn ceremonies on go-webauthn, passkeys.go:
// challenges single use and bound like email codes, counters), the throttle with every parameter, "revoke everything of a
// user" (storage.RevokeUserGrants with its per-cause table) and the
// notification mails — each in the language and time zone of its
// recipient (mailLanguage: the request's ui_locales, the recipient's
// saved language, the request's browser, the default; the recipient's
// time zone or UTC). What it tells the user comes back as i18n.Msg
// (a message id and arguments), never as text.
//
// It is the one place these rules live; handlers parse and render. The
// verifiers' arithmetic is in login/factor (pure), persistence in storage
// (narrow Store interface, satisfied by *storage.Store). It does not know
// HTTP: who is asking comes in as a From.
package creds
