package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/postgres"
	"github.com/sessiond/sessiond/sqlite"
)

// subFlags loads the configuration with a subcommand's own flags.
func subFlags(name string, args []string, getenv func(string) string, stderr io.Writer, own func(*flag.FlagSet)) (*config, error) {
	c, _, err := loadConfig(name, args, getenv, stderr, own)
	if err != nil {
		return nil, usageErr(err)
	}
	return c, nil
}

func migrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c, err := subFlags("sessiond migrate", args, getenv, stderr, func(*flag.FlagSet) {})
	if err != nil {
		return err
	}
	kind, target, err := c.databaseTarget()
	if err != nil {
		return err
	}
	switch kind {
	case dbSQLite:
		err = sqlite.Migrate(ctx, target, sqlite.WithLogger(c.logger(stderr)))
	case dbPostgres:
		err = postgres.Migrate(ctx, target, postgres.WithLogger(c.logger(stderr)))
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "migrations applied:", redactURL(c.Database))
	return nil
}

func printConfig(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c, fs, err := loadConfig("sessiond config", args, getenv, stderr)
	if err != nil {
		return usageErr(err)
	}
	c.print(stdout, fs)
	return nil
}

func userCmd(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		return errors.New("usage: sessiond user create --email E (password on stdin)")
	}
	var email string
	c, err := subFlags("sessiond user create", args[1:], getenv, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&email, "email", "", "email of the new user")
	})
	if err != nil {
		return err
	}
	if email == "" {
		return errors.New("user create: --email is required")
	}
	password, err := readPassword(stdin)
	if err != nil {
		return err
	}
	a, err := newApp(ctx, c, c.logger(stderr), getenv)
	if err != nil {
		return err
	}
	defer a.backend.close()
	u, err := a.accounts.CreateUser(ctx, email, password, nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created user %s <%s>\n", u.ID, u.Email)
	return nil
}

// readPassword reads one line from stdin: a password never goes in argv,
// where every user of the machine can read it.
func readPassword(stdin io.Reader) (string, error) {
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("user create: give the password on stdin, e.g. printf '%s\\n' \"$PASSWORD\" | sessiond user create --email E")
	}
	return line, nil
}

func sessionsCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "revoke") {
		return errors.New("usage: sessiond sessions list|revoke [--id ID] [--user ID] [--email E]")
	}
	verb := args[0]
	var id, userID, email string
	c, err := subFlags("sessiond sessions "+verb, args[1:], getenv, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&userID, "user", "", "user id")
		fs.StringVar(&email, "email", "", "user email")
		if verb == "revoke" {
			fs.StringVar(&id, "id", "", "session id")
		}
	})
	if err != nil {
		return err
	}
	a, err := newApp(ctx, c, c.logger(stderr), getenv)
	if err != nil {
		return err
	}
	defer a.backend.close()
	if email != "" {
		u, err := a.accounts.UserByEmail(ctx, email)
		if err != nil {
			return err
		}
		userID = u.ID
	}
	switch {
	case verb == "list" && userID != "":
		list, err := a.sessions.List(ctx, userID)
		if err != nil {
			return err
		}
		printSessions(stdout, list, a.sessions.Now())
	case verb == "revoke" && id != "" && userID == "":
		if err := a.sessions.Revoke(ctx, id, sessiond.ReasonAdmin); err != nil {
			if errors.Is(err, sessiond.ErrNotFound) {
				return fmt.Errorf("no active session %s", id)
			}
			return err
		}
		fmt.Fprintln(stdout, "revoked session", id)
	case verb == "revoke" && userID != "" && id == "":
		n, err := a.sessions.RevokeUser(ctx, userID, "", sessiond.ReasonAdmin)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked %d sessions of user %s\n", n, userID)
	default:
		return fmt.Errorf("sessions %s: give --user or --email%s", verb, map[bool]string{true: ", or --id alone", false: ""}[verb == "revoke"])
	}
	return nil
}

func printSessions(w io.Writer, list []*sessiond.Session, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tBROWSER\tOS\tIP\tCREATED\tLAST SEEN\tEXPIRES\tREMEMBER ME")
	for _, s := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s ago\t%s\t%v\n", s.ID, orDash(s.Device.Browser), orDash(s.Device.OS), orDash(s.IP),
			s.CreatedAt.Format(time.RFC3339), now.Sub(s.LastSeenAt).Round(time.Second), s.ExpiresAt().Format(time.RFC3339), s.RememberMe)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d active sessions\n", len(list))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
