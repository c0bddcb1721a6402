package e2e_test

import (
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"
)

// Refresh-token reuse across nodes (issue 20, Medium): the owner refreshes
// the current token on node A while a thief presents the already-used one,
// past the grace window, on node B at the same moment. The grace decision
// used to read the session's last use, which the owner's refresh writes
// just before its rotation: a thief reading in between got a valid next
// token and no reuse was flagged. It now reads the time of the last
// rotation, written by the rotation itself.

func TestRefreshReuseRaceAcrossNodesPostgres(t *testing.T) {
	t.Parallel()
	testRefreshReuseRace(t, []string{"--database", postgresDB(t)})
}

func TestRefreshReuseRaceAcrossNodesRedis(t *testing.T) {
	t.Parallel()
	testRefreshReuseRace(t, []string{"--database", postgresDB(t), "--session-store", redisStore(t)})
}

func testRefreshReuseRace(t *testing.T, args []string) {
	const (
		trials = 100
		grace  = 300 * time.Millisecond
	)
	kek := newKEK()
	args = append(args, "--refresh-grace", grace.String())
	a := startServer(t, args, withEnv(kekEnv(kek)))
	b := startServer(t, args, withEnv(kekEnv(kek)))
	u := newUser(t, a)

	type trial struct{ used, current string }
	ts := make([]trial, trials)
	for i := range ts {
		p0 := loginJWT(t, a, u, false)
		p1 := mustRefresh(t, a, p0.Refresh)
		ts[i] = trial{used: p0.Refresh, current: p1.Refresh}
	}
	time.Sleep(grace + 200*time.Millisecond) // every used token is past the window

	body := func(tok string) string {
		b, _ := json.Marshal(J{"refresh_token": tok})
		return string(b)
	}
	thiefWon := 0
	for _, tr := range ts {
		var wg sync.WaitGroup
		var thief int
		start := make(chan struct{})
		wg.Go(func() {
			<-start
			quickBody(t, "POST", a.Pub+refreshPath, "", body(tr.current)) // the owner
		})
		wg.Go(func() {
			<-start
			thief, _ = quickBody(t, "POST", b.Pub+refreshPath, "", body(tr.used))
		})
		close(start)
		wg.Wait()
		switch thief {
		case http.StatusOK:
			thiefWon++
		case http.StatusUnauthorized:
		default:
			t.Fatalf("thief's refresh: status %d", thief)
		}
	}
	t.Logf("the thief's used token got a next token in %d of %d races", thiefWon, trials)
	if thiefWon > 0 {
		t.Errorf("a refresh token used past the grace window was accepted in %d of %d races with the owner's refresh on another node", thiefWon, trials)
	}
}
