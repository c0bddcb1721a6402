package server

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sessiond/sessiond/httperror"

	"github.com/sessiond/sessiond/audit"
)

// eventView is an audit event in the admin API.
type eventView struct {
	ID        string         `json:"id"`
	UserID    string         `json:"user_id"`
	Type      string         `json:"type"`
	Time      time.Time      `json:"time"`
	SessionID string         `json:"session_id,omitempty"`
	IP        string         `json:"ip,omitempty"`
	Browser   string         `json:"browser,omitempty"`
	OS        string         `json:"os,omitempty"`
	Data      map[string]any `json:"data"`
}

func viewEvent(e audit.Event) eventView {
	data := e.Data
	if data == nil {
		data = map[string]any{}
	}
	return eventView{ID: e.ID, UserID: e.UserID, Type: e.Type, Time: e.Time.UTC(), SessionID: e.SessionID,
		IP: e.IP, Browser: e.Browser, OS: e.OS, Data: data}
}

// adminListEvents: GET /admin/v1/users/{id}/events?type=&since=&until=&limit=.
// The trail outlives the account, so an unknown or deleted user is not a
// 404: their events, if any are left, are listed.
func (s *Server) adminListEvents(w http.ResponseWriter, r *http.Request) {
	if s.audit == nil {
		s.writeError(w, r, httperror.AuditDisabled)
		return
	}
	f, err := parseEventFilter(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	events, err := s.audit.List(r.Context(), r.PathValue("id"), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]eventView, len(events))
	for i, e := range events {
		out[i] = viewEvent(e)
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": out})
}

// parseEventFilter reads type (repeated or comma-separated), since and
// until (RFC 3339) and limit (1 to audit.MaxLimit, default
// audit.DefaultLimit).
func parseEventFilter(r *http.Request) (audit.Filter, error) {
	q := r.URL.Query()
	var f audit.Filter
	for _, v := range q["type"] {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t == "" {
				continue
			}
			if !audit.KnownType(t) {
				return f, httperror.InvalidField("unknown event type " + strconv.Quote(t))
			}
			f.Types = append(f.Types, t)
		}
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return f, httperror.InvalidField(p.name + " must be an RFC 3339 time")
			}
			*p.dst = t
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > audit.MaxLimit {
			return f, httperror.InvalidField("limit must be a whole number from 1 to " + strconv.Itoa(audit.MaxLimit))
		}
		f.Limit = n
	}
	return f, nil
}
