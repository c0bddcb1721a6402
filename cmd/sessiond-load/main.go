// Command sessiond-load is the load generator for sizing a sessiond
// deployment: it drives a running server over HTTP (who-am-I, login,
// refresh and mixed scenarios) and prints a percentile table, optionally
// with JSON and an SVG chart. It is a command of its own so that the server
// binary does not carry it or its terminal dependencies.
//
//	sessiond-load [flags]     (see 'sessiond-load -h')
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

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	os.Exit(code)
}

// run is main without the process: it returns the exit code (0 on success
// and for -h, 2 for a usage error, 1 for any other failure).
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	switch err := benchCmd(ctx, args, getenv, stdout, stderr); {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintf(stderr, "sessiond-load: %v\n", err)
		return 1
	}
}

// errUsage marks an error already reported by the flag package.
var errUsage = errors.New("usage")

// usageErr keeps flag parse errors, which the flag package has already
// printed with the usage, from being printed twice.
func usageErr(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return errUsage
}
