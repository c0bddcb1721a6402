package webhook

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/sessiond/sessiond/notify"
)

// Queue is an outbox that sessiond writes itself, instead of the
// database's triggers: the queue of security notifications. It keeps
// Store's contract (claims leased, due times, dead letters), with these
// differences, checked by storetest.RunQueue:
//
//   - Enqueue stores e (ID, Type, Time, Data), due at once, and returns
//     only once it is durable. An ID already in the queue is an error.
//   - SetWebhooksEnabled does nothing: the queue is always on.
//   - WebhookDelivered deletes the event: a delivered message, which may
//     hold a token, is kept nowhere.
//   - WebhookFailed with dead set also drops the event's data; its id,
//     type, attempts and last error stay, until pruned, for the operator.
type Queue interface {
	Store
	Enqueue(ctx context.Context, e Event) error
}

// Notifications is the durable queue of security notifications: Notify
// writes a message into Queue and returns once it is stored (so the
// request that caused it can answer), and a Dispatcher whose Deliver is
// Notifications.Deliver(n) sends it through the notifier n, at least once,
// with retries. A flood of requests therefore queues messages instead of
// dropping them, and a notifier that is down loses nothing.
//
// A message may carry a password-reset or email-change token. At rest it
// is protected by the database's own protection (the file mode, the
// server's access control) and, with Key set, sealed; once delivered it is
// deleted, and a dead-lettered one loses its data.
type Notifications struct {
	// Queue stores the messages. Required.
	Queue Queue
	// Key, 32 bytes, seals each message with XChaCha20-Poly1305 bound to
	// its id, so that a copy of the database (a backup, a replica) does
	// not hold live tokens in the clear. sessiond derives it from the
	// key-encryption key. Default nil: messages are stored as JSON.
	Key []byte
	// Queued, when set, is called after each message is stored: the
	// local Dispatcher's Wake, so that it is delivered without waiting
	// for the next poll. Default nil.
	Queued func()
}

var _ notify.Notifier = Notifications{}

// ErrSealed is Deliver's error for a sealed message without the key that
// opens it (a key-encryption key that was changed or removed).
var ErrSealed = errors.New("webhook: queued message is sealed and cannot be opened with this key")

// Notify implements notify.Notifier: it queues m.
func (n Notifications) Notify(ctx context.Context, m notify.Message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if n.Key != nil {
		if b, err = seal(n.Key, m.ID, b); err != nil {
			return err
		}
	}
	if err := n.Queue.Enqueue(ctx, Event{ID: m.ID, Type: m.Type, Time: m.Time, Data: b}); err != nil {
		return err
	}
	if n.Queued != nil {
		n.Queued()
	}
	return nil
}

// Deliver returns the function that a Dispatcher over Queue delivers each
// queued message with: it opens the message and hands it to to.
func (n Notifications) Deliver(to notify.Notifier) func(context.Context, Event) error {
	return func(ctx context.Context, e Event) error {
		m, err := n.open(e)
		if err != nil {
			return err
		}
		return to.Notify(ctx, m)
	}
}

// open is the message e holds: a JSON object, or a JSON string (the
// sealed form).
func (n Notifications) open(e Event) (notify.Message, error) {
	var m notify.Message
	data := []byte(e.Data)
	var sealed []byte
	if json.Unmarshal(e.Data, &sealed) == nil { // a base64 JSON string: sealed
		if n.Key == nil {
			return m, ErrSealed
		}
		var err error
		if data, err = unseal(n.Key, e.ID, sealed); err != nil {
			return m, err
		}
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("webhook: queued message %s: %w", e.ID, err)
	}
	return m, nil
}

// seal encrypts msg under key, bound to id, as a JSON string of
// base64(nonce || ciphertext).
func seal(key []byte, id string, msg []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("webhook: notification key: %w", err)
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(msg)+aead.Overhead())
	_, _ = rand.Read(nonce) // crypto/rand.Read never fails (Go 1.24+)
	return json.Marshal(aead.Seal(nonce, nonce, msg, []byte(id)))
}

func unseal(key []byte, id string, sealed []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("webhook: notification key: %w", err)
	}
	if len(sealed) < aead.NonceSize()+aead.Overhead() {
		return nil, ErrSealed
	}
	msg, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], []byte(id))
	if err != nil {
		return nil, ErrSealed
	}
	return msg, nil
}
