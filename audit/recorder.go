package audit

import (
	"context"
	"log/slog"
	"time"

	"github.com/sessiond/sessiond"
)

// Client describes who made the request that causes an event.
type Client struct {
	IP      string
	Browser string
	OS      string
}

type clientKey struct{}

// WithClient returns ctx carrying c, for a Recorder further down the call.
func WithClient(ctx context.Context, c Client) context.Context {
	return context.WithValue(ctx, clientKey{}, c)
}

// ClientFrom returns the Client of ctx, zero when it carries none.
func ClientFrom(ctx context.Context) Client {
	c, _ := ctx.Value(clientKey{}).(Client)
	return c
}

// NewClient describes a client from its address and User-Agent header.
func NewClient(ip, userAgent string) Client {
	d := sessiond.ParseDevice(userAgent)
	return Client{IP: ip, Browser: d.Browser, OS: d.OS}
}

// Recorder records events with what every event shares (a fresh ID, the
// time, the client from the context) and logs failures instead of
// returning them: a trail that cannot be written must not fail the request
// it describes. A Recorder with a nil Store, or a nil *Recorder, records
// nothing. It is safe for concurrent use.
type Recorder struct {
	// Store keeps the events; nil records nothing.
	Store Store
	// Log receives failures. Default slog.Default().
	Log *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Enabled reports whether events are kept.
func (r *Recorder) Enabled() bool { return r != nil && r.Store != nil }

func (r *Recorder) now() time.Time {
	if r.Now != nil {
		return r.Now().UTC().Truncate(time.Microsecond)
	}
	return time.Now().UTC().Truncate(time.Microsecond)
}

func (r *Recorder) log() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.Default()
}

// Record records an event of type typ for user. The client comes from ctx
// (WithClient); sessionID and data may be empty.
func (r *Recorder) Record(ctx context.Context, userID, typ, sessionID string, data map[string]any) {
	if !r.Enabled() || userID == "" {
		return
	}
	r.record(ctx, ClientFrom(ctx), userID, typ, sessionID, data, r.now())
}

func (r *Recorder) record(ctx context.Context, c Client, userID, typ, sessionID string, data map[string]any, at time.Time) {
	id, err := sessiond.NewID(nil)
	if err == nil {
		err = r.Store.Record(ctx, &Event{ID: id, UserID: userID, Type: typ, Time: at,
			SessionID: sessionID, IP: c.IP, Browser: c.Browser, OS: c.OS, Data: data})
	}
	if err != nil {
		r.log().ErrorContext(ctx, "recording an audit event failed", "type", typ, "user_id", userID, "err", err)
	}
}

// SignedIn records a sign-in to session sessionID, and after it a
// NewDevice event when the user has signed in before but never from the
// client's browser and OS family; it reports whether it recorded one.
//
// The device is added to the store's unique record of the user's devices
// (Store.AddDevice) rather than looked for in the trail and then written:
// two nodes seeing the same new device at once would both have found it
// missing, and both have told the user. Of concurrent sign-ins from one
// new device exactly one adds it, so exactly one is new.
func (r *Recorder) SignedIn(ctx context.Context, userID, sessionID string) (newDevice bool) {
	if !r.Enabled() || userID == "" {
		return false
	}
	c, at := ClientFrom(ctx), r.now()
	before, err := r.Store.List(ctx, userID, Filter{Types: []string{SignedIn}, Limit: 1})
	added := false
	if err == nil {
		added, err = r.Store.AddDevice(ctx, userID, c.Browser, c.OS, at)
	}
	if err != nil {
		r.log().ErrorContext(ctx, "checking for a new device failed", "user_id", userID, "err", err)
	}
	isNew := added && len(before) > 0
	r.record(ctx, c, userID, SignedIn, sessionID, nil, at)
	if isNew {
		r.record(ctx, c, userID, NewDevice, sessionID, nil, at)
	}
	return isNew
}

// LockObserver returns a func for account.WithLockObserver that records
// LockedOut with the lock's end.
func (r *Recorder) LockObserver() func(ctx context.Context, userID string, until time.Time) {
	return func(ctx context.Context, userID string, until time.Time) {
		r.Record(ctx, userID, LockedOut, "", map[string]any{"locked_until": until.UTC().Format(time.RFC3339)})
	}
}
