// Command sessiond is the session service: `sessiond serve` runs the public
// and admin APIs; the other subcommands are for operators and work on the
// same database.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `sessiond: user session management

Usage:
  sessiond serve [flags]                         run the public and admin APIs
  sessiond migrate [flags]                       apply database migrations and exit
  sessiond config [flags]                        print the effective configuration
  sessiond user create --email E [flags]         create a user; the password is read from stdin
  sessiond sessions list --user ID|--email E     list a user's active sessions
  sessiond sessions revoke --id ID               end one session
  sessiond sessions revoke --user ID|--email E   end every session of a user
  sessiond keys rotate|list                      add a signing key for access tokens / show them
  sessiond keys new-kek                          print a new key-encryption key (base64)
  sessiond version

Every subcommand takes the serve flags (see 'sessiond serve -h'); each flag
can also come from SESSIOND_<FLAG_NAME> or a --config JSON file.
`

var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	os.Exit(code)
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		err = serve(ctx, rest, getenv, stderr)
	case "migrate":
		err = migrate(ctx, rest, getenv, stdout, stderr)
	case "config":
		err = printConfig(rest, getenv, stdout, stderr)
	case "user":
		err = userCmd(ctx, rest, getenv, stdin, stdout, stderr)
	case "sessions":
		err = sessionsCmd(ctx, rest, getenv, stdout, stderr)
	case "keys":
		err = keysCmd(ctx, rest, getenv, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "sessiond", version)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "sessiond: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintf(stderr, "sessiond: %v\n", err)
	return 1
}

// errUsage marks an error already reported by the flag package.
var errUsage = errors.New("usage")
