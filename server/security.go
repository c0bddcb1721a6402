package server

import (
	"net/http"
	"net/netip"
	"strings"

	"github.com/sessiond/sessiond/httperror"
	"github.com/sessiond/sessiond/sessionhttp"
)

// common wraps a listener's handler: security headers on every answer and
// a recover that turns a panic into a 500 without details.
func (s *Server) common(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Shared, never-modified value slices under canonical keys: the
		// same headers as Header.Set, without an allocation each.
		hd := w.Header()
		hd["X-Content-Type-Options"] = hdrNosniff
		hd["X-Frame-Options"] = hdrDeny
		hd["Referrer-Policy"] = hdrNoReferrer
		hd["Content-Security-Policy"] = hdrCSP
		hd["Cross-Origin-Resource-Policy"] = hdrCORP
		if s.cfg.HSTS {
			hd["Strict-Transport-Security"] = hdrHSTS
		}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.ErrorContext(r.Context(), "handler panic", "route", r.Pattern, "panic", v)
				s.writeError(w, r, httperror.InternalError)
			}
		}()
		h.ServeHTTP(w, r)
	})
}

var (
	hdrNosniff    = []string{"nosniff"}
	hdrDeny       = []string{"DENY"}
	hdrNoReferrer = []string{"no-referrer"}
	hdrCSP        = []string{"default-src 'none'; frame-ancestors 'none'"}
	hdrCORP       = []string{"same-origin"}
	hdrHSTS       = []string{"max-age=63072000; includeSubDomains"}
)

// notFound is registered as "/" on each mux: it answers what the mux would
// answer for an unknown route, 404 or 405 with Allow, but as the contract's
// JSON error. It runs only for requests no route matched, so the probing
// below costs nothing on the routes themselves.
func (s *Server) notFound(mux *http.ServeMux) http.HandlerFunc {
	methods := []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}
	return func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range methods {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/" {
				allow = append(allow, m)
				if m == http.MethodGet {
					allow = append(allow, http.MethodHead)
				}
			}
		}
		if len(allow) == 0 {
			s.writeError(w, r, httperror.NotFound)
			return
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		s.writeError(w, r, httperror.MethodNotAllowed)
	}
}

// crossOrigin refuses cross-origin state changes (Sec-Fetch-Site or an
// Origin that is neither ours nor trusted), the CSRF defence for cookie
// authentication. Requests that authenticate with a bearer token are
// exempt: a browser never attaches one on its own, so no other site can
// forge them, and such a request is never authenticated by its cookies
// (presentedToken). Any other Authorization header (Basic, say) is no
// exemption: a cross-site form cannot set it, but a credentialed fetch
// from an allowed CORS origin of another service could.
func (s *Server) crossOrigin(next http.Handler) http.Handler {
	protected := s.cop.Handler(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := sessionhttp.BearerToken(r.Header.Get("Authorization")); ok {
			next.ServeHTTP(w, r)
			return
		}
		protected.ServeHTTP(w, r)
	})
}

// clientAddr is the address of the client: the peer, or, when the peer is
// a trusted proxy, what it said (sessionhttp.ClientAddr).
func (s *Server) clientAddr(r *http.Request) netip.Addr {
	return sessionhttp.ClientAddr(r, s.cfg.TrustedProxies)
}
