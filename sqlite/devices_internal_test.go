package sqlite

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/pressly/goose/v3"
)

// TestAuditDevicesFromTrail: migration 00014 fills audit_devices from the
// sign-ins already in the trail, so an upgrade does not take every known
// device for a new one (and tell each user once more).
func TestAuditDevicesFromTrail(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "upgrade.db")
	c := newConfig(nil)
	db, err := openWriter(ctx, path, c)
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, migrations(), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 13); err != nil {
		t.Fatalf("migrating to 13: %v", err)
	}
	at := time.Now().UnixMicro()
	for i, ev := range []struct {
		typ     string
		browser any
	}{{"signed_in", "Firefox"}, {"signed_in", nil}, {"signed_out", "Chrome"}} {
		if _, err := db.ExecContext(ctx, `INSERT INTO audit_events (id, user_id, type, time, browser, os)
			VALUES (?1, 'ada', ?2, ?3, ?4, 'Linux')`, i, ev.typ, at, ev.browser); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	st, err := Open(ctx, path) // migrates to the newest
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, tc := range []struct {
		browser string
		want    bool
	}{{"Firefox", false}, {"", false}, {"Chrome", true}} {
		added, err := st.Audit().AddDevice(ctx, "ada", tc.browser, "Linux", time.Now())
		if err != nil || added != tc.want {
			t.Errorf("AddDevice(ada, %q, Linux) after the upgrade = %v, %v; want %v", tc.browser, added, err, tc.want)
		}
	}
}
