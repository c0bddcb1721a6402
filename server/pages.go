package server

import "net/http"

// Pages are browser pages served on the public listener next to the API
// (package web serves sessiond's own). They get the listener's
// protections: the cross-origin check of state changes, the recover, and
// the security headers of every answer, which are set before they run so a
// page may replace one (its own Content-Security-Policy, say).
type Pages interface {
	http.Handler
	// Patterns are the ServeMux patterns the pages serve, like
	// "GET /login" or "GET /static/"; none may overlap an API route.
	Patterns() []string
}

// SetPages mounts p on the public listener. Call it before Public; nil (the
// default) serves no pages. The pages are not part of Routes: they are not
// API and not in the OpenAPI file.
func (s *Server) SetPages(p Pages) { s.pages = p }

func (s *Server) mountPages(mux *http.ServeMux) {
	if s.pages == nil {
		return
	}
	for _, pattern := range s.pages.Patterns() {
		mux.Handle(pattern, s.instrument(pattern, s.pages))
	}
}
