// Command latchkey is the Latchkey identity provider: the server and its
// administration commands in one binary. It is the composition root:
// flags → config.Load → storage.Open → op.New → login.New → serve. No
// logic lives here beyond wiring and printing.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	// The time zones users choose for their mails and account pages
	// (login/i18n.TimeZones) load on any system, the distroless image's
	// included.
	_ "time/tzdata"
)

// Exit codes a script can rely on.
const (
	exitOK       = 0
	exitFailure  = 1 // something went wrong (database, config, …)
	exitUsage    = 2 // bad command line
	exitNotFound = 3 // the user/client/organisation named does not exist
	exitConflict = 4 // it exists already
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// cliError carries an exit code with a message.
type cliError struct {
	code int
	msg  string
}

func (e *cliError) Error() string { return e.msg }

func usageErr(format string, args ...any) error {
	return &cliError{code: exitUsage, msg: fmt.Sprintf(format, args...)}
}

func notFoundErr(format string, args ...any) error {
	return &cliError{code: exitNotFound, msg: fmt.Sprintf(format, args...)}
}

func conflictErr(format string, args ...any) error {
	return &cliError{code: exitConflict, msg: fmt.Sprintf(format, args...)}
}

const usage = `latchkey — an OpenID Connect identity provider

Usage:
  latchkey serve [--config FILE] [--demo] [--pprof ADDR]   run the server
  latchkey migrate [--config FILE]                          create or upgrade the database
  latchkey health [--config FILE] [--url URL]               exit 0 if the server answers /ready, else 1
  latchkey backup [--config FILE] FILE                      copy the SQLite database to FILE (online)
  latchkey user create --email E [--name N] [--region R] [--password-stdin | --send-link]
  latchkey user list
  latchkey user show --email E [--json]                     methods, sessions, trusted browsers, grants, last sign-in
  latchkey user disable --email E | user enable --email E
  latchkey user delete --email E                            the user and everything that is theirs
  latchkey user reset-2fa --email E                         lost phone: remove authenticator and backup code, end
                                                            sessions and trusted browsers, tell the user by mail
  latchkey user send-reset --email E                        mail a one-time link to set a new password
  latchkey client create --id ID [--name N] [--public] [--secret-stdin] --redirect-uri U …
                         [--post-logout-redirect-uri U …] [--grant G …] [--type web|native|user-agent]
                         [--access-token-format opaque|jwt] [--default-acr ACR] [--admin | --admin-read]
                         [--scope S …] [--jwks-file F | --jwks-uri URL] [--third-party] [--require-par] [--dpop]
                         [--id-token-alg RS256|ES256] [--logo-uri URL]
                         [--backchannel-logout-uri URL [--backchannel-logout-session-required]]
  latchkey client list | client delete --id ID | client rotate-secret --id ID
  latchkey org create --name N --domain D … --issuer URL --client-id ID --client-secret-stdin
                      [--scope S …] [--claim-email C] [--claim-name C] [--claim-groups C]
                      [--trust-upstream-mfa] [--no-jit]
  latchkey org list | org delete --name N
  latchkey keys rotate [--now]
  latchkey audit list [--user EMAIL] [--type T,…] [--since TIME] [--until TIME] [--limit N] [--json]
  latchkey mail list [--state pending,sending,failed|all] [--limit N]   the mail outbox, without the mails
  latchkey policy explain --email E [--client C] [--acr ACR] [--at TIME]
  latchkey config print [--config FILE]                     the effective configuration, secrets redacted
  latchkey version

Every command takes --config FILE (and reads LATCHKEY_* variables) like
serve, so it works on the server's database, also while serve runs; -v
says which configuration file and database it uses. Commands other than
serve and migrate refuse a database that does not exist. --help after any
command lists its flags.
Exit codes: 0 ok, 1 failure, 2 usage, 3 not found, 4 already exists.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Environ())
	stop()
	os.Exit(code)
}

// run executes one command line; it is main without the process.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, environ []string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	env := &cmdEnv{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr, environ: environ}
	var err error
	switch args[0] {
	case "serve":
		err = cmdServe(env, args[1:])
	case "migrate":
		err = cmdMigrate(env, args[1:])
	case "user":
		err = cmdUser(env, args[1:])
	case "client":
		err = cmdClient(env, args[1:])
	case "org":
		err = cmdOrg(env, args[1:])
	case "keys":
		err = cmdKeys(env, args[1:])
	case "audit":
		err = cmdAudit(env, args[1:])
	case "mail":
		err = cmdMail(env, args[1:])
	case "policy":
		err = cmdPolicy(env, args[1:])
	case "config":
		err = cmdConfig(env, args[1:])
	case "health":
		err = cmdHealth(env, args[1:])
	case "backup":
		err = cmdBackup(env, args[1:])
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "latchkey", version)
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
	default:
		err = usageErr("unknown command %q (see latchkey help)", args[0])
	}
	if err == nil || errors.Is(err, errHelp) {
		return exitOK
	}
	var ce *cliError
	if errors.As(err, &ce) {
		fmt.Fprintln(stderr, "latchkey:", ce.msg)
		if ce.code == exitUsage {
			fmt.Fprintln(stderr, "run 'latchkey help' for usage")
		}
		return ce.code
	}
	fmt.Fprintln(stderr, "latchkey:", err)
	return exitFailure
}
