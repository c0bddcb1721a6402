package e2e_test

// The new-device notice of the security review (issue 20): two nodes that
// see the same new device at once send one notice between them.

import (
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestNewDeviceNoticeOnceAcrossNodes: concurrent sign-ins from one new
// device, spread over two nodes sharing PostgreSQL, used to each read the
// trail, find no sign-in from the device, and each record new_device and
// send new_device_sign_in. The device record is now unique in the store:
// exactly one sign-in is the first from the device, so exactly one event
// and one notice, for each of several users.
func TestNewDeviceNoticeOnceAcrossNodes(t *testing.T) {
	t.Parallel()
	outbox := filepath.Join(t.TempDir(), "outbox")
	nodes := startNodes(t, 2, []string{"--database", postgresDB(t), "--notify-outbox", outbox})
	for _, n := range nodes {
		n.Outbox = outbox // the nodes share one, for waitMessages
	}
	const users, perNode = 3, 4
	for range users {
		u := newUser(t, nodes[0])
		login(t, nodes[0], u, userAgent(chromeUA)) // the first sign-in: no notice

		start := make(chan struct{})
		var wg sync.WaitGroup
		for _, n := range nodes {
			for range perNode {
				wg.Go(func() {
					<-start
					r := tryLogin(t, n, u.Email, u.Password, userAgent(firefoxLinuxUA))
					if r.Status != http.StatusOK {
						t.Errorf("sign-in from the new device on %s: %d %s", n.Pub, r.Status, r.Body)
					}
				})
			}
		}
		close(start)
		wg.Wait()

		// Every sign-in has answered, so the trail is complete.
		if evs := eventsOf(t, nodes[1], u.ID, "new_device"); len(evs) != 1 {
			t.Errorf("%d concurrent sign-ins from one new device over two nodes recorded %d new_device events, want 1",
				len(nodes)*perNode, len(evs))
		}
		waitMessages(t, nodes[0], u.ID, "new_device_sign_in", 1)
		time.Sleep(500 * time.Millisecond) // a second notice is delivered as soon
		waitMessages(t, nodes[0], u.ID, "new_device_sign_in", 1)
	}
}
