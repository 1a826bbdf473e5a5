// Package admin is the support desk and the operator's hands: the
// administrative actions on users, clients, organisations, the audit
// trail and the signing keys, written once and used by two front ends —
// the command line (cmd/latchkey's user, client, org, audit and keys
// commands) and the admin REST API under /admin/v1/ (api.go), described
// by the OpenAPI 3 document served at /admin/v1/openapi.json.
//
// # Why here, not under op/
//
// The admin API is authorised by the OP's client_credentials tokens, but
// what it does reaches every layer: it validates clients and
// organisations with config's rules (one place for them), seals upstream
// secrets with federation, ends grants with storage.RevokeUserGrants and
// mails set-password links and notices with login/mail. A package under
// op/ would make op import login/, which the house forbids; under
// cmd/latchkey it is what it is: the administrative wiring of the binary,
// next to the CLI that shares it.
//
// # Rules it keeps
//
//   - Ending grants goes through storage.RevokeUserGrants with a cause of
//     its table (RevokeSecondStepReset, RevokeAdminSignOut,
//     RevokeUserDeleted, RevokeUserDisabled); single sessions, trusted
//     browsers and product grants are removed with the same storage calls
//     the account's Devices page uses.
//   - Every action is audited with the acting client (the API's token's
//     client, or "command line").
//   - Mails are composed by login/mail's templates (LinkMail, NoticeMail)
//     and go through the durable outbox (Deps.Outbox, an outbox.Queue): a
//     mail server that is down delays them. A notice of a change (the
//     2-step reset) is written in the change's own transaction, as the
//     account pages' notices are (creds.RevokeAndNotify): it goes out if
//     and only if the change stands.
//   - The API answers JSON only, errors included ({"error", "error_description"}).
//     Reads need the scope latchkey:admin:read or latchkey:admin, changes
//     latchkey:admin; the client must still hold that access
//     (storage.Client.AdminAccess) at each request, so taking it away
//     takes effect at once, not when tokens expire.
package admin
