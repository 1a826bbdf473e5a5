package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/latchkey/latchkey/cmd/latchkey-bench/internal/bench"
)

// Exit codes a script can rely on. 3 and 4 are seed's, as they were under
// "latchkey seed".
const (
	exitOK       = 0
	exitFailure  = 1 // the provider, the database, the configuration …
	exitUsage    = 2 // bad command line
	exitNotFound = 3 // seed: the --client named does not exist
	exitConflict = 4 // seed: some of the users exist already
)

const usage = `latchkey-bench — load generator and benchmark data for Latchkey

Usage:
  latchkey-bench bench --issuer URL --scenario S [--rate N] [--pid PID] [--json] …
                       load-test any OpenID provider (latchkey-bench bench --help)
  latchkey-bench seed --users N [--client C --refresh-tokens M --tokens-out F] [--config FILE]
                       bulk-load users and refresh tokens into Latchkey's database
  latchkey-bench soak --issuer URL --client C --client-secret S [--duration D] [--config FILE]
                       a refresh-rotation soak: rows per table and database size over time
  latchkey-bench ceiling [--checks N] [--json]
                       the argon2id ceiling: CPU per password check, as serve checks them
  latchkey-bench help

bench needs only the provider's URL. seed and soak read the same
configuration as "latchkey serve" (--config and LATCHKEY_* variables) and
write to its database, also while serve runs. Neither belongs in a production binary.
Exit codes: 0 ok, 1 failure, 2 usage, 3 not found, 4 already exists.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Environ())
	stop()
	os.Exit(code)
}

// run executes one command line; it is main without the process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, environ []string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	var err error
	switch args[0] {
	case "bench":
		err = bench.Main(ctx, args[1:], stdout, stderr)
		if bench.IsUsage(err) {
			err = &cliError{code: exitUsage, msg: err.Error()}
		}
	case "seed":
		err = cmdSeed(&cmdEnv{ctx: ctx, stdout: stdout, stderr: stderr, environ: environ}, args[1:])
	case "soak":
		err = cmdSoak(&cmdEnv{ctx: ctx, stdout: stdout, stderr: stderr, environ: environ}, args[1:])
	case "ceiling":
		err = cmdCeiling(&cmdEnv{ctx: ctx, stdout: stdout, stderr: stderr, environ: environ}, args[1:])
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
	default:
		err = usageErr("unknown command %q (see latchkey-bench help)", args[0])
	}
	if err == nil {
		return exitOK
	}
	var ce *cliError
	if errors.As(err, &ce) {
		fmt.Fprintln(stderr, "latchkey-bench:", ce.msg)
		if ce.code == exitUsage {
			fmt.Fprintln(stderr, "run 'latchkey-bench help' for usage")
		}
		return ce.code
	}
	fmt.Fprintln(stderr, "latchkey-bench:", err)
	return exitFailure
}

// cliError carries an exit code with a message.
type cliError struct {
	code int
	msg  string
}

func (e *cliError) Error() string { return e.msg }

func usageErr(format string, args ...any) error {
	return &cliError{code: exitUsage, msg: fmt.Sprintf(format, args...)}
}
