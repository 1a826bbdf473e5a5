// Package factor holds the pure verifiers behind Latchkey's sign-in and
// account-security pages (SPEC sections 1, 3, 3b and 9).
//
// It owns:
//
//   - passwords: argon2id hashing in the PHC string format, constant-time
//     verification with a "needs rehash" signal for parameter upgrades, a
//     dummy verification for unknown accounts (no user enumeration by
//     timing), and the rules for a new password (length, the embedded list
//     of most common breached passwords, not the email address);
//   - argon2id itself (RFC 9106, argon2id.go), over block memory that a
//     PasswordHasher keeps per slot instead of allocating 19 MiB per check
//     (x/crypto/argon2 offers no way to pass memory in); the tests hold it
//     to the RFC's vectors and to x/crypto/argon2;
//   - TOTP (RFC 6238: SHA-1, 6 digits, 30 s, ±1 step of skew) with the
//     last-step replay guard, the otpauth:// key URI, the key text for
//     manual entry and the QR code;
//   - email one-time codes (6 digits, uniform) and backup codes (16
//     Crockford base32 symbols = 80 bits): generation and normalisation of
//     what people type; device-flow user codes (RFC 8628 §6.1, issued by
//     zitadel/oidc): normalisation;
//   - NormalizeEmail, the one check of an email address for every entry
//     point (forms, command line): a bare address that can go into a mail
//     header, a page and a log line as it is;
//   - Equal, the constant-time comparison of digests.
//
// The package is pure. It must not touch I/O: no storage, no HTTP, no
// logging, no configuration files, no wall clock — the current time is
// always a parameter. Its only imports outside the standard library are
// golang.org/x/crypto/blake2b (H and H' of argon2id; x/crypto/argon2 is a
// test dependency, the reference), github.com/pquerna/otp (the TOTP codes and
// their validation; the tests hold them to the RFC 6238 vectors) and
// github.com/boombuler/barcode/qr, the QR encoder pquerna/otp uses. Around
// pquerna/otp stay ours: the step arithmetic, the replay guard (which
// needs the matched step, which pquerna's validation does not give), the
// otpauth:// URI (pquerna's builder mis-escapes issuers with '&' or '+')
// and the QR drawing (whole pixels per module, with the quiet zone).
// Randomness comes from crypto/rand, the one input a caller cannot pass in.
//
// What callers do with the results (store a keyed MAC of a code, count
// failures, decide that a step is required) belongs to login and
// login/flow; the MAC key and the TOTP seed encryption come from
// configuration through those packages.
//
// Canonical forms, because callers compare them:
//
//   - NewBackupCode returns the canonical 16 symbols (no dashes); show it
//     with FormatBackupCode, MAC the output of NormalizeBackupCode.
//   - NormalizeUserCode returns "XXXX-XXXX", the form zitadel/oidc's
//     op.UserCodeBase20 generates and stores, so a typed code can be looked
//     up as is.
//   - NewEmailCode and NormalizeEmailCode return 6 ASCII digits.
package factor
