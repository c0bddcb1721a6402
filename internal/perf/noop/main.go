// Command noop is the baseline of scripts/perf.sh: a plain net/http server
// whose every answer is 200 with a JSON body of a given size and nothing
// else to do, so that sessiond's who-am-I can be compared with the fastest
// a Go HTTP server on the same machine, measured the same way, can be.
//
//	go run ./internal/perf/noop --listen 127.0.0.1:0 --body-bytes 600
//
// It prints "noop listening on http://ADDR" when it is ready and serves
// until SIGINT or SIGTERM.
//
// With --like-sessiond it also sends the response headers sessiond sends
// on who-am-I (its security headers and Cache-Control) and runs with
// sessiond's default server timeouts, so that scripts/perf.sh can tell
// what those cost apart from what the who-am-I handler costs.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// sessiondHeaders are the headers of sessiond's who-am-I answer besides
// Content-Type, Content-Length and Date (scripts/perf.sh compares the two
// servers' header names and says so when they differ).
var sessiondHeaders = http.Header{
	"Cache-Control":                {"no-store"},
	"Content-Security-Policy":      {"default-src 'none'; frame-ancestors 'none'"},
	"Cross-Origin-Resource-Policy": {"same-origin"},
	"Referrer-Policy":              {"no-referrer"},
	"X-Content-Type-Options":       {"nosniff"},
	"X-Frame-Options":              {"DENY"},
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	size := flag.Int("body-bytes", 512, "size of every answer's body (at least 16)")
	like := flag.Bool("like-sessiond", false, "send sessiond's who-am-I headers and use its server timeouts")
	flag.Parse()
	if *size < 16 {
		fmt.Fprintln(os.Stderr, "noop: --body-bytes must be at least 16")
		os.Exit(2)
	}
	body := Body(*size)
	ctype := []string{"application/json"}
	clen := []string{strconv.Itoa(len(body))}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd["Content-Type"] = ctype
		hd["Content-Length"] = clen
		if *like {
			for k, v := range sessiondHeaders {
				hd[k] = v
			}
		}
		_, _ = w.Write(body)
	})

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "noop:", err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: h}
	if *like {
		// sessiond serve's defaults (--read-header-timeout and so on).
		srv.ReadHeaderTimeout = 5 * time.Second
		srv.ReadTimeout = 15 * time.Second
		srv.WriteTimeout = 30 * time.Second
		srv.IdleTimeout = 120 * time.Second
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	fmt.Printf("noop listening on http://%s\n", ln.Addr())
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "noop:", err)
		os.Exit(1)
	}
}

// Body returns a JSON object of exactly n bytes (n >= 16) ending in a
// newline, as sessiond's answers do.
func Body(n int) []byte {
	const head, tail = `{"padding":"`, "\"}\n"
	var b bytes.Buffer
	b.WriteString(head)
	b.Write(bytes.Repeat([]byte("x"), n-len(head)-len(tail)))
	b.WriteString(tail)
	return b.Bytes()
}
