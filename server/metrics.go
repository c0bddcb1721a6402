package server

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the HTTP layer's Prometheus series, all prefixed sessiond_;
// the flows bring their own (flows.Flows.Collectors).
type metrics struct {
	reg      *prometheus.Registry
	duration *prometheus.HistogramVec
}

// NewRegistry returns a registry with the Go runtime and process
// collectors, renamed into the sessiond_ namespace (sessiond_go_goroutines,
// sessiond_process_resident_memory_bytes) so every series has the prefix.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	prometheus.WrapRegistererWithPrefix("sessiond_", reg).MustRegister(
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		reg: reg,
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sessiond_http_request_duration_seconds",
			Help:    "HTTP request latency by route and status code.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}},
			[]string{"route", "code"}),
	}
	reg.MustRegister(m.duration)
	return m
}

func (m *metrics) handler() http.Handler {
	// The handler's own error counter goes into the registry too, in the
	// sessiond_ namespace like every other series.
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: prometheus.WrapRegistererWithPrefix("sessiond_", m.reg)})
}

// statusWriter remembers the status code for the latency histogram.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// instrument records the latency of one route. The observers of the
// route's common status codes are looked up once, not per request, and the
// status-capturing writers are pooled: this wraps every request.
func (s *Server) instrument(route string, h http.Handler) http.Handler {
	var common [6]prometheus.Observer // 200, 201, 204, 400, 401, 404
	codes := [...]int{200, 201, 204, 400, 401, 404}
	for i, c := range codes {
		common[i] = s.metrics.duration.WithLabelValues(route, strconv.Itoa(c))
	}
	observer := func(code int) prometheus.Observer {
		for i, c := range codes {
			if c == code {
				return common[i]
			}
		}
		return s.metrics.duration.WithLabelValues(route, strconv.Itoa(code))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := statusWriters.Get().(*statusWriter)
		sw.ResponseWriter, sw.code = w, 0
		h.ServeHTTP(sw, r)
		code := sw.code
		if code == 0 {
			code = http.StatusOK
		}
		sw.ResponseWriter = nil
		statusWriters.Put(sw)
		observer(code).Observe(time.Since(start).Seconds())
	})
}

var statusWriters = sync.Pool{New: func() any { return new(statusWriter) }}
