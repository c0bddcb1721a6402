// Command shop is a small web shop built on sessiond as a Go library: a
// catalogue, a cart kept in the session's data (so an anonymous visitor
// has one), registration, sign-in and sign-out. Signing in replaces the
// anonymous session with a new one, and the cart goes with it.
//
//	go run ./examples/shop -listen 127.0.0.1:8091 -db shop.db
//
// Then open http://127.0.0.1:8091/ (browsers accept the __Host- Secure
// cookies on http://127.0.0.1 and http://localhost; anywhere else, serve
// it behind TLS). See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/sessionhttp"
	"github.com/sessiond/sessiond/sqlite"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8091", "address to serve on")
	dbPath := flag.String("db", filepath.Join(os.TempDir(), "sessiond-shop.db"),
		"SQLite file for the sessions and the accounts (created if missing)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(*listen, *dbPath, log); err != nil {
		fmt.Fprintln(os.Stderr, "shop:", err)
		os.Exit(1)
	}
}

// run wires the shop by hand (one SQLite file holds both the sessions and
// the accounts) and serves it until SIGINT or SIGTERM.
func run(listen, dbPath string, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	store, err := sqlite.Open(ctx, dbPath, sqlite.WithLogger(log))
	if err != nil {
		return err
	}
	defer store.Close()
	manager, err := sessiond.NewManager(store, sessiond.Policy{}) // the defaults: 30m idle, 12h at most; 30 days with Remember Me
	if err != nil {
		return err
	}
	accounts, err := account.NewService(store, account.Config{}, account.WithLogger(log)) // argon2id, lockout after 5 failures
	if err != nil {
		return err
	}
	sessions := sessionhttp.New(manager, sessionhttp.Cookie{}) // __Host-session; Secure; HttpOnly; SameSite=Lax
	sessions.Logger = log
	shop, err := newShop(sessions, accounts, log)
	if err != nil {
		return err
	}

	go func() {
		_ = manager.RunSweeper(ctx, time.Minute, func(err error) { log.Error("sweeping expired sessions", "err", err) })
	}()
	srv := &http.Server{
		Addr:              listen,
		Handler:           shop.handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	log.Info("shop listening", "url", "http://"+listen+"/")
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
