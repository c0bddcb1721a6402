// Package notify delivers messages that sessiond cannot show in an HTTP
// answer, above all password-reset tokens, which must reach the account's
// owner and nobody else. sessiond sends no email itself: the app receives
// the message (Webhook) and mails it, or a developer reads it from a
// directory (Outbox).
package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Message types. The names are stable; docs/notifications.md documents
// each one's Data (and docs/schemas/ holds a JSON Schema of each message).
const (
	// TypePasswordReset carries a reset token and its expiry in Data:
	// "token", "expires_at" and, with a public URL configured, "link".
	TypePasswordReset = "password_reset"
	// TypeHijackSuspected: a browser session's token came from another
	// browser or OS family (or without a User-Agent), and the session was
	// ended. Data: "session_id", "session_browser", "session_os",
	// "session_ip" (where it started), "browser", "os", "ip" (the refused
	// request), "detected_at".
	TypeHijackSuspected = "hijack_suspected"
	// TypeNewDeviceSignIn: a sign-in from a browser and OS family the user
	// had not signed in from before. Data: "session_id", "browser", "os",
	// "ip", "signed_in_at".
	TypeNewDeviceSignIn = "new_device_sign_in"
	// TypePasswordChanged: the password was set, by a change ("method"
	// "change") or with a reset token ("reset"). Data: "method",
	// "sessions_ended" (how many sessions were signed out with it),
	// "changed_at", "ip", "browser", "os".
	TypePasswordChanged = "password_changed"
	// TypeAccountLocked: failed password checks locked the account. Data:
	// "locked_until", and "ip", "browser", "os" of the attempt that locked
	// it.
	TypeAccountLocked = "account_locked"
	// TypeSessionRevokedByAdmin: an administrator ended one of the user's
	// sessions ("scope" "session": "session_id", "session_browser",
	// "session_os") or all of them ("scope" "all"). Data also
	// "sessions_ended" and "revoked_at".
	TypeSessionRevokedByAdmin = "session_revoked_by_admin"
	// TypeEmailChangeConfirm goes to the new address of a change of email:
	// Data "token" (the confirmation token, a secret), "expires_at" and,
	// with a public URL configured, "link".
	TypeEmailChangeConfirm = "email_change_confirm"
	// TypeEmailChangeRequested goes to the current address when a change
	// is requested: Data "new_email", "expires_at", "requested_at", "ip",
	// "browser", "os".
	TypeEmailChangeRequested = "email_change_requested"
	// TypeEmailChanged goes to the old address once the change is
	// confirmed: Data "new_email", "changed_at", "sessions_ended".
	TypeEmailChanged = "email_changed"
)

// Message is one notification for one user.
type Message struct {
	// ID is unique per message, so receivers can drop duplicates.
	ID   string    `json:"id"`
	Type string    `json:"type"`
	Time time.Time `json:"time"`
	// To is the user's email address.
	To     string `json:"to"`
	UserID string `json:"user_id"`
	// Data holds the type's fields.
	Data map[string]any `json:"data"`
}

// Notifier delivers messages. Implementations must not log a message's
// Data, which may hold secrets.
type Notifier interface {
	Notify(ctx context.Context, m Message) error
}

// NewMessage returns a message with a fresh id and the given time.
func NewMessage(typ string, now time.Time, to, userID string, data map[string]any) Message {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return Message{ID: hex.EncodeToString(b[:]), Type: typ, Time: now.UTC(), To: to, UserID: userID, Data: data}
}

// Outbox writes each message as a JSON file (mode 0600) into Dir, named
// after its time and id. It is meant for development: read the reset link
// from the file instead of an inbox.
type Outbox struct {
	Dir string
}

// Notify implements Notifier.
func (o Outbox) Notify(ctx context.Context, m Message) error {
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return fmt.Errorf("notify: outbox: %w", err)
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	name := filepath.Join(o.Dir, m.Time.Format("20060102T150405.000000Z")+"-"+m.Type+"-"+m.ID+".json")
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("notify: outbox: %w", err)
	}
	return os.Rename(tmp, name)
}

// Discard drops every message. It is the notifier when none is configured.
type Discard struct{}

// Notify implements Notifier.
func (Discard) Notify(context.Context, Message) error { return nil }

// SignatureHeader carries a webhook's signature: "t=<unix seconds>,v1=<hex
// HMAC-SHA256 of "<t>.<body>" under the shared secret>". Receivers check
// the HMAC in constant time and refuse a t older than a few minutes.
const SignatureHeader = "Sessiond-Signature"

// Webhook POSTs each message as JSON to URL, signed with Secret.
//
// It never follows a redirect: an answer 3xx is a failed delivery, as any
// other answer but 2xx. A message may carry a reset or email-change token,
// and following a Location would re-send it, signed, to wherever the
// receiver (or whoever controls its answers) points.
type Webhook struct {
	URL    string
	Secret []byte
	// Client defaults to a client with a 10s timeout. Its CheckRedirect is
	// not used: Notify sends with a copy that refuses every redirect.
	Client *http.Client
	// Now defaults to time.Now.
	Now func() time.Time
}

// Notify implements Notifier. Any answer but 2xx is an error.
func (h Webhook) Notify(ctx context.Context, m Message) error {
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("notify: webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sessiond-notifier")
	req.Header.Set(SignatureHeader, Sign(h.Secret, now(), body))
	c := http.Client{Timeout: 10 * time.Second}
	if h.Client != nil {
		c = *h.Client
	}
	c.CheckRedirect = refuseRedirect
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("notify: webhook: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("notify: webhook: receiver answered %s", resp.Status)
	}
	return nil
}

// refuseRedirect makes a client hand back a 3xx answer as it is, instead
// of following it.
func refuseRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Sign returns the SignatureHeader value for body at time t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(ts))
	h.Write([]byte("."))
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks a SignatureHeader value for body: the HMAC must match and t
// must be within tolerance of now. Receivers written in Go can use it as is.
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts, sig string
	for _, part := range bytes.Split([]byte(header), []byte(",")) {
		k, v, ok := bytes.Cut(bytes.TrimSpace(part), []byte("="))
		if !ok {
			continue
		}
		switch string(k) {
		case "t":
			ts = string(v)
		case "v1":
			sig = string(v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.New("notify: signature without a valid timestamp")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return errors.New("notify: signature timestamp outside the tolerance")
	}
	got, err := hex.DecodeString(sig)
	if err != nil || !hmac.Equal(got, mac(secret, ts, body)) {
		return errors.New("notify: signature mismatch")
	}
	return nil
}
