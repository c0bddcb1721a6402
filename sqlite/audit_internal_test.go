package sqlite

import (
	"strings"
	"testing"
)

// TestAuditQueryPlans checks that a user's events and the retention sweep
// use their indexes rather than scan the table.
func TestAuditQueryPlans(t *testing.T) {
	st := openInternal(t, "audit.db")
	for _, tc := range []struct{ query, index string }{
		{`SELECT id FROM audit_events WHERE user_id = ?1 AND (?2 IS NULL OR time >= ?2) ORDER BY time DESC, seq DESC LIMIT 10`, "audit_events_user_time"},
		{`SELECT seq FROM audit_events WHERE time < ?1 LIMIT 1000`, "audit_events_time"},
	} {
		rows, err := st.r.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+tc.query, "x", int64(1))
		if err != nil {
			t.Fatalf("%s: %v", tc.query, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		if p := strings.Join(plan, "; "); !strings.Contains(p, tc.index) {
			t.Errorf("query %s\nplan %s\nwant a search of %s", tc.query, p, tc.index)
		}
	}
}
