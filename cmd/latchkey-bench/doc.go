// Command latchkey-bench holds the tools for measuring Latchkey that do
// not belong in the identity provider's binary:
//
//	latchkey-bench bench …   a load generator for any OpenID provider
//	latchkey-bench seed …    bulk benchmark users and refresh tokens
//	latchkey-bench soak …    a refresh-rotation soak: table rows and size over time
//	latchkey-bench ceiling … the argon2id ceiling the sign-in scenario is compared with
//
// They used to be "latchkey bench" and "latchkey seed". They left because
// a production binary should not carry a load generator, a seeder that
// gives thousands of users one password hash (one salt), or the permissive
// SMTP server the sign-in scenario reads codes from (it accepts any
// sender, recipient and credentials); cmd/latchkey is a composition root
// again. Flags, output and exit codes are unchanged: 0 ok, 1 failure,
// 2 usage (--help prints usage and exits 0), and for seed, as before,
// 3 when --client names no client and 4 when the users exist already.
//
// # Layout
//
//   - main.go: the dispatcher, usage text and exit codes.
//   - seed.go: "seed". It reads the same configuration as "latchkey serve"
//     (--config and LATCHKEY_* through config.Load), derives the keyring
//     from the secret key (the development key in data_dir on a local
//     issuer, as serve does) and opens the migrated store with
//     storage.Open and Migrate; users and tokens go in through the
//     store's bulk inserts (COPY on PostgreSQL). openStore is a few lines
//     written again rather than shared with cmd/latchkey: a main package
//     cannot be imported, and exporting the IdP's wiring for a benchmark
//     tool would be the coupling this split removes.
//   - soak.go: "soak". It opens the store as seed does, mints refresh
//     families for a client, keeps them rotating through the running
//     server's token endpoint and samples storage.Store.TableRows and
//     DatabaseSize: a benchmark of how big the tables stay, not a test.
//   - ceiling.go: "ceiling". It times password checks through
//     login/factor's PasswordHasher with serve's parameters and one slot,
//     in its own process's CPU time (getrusage): the figure the sign-in
//     scenario's "sign-ins per server core" is a fraction of.
//   - internal/bench: "bench", a package of its own (its doc.go describes
//     the measurement). It stays a package rather than files of this main
//     because it is a library with an API (Run, Options, Result), its own
//     test doubles (a fake provider, fake sign-in pages) and none of
//     seed's dependencies on config and storage: it measures any provider
//     from the outside. internal/ lets the go tool refuse it to every
//     other package, cmd/latchkey included.
//
// This binary must not be wired into, or imported by, the server; nothing
// here may reach into login/ or op/ beyond their exported constructors
// and constants (seed uses factor's password hasher and flow's acr
// names). The SMTP sink itself is package login/mail/mailsink, which the
// end-to-end tests of cmd/latchkey and login/mail use as their real SMTP
// server; among binaries only this one links it.
package main
