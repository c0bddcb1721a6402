package server

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sessiond/sessiond/account"
)

// TestWhoAmIEncodingMatchesEncodingJSON holds the hand-written encoder to
// encoding/json, for awkward strings too.
func TestWhoAmIEncodingMatchesEncodingJSON(t *testing.T) {
	uid := "u-1"
	strs := []string{"", "plain", `quote " back \ slash`, "<script>&amp;</script>", "tab\tnew\nline\r\x00\x1f",
		"ünïcödé 日本", "bad \xff utf8 \xc3", "line\u2028sep\u2029", "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"}
	for _, str := range strs {
		now := time.Date(2026, 11, 26, 17, 0, 0, 123456000, time.UTC)
		authed := now.Add(-time.Minute)
		v := &sessionView{ID: str, UserID: &uid, RememberMe: true, CreatedAt: now, LastSeenAt: now.Add(time.Second), AuthenticatedAt: &authed,
			ExpiresAt: now.Add(time.Hour), IdleExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(12 * time.Hour),
			Device: deviceView{UserAgent: str, Browser: "Firefox", OS: str}, IP: "2001:db8::1", Current: true}
		for _, profile := range []string{`{"name":"Ada","n":[1,2]}`, "{}", ""} {
			// A user as the store gives it, in another zone than UTC.
			u := &account.User{ID: str, Email: str, Profile: []byte(profile), CreatedAt: now.In(time.FixedZone("X", 3600))}
			want, _ := json.Marshal(map[string]any{"session": v, "user": viewUser(u)})
			rec := httptest.NewRecorder()
			writeWhoAmI(rec, v, u)
			if got := rec.Body.String(); got != string(want)+"\n" {
				t.Errorf("for %q, profile %q:\n got %s\nwant %s", str, profile, got, want)
			}
		}
		anon := &sessionView{ID: "x", Anonymous: true}
		want, _ := json.Marshal(map[string]any{"session": anon, "user": nil})
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
