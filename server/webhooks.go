package server

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/sessiond/sessiond/httperror"

	"github.com/sessiond/sessiond/webhook"
)

// deliveryView is an event of the lifecycle webhooks' outbox in the admin
// API.
type deliveryView struct {
	ID            string          `json:"id"`
	Type          string          `json:"type"`
	Time          time.Time       `json:"time"`
	Data          json.RawMessage `json:"data"`
	Status        string          `json:"status"`
	Attempts      int             `json:"attempts"`
	NextAttemptAt *time.Time      `json:"next_attempt_at,omitempty"`
	DeliveredAt   *time.Time      `json:"delivered_at,omitempty"`
	DeadAt        *time.Time      `json:"dead_at,omitempty"`
	LastError     string          `json:"last_error,omitempty"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// adminWebhookDeliveries: GET /admin/v1/webhooks/deliveries?status=&limit=,
// the outbox of lifecycle webhooks, the newest event first.
func (s *Server) adminWebhookDeliveries(w http.ResponseWriter, r *http.Request) {
	if s.webhooks == nil {
		s.writeError(w, r, httperror.WebhooksDisabled)
		return
	}
	q := r.URL.Query()
	f := webhook.Filter{Status: q.Get("status")}
	switch f.Status {
	case "", webhook.StatusPending, webhook.StatusDelivered, webhook.StatusDead:
	default:
		s.writeError(w, r, httperror.InvalidField(`status must be "pending", "delivered" or "dead"`))
		return
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			s.writeError(w, r, httperror.InvalidField("limit must be a whole number from 1 to 1000"))
			return
		}
		f.Limit = n
	}
	ds, err := s.webhooks.Outbox().WebhookDeliveries(r.Context(), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]deliveryView, len(ds))
	for i, d := range ds {
		data := d.Data
		if len(data) == 0 {
			data = json.RawMessage("{}")
		}
		out[i] = deliveryView{ID: d.ID, Type: d.Type, Time: d.Time.UTC(), Data: data, Status: d.Status, Attempts: d.Attempts,
			NextAttemptAt: optTime(d.NextAttemptAt), DeliveredAt: optTime(d.DeliveredAt), DeadAt: optTime(d.DeadAt), LastError: d.LastError}
	}
	writeJSON(w, http.StatusOK, map[string]any{"deliveries": out})
}
