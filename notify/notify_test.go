package notify_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiond/sessiond/notify"
)

func TestWebhookSignsAndVerifies(t *testing.T) {
	secret := []byte("s3cret")
	got := make(chan error, 1)
	var msg notify.Message
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &msg)
		got <- notify.Verify(secret, r.Header.Get(notify.SignatureHeader), body, time.Now(), 5*time.Minute)
	}))
	defer srv.Close()
	m := notify.NewMessage(notify.TypePasswordReset, time.Now(), "a@example.com", "u1", map[string]any{"token": "sdp_x"})
	if err := (notify.Webhook{URL: srv.URL, Secret: secret}).Notify(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("receiver could not verify: %v", err)
	}
	if msg.ID != m.ID || msg.Data["token"] != "sdp_x" {
		t.Fatalf("receiver got %+v", msg)
	}
}

func TestVerifyRefuses(t *testing.T) {
	secret, body, now := []byte("k"), []byte(`{"a":1}`), time.Now()
	h := notify.Sign(secret, now, body)
	if err := notify.Verify(secret, h, body, now, time.Minute); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		secret []byte
		h      string
		body   []byte
		now    time.Time
	}{
		"other secret": {[]byte("x"), h, body, now},
		"other body":   {secret, h, []byte(`{"a":2}`), now},
		"replayed":     {secret, h, body, now.Add(10 * time.Minute)},
		"no header":    {secret, "", body, now},
		"garbage":      {secret, "t=1,v1=zz", body, now},
	} {
		if notify.Verify(c.secret, c.h, c.body, c.now, time.Minute) == nil {
			t.Errorf("%s: verified", name)
		}
	}
}

func TestWebhookErrorStatus(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }))
	defer srv.Close()
	if err := (notify.Webhook{URL: srv.URL}).Notify(t.Context(), notify.Message{}); err == nil {
		t.Fatal("a 500 from the receiver was taken as delivered")
	}
}

func TestOutbox(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outbox")
	m := notify.NewMessage(notify.TypePasswordReset, time.Now(), "a@example.com", "u1", map[string]any{"token": "t"})
	if err := (notify.Outbox{Dir: dir}).Notify(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) != 1 {
		t.Fatalf("outbox has %v", files)
	}
	st, _ := os.Stat(files[0])
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("outbox file mode %v, want 0600", st.Mode().Perm())
	}
	b, _ := os.ReadFile(files[0])
	var back notify.Message
	if err := json.Unmarshal(b, &back); err != nil || back.ID != m.ID || back.Data["token"] != "t" {
		t.Fatalf("outbox file = %s (%v)", b, err)
	}
}

// TestWebhookRefusesRedirects: a 307 from the receiver is a failed
// delivery, and the message (which may carry a reset token) is not sent on
// to the Location, with the default client or one of the caller's that
// would follow redirects.
func TestWebhookRefusesRedirects(t *testing.T) {
	var redirected atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		redirected.Add(1)
	}))
	defer elsewhere.Close()
	for _, code := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect, http.StatusFound} {
		receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, elsewhere.URL+"/steal", code)
		}))
		m := notify.NewMessage(notify.TypePasswordReset, time.Now(), "a@example.com", "u1", map[string]any{"token": "sdp_x"})
		for name, c := range map[string]*http.Client{"default client": nil, "caller's client": {}} {
			err := notify.Webhook{URL: receiver.URL, Secret: []byte("k"), Client: c}.Notify(t.Context(), m)
			if err == nil {
				t.Errorf("%d, %s: a redirect was taken as delivered", code, name)
			}
		}
		receiver.Close()
	}
	if n := redirected.Load(); n != 0 {
		t.Fatalf("the redirect target received %d messages", n)
	}
}
