package e2e_test

// Tests of the low-severity findings of the security review (issue 20),
// each against the built binary.

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// notifySecret is a notifier webhook secret of the least length allowed.
const notifySecret = "e2e-notify-secret-0123456789abcd"

// TestNotifyWebhookRefusesRedirects: the notifier's webhook answering 307
// to another receiver does not make sessiond re-send the message, with its
// reset token, there; the second receiver gets nothing.
func TestNotifyWebhookRefusesRedirects(t *testing.T) {
	t.Parallel()
	var stolen atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stolen.Add(1)
	}))
	defer elsewhere.Close()
	hit := make(chan string, 4)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		hit <- string(body)
		http.Redirect(w, r, elsewhere.URL+"/collect", http.StatusTemporaryRedirect)
	}))
	defer receiver.Close()
	s := startServer(t, []string{"--notify-webhook", receiver.URL + "/notify"},
		withEnv("SESSIOND_NOTIFY_WEBHOOK_SECRET="+notifySecret))
	u := newUser(t, s)
	requestReset(t, s, u.Email)
	select {
	case body := <-hit:
		if !strings.Contains(body, `"password_reset"`) {
			t.Fatalf("the receiver got %s, want the reset message", body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the receiver got no reset message within 10s")
	}
	// A followed redirect is sent at once, within the same delivery.
	time.Sleep(time.Second)
	if n := stolen.Load(); n != 0 {
		t.Fatalf("the redirect target received %d messages", n)
	}
}
