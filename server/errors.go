package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/sessiond/sessiond/httperror"
)

// writeError answers with the JSON error body of err as package httperror
// maps it, logging internal errors (never a request body, token or
// password: only err itself).
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	ae := httperror.From(err, s.flows.Now())
	if ae.Internal() {
		s.log.ErrorContext(r.Context(), "request failed", "route", r.Pattern, "status", ae.Status, "err", err)
	} else if ae.Status == http.StatusTooManyRequests {
		s.log.InfoContext(r.Context(), "request refused", "route", r.Pattern, "code", ae.Code, "ip", s.clientAddr(r).String())
	}
	if ae.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(retrySeconds(ae.RetryAfter)))
	}
	writeErrorBody(w, ae.Status, ae.Code, ae.Message)
}

func retrySeconds(d time.Duration) int {
	return max(1, int((d+time.Second-1)/time.Second))
}
