// Command library shows sessiond used as a Go library inside an app: the
// sessions live in an embedded SQLite file, the sessionhttp middleware
// loads each request's session, and the app keeps a cart for anonymous
// visitors that survives signing in.
//
//	go run ./examples/library -listen 127.0.0.1:8090
//
// Then open http://127.0.0.1:8090/ (browsers accept the __Host- Secure
// cookie on http://127.0.0.1 and http://localhost).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/sessionhttp"
	"github.com/sessiond/sessiond/sqlite"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8090", "address to serve on")
	dbPath := flag.String("db", "example-sessions.db", "SQLite file for the sessions")
	flag.Parse()
	if err := run(*listen, *dbPath); err != nil {
		fmt.Fprintln(os.Stderr, "library example:", err)
		os.Exit(1)
	}
}

func run(listen, dbPath string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	store, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		return err
	}
	defer store.Close()
	manager, err := sessiond.NewManager(store, sessiond.Policy{IdleTimeout: time.Hour})
	if err != nil {
		return err
	}
	go manager.RunSweeper(ctx, time.Minute, func(err error) { slog.Error("sweep", "err", err) })

	// The middleware refuses cross-origin state changes (CSRF) with 403;
	// a front end on another origin of yours would be trusted with
	// sessions.CrossOrigin.AddTrustedOrigin("https://app.example.com").
	sessions := sessionhttp.New(manager, sessionhttp.Cookie{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		var cart []string
		if raw, ok, err := sessions.Get(r, "cart"); err == nil && ok {
			_ = json.Unmarshal(raw, &cart)
		}
		user, _ := sessionhttp.UserID(r.Context())
		fmt.Fprintf(w, `<!doctype html><title>library example</title>
<p>Signed in as: %s</p><p>Cart: %s</p>
<form method=post action=/add><button name=item value=book>Add a book</button></form>
<form method=post action=/login><input name=user aria-label=user value=alice>
<label><input type=checkbox name=remember> Remember me</label><button>Sign in</button></form>
<form method=post action=/logout><button>Sign out</button></form>`,
			html.EscapeString(orNone(user)), html.EscapeString(fmt.Sprint(cart)))
	})
	mux.HandleFunc("POST /add", func(w http.ResponseWriter, r *http.Request) {
		var cart []string
		if raw, ok, err := sessions.Get(r, "cart"); err == nil && ok {
			_ = json.Unmarshal(raw, &cart)
		}
		cart = append(cart, r.FormValue("item"))
		raw, _ := json.Marshal(cart)
		if err := sessions.Put(w, r, "cart", raw); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		// A real app checks a password here.
		if _, err := sessions.Login(w, r, r.FormValue("user"), r.FormValue("remember") != ""); err != nil {
			http.Error(w, "could not sign in", http.StatusServiceUnavailable)
			return
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		if err := sessions.Logout(w, r); err != nil {
			http.Error(w, "could not sign out", http.StatusServiceUnavailable)
			return
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})

	srv := &http.Server{Addr: listen, Handler: sessions.Middleware(mux),
		ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	slog.Info("library example listening", "addr", "http://"+listen)
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		return err
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(nobody)"
	}
	return s
}
