package server

import (
	"encoding/json"
	"math/rand/v2"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
)

// TestWhoAmIEncodingMatchesEncodingJSON holds the hand-written encoder to
// encoding/json of viewSession and viewUser, for awkward strings and times
// in other zones than UTC too.
func TestWhoAmIEncodingMatchesEncodingJSON(t *testing.T) {
	strs := []string{"", "plain", `quote " back \ slash`, "<script>&amp;</script>", "tab\tnew\nline\r\x00\x1f",
		"ünïcödé 日本", "bad \xff utf8 \xc3", "line\u2028sep\u2029", "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"}
	zone := time.FixedZone("X", 3600)
	for _, str := range strs {
		now := time.Date(2026, 11, 26, 17, 0, 0, 123456000, time.UTC)
		for _, authed := range []time.Time{{}, now.Add(-time.Minute).In(zone)} {
			s := &sessiond.Session{ID: str, UserID: "u-1", RememberMe: true, CreatedAt: now, LastSeenAt: now.Add(time.Second).In(zone),
				AuthenticatedAt: authed, IdleExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(12 * time.Hour),
				Device: sessiond.Device{UserAgent: str, Browser: "Firefox", OS: str}, IP: "2001:db8::1"}
			for _, profile := range []string{`{"name":"Ada","n":[1,2]}`, "{}", ""} {
				// A user as the store gives it, in another zone than UTC.
				u := &account.User{ID: str, Email: str, Profile: []byte(profile), CreatedAt: now.In(zone)}
				want, _ := json.Marshal(map[string]any{"session": viewSession(s, true), "user": viewUser(u)})
				rec := httptest.NewRecorder()
				writeWhoAmI(rec, s, u)
				if got := rec.Body.String(); got != string(want)+"\n" {
					t.Errorf("for %q, profile %q:\n got %s\nwant %s", str, profile, got, want)
				}
			}
		}
		anon := &sessiond.Session{ID: str, CreatedAt: time.Unix(0, 0)}
		want, _ := json.Marshal(map[string]any{"session": viewSession(anon, true), "user": nil})
		rec := httptest.NewRecorder()
		writeWhoAmI(rec, anon, nil)
		if rec.Body.String() != string(want)+"\n" {
			t.Errorf("anonymous: got %s want %s", rec.Body, want)
		}
	}
}

// TestErrorEncodingMatchesWriteJSON holds the error encoder to writeJSON.
func TestErrorEncodingMatchesWriteJSON(t *testing.T) {
	for _, str := range []string{"", "unauthenticated", `a "quoted" <message> & more`, "bad \xff utf8", "line\u2028sep"} {
		want := httptest.NewRecorder()
		writeJSON(want, 401, map[string]any{"error": map[string]string{"code": str, "message": str + "!"}})
		got := httptest.NewRecorder()
		writeErrorBody(got, 401, str, str+"!")
		if got.Code != want.Code || got.Body.String() != want.Body.String() ||
			got.Header().Get("Content-Type") != want.Header().Get("Content-Type") ||
			got.Header().Get("Cache-Control") != want.Header().Get("Cache-Control") {
			t.Errorf("for %q: got %d %s %v, want %d %s %v", str, got.Code, got.Body, got.Header(), want.Code, want.Body, want.Header())
		}
	}
}

// TestTimeEncodingMatchesEncodingJSON holds appendTime to encoding/json
// over the whole range JSON allows, in and out of its fast range, with
// and without fractions, in other zones than UTC.
func TestTimeEncodingMatchesEncodingJSON(t *testing.T) {
	times := []time.Time{
		time.Unix(0, 0), time.Unix(0, 1), time.Unix(-1, 999999999), time.Unix(maxFastUnix, 999999999),
		time.Unix(maxFastUnix+1, 0), time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2000, 2, 29, 23, 59, 59, 100, time.UTC),
		time.Date(2100, 3, 1, 0, 0, 0, 500000000, time.UTC), time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC),
	}
	r := rand.New(rand.NewPCG(1, 2))
	zones := []*time.Location{time.UTC, time.FixedZone("E", 5*3600+1800), time.FixedZone("W", -11*3600)}
	for range 200000 {
		sec := r.Int64N(maxFastUnix+2*86400) - 86400*400
		ns := r.Int64N(1e9)
		switch r.IntN(4) {
		case 0:
			ns = 0
		case 1:
			ns -= ns % 1000
		}
		times = append(times, time.Unix(sec, ns).In(zones[r.IntN(len(zones))]))
	}
	for _, tm := range times {
		want, err := json.Marshal(tm.UTC())
		if err != nil {
			continue // outside JSON's years: encoding/json refuses it
		}
		if got := appendTime(nil, tm); string(got) != string(want) {
			t.Fatalf("%v: got %s, want %s", tm, got, want)
		}
	}
}

func BenchmarkAppendTime(b *testing.B) {
	tm := time.Date(2026, 11, 26, 17, 0, 0, 123456000, time.UTC)
	buf := make([]byte, 0, 64)
	for b.Loop() {
		buf = appendTime(buf[:0], tm)
	}
}
