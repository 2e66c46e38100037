package main

import (
	"log/slog"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gatehouse-id/gatehouse/internal/httpobs"
	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
)

// httpMetrics count requests by route pattern, method and status. Every
// label has a bounded set of values: the route is a registered pattern
// (httpobs) or "unmatched", never the raw path; unusual methods are "other".
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics() *httpMetrics {
	return &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_http_requests_total",
			Help: "HTTP requests by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gatehouse_http_request_duration_seconds",
			Help:    "Time from the request's arrival to the handler's return, by route pattern and method.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "method"}),
	}
}

func (m *httpMetrics) Describe(ch chan<- *prometheus.Desc) {
	m.requests.Describe(ch)
	m.duration.Describe(ch)
}

func (m *httpMetrics) Collect(ch chan<- prometheus.Metric) {
	m.requests.Collect(ch)
	m.duration.Collect(ch)
}

// routeUnmatched is the route label of a request no route pattern served
// (a 404, a CORS preflight answered before routing…).
const routeUnmatched = "unmatched"

func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodHead, http.MethodOptions,
		http.MethodPut, http.MethodDelete, http.MethodPatch:
		return m
	}
	return "other"
}

// quietRoutes are logged at debug level: probes and scrapes every few
// seconds would drown the log.
var quietRoutes = map[string]bool{"/healthz": true, "/readyz": true, "/ready": true, "/metrics": true}

// observe is the one middleware behind the access log and the request
// metrics, so that the route, status and size are captured once. It puts an
// httpobs.Record in the context, which the inner routers fill with their
// route pattern (and op with the client_id); a route left unreported falls
// back to next's own ServeMux pattern, and to "unmatched" when that is the
// catch-all "/". It must run inside requestid's middleware, whose ID the log
// line carries. m may be nil (no metrics).
func observe(log *slog.Logger, m *httpMetrics, trusted []netip.Prefix, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx, rec := httpobs.With(r.Context())
		r = r.WithContext(ctx)
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		elapsed := time.Since(start)

		route := rec.Route()
		if route == "" && r.Pattern != "/" { // ServeMux set r.Pattern while routing
			route = r.Pattern
		}
		if route == "" {
			route = routeUnmatched
		}
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		method := methodLabel(r.Method)
		if m != nil {
			m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
			m.duration.WithLabelValues(route, method).Observe(elapsed.Seconds())
		}
		level := slog.LevelInfo
		if quietRoutes[route] {
			level = slog.LevelDebug
		}
		if !log.Enabled(ctx, level) {
			return
		}
		attrs := []slog.Attr{
			slog.String("method", method),
			slog.String("route", route),
			slog.Int("status", status),
			slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
			slog.Int64("bytes", sw.bytes),
			slog.String("client_ip", clientIPString(r, trusted)),
		}
		if id := rec.ClientID(); id != "" {
			attrs = append(attrs, slog.String("client_id", id))
		}
		log.LogAttrs(ctx, level, "http request", attrs...)
	})
}

func clientIPString(r *http.Request, trusted []netip.Prefix) string {
	if a := ratelimit.ClientIP(r, trusted); a.IsValid() {
		return a.String()
	}
	return r.RemoteAddr // not an IP (a Unix socket, a test pipe)
}

// statusWriter records the status and the body bytes written.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 { // 1xx are interim; the final status follows
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection's writer
// (Flush, deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// metricsHandler serves the registry at /metrics and, when enabled, Go's
// profiles at /debug/pprof/ (never on the public listener: profiles reveal
// memory contents and cost CPU).
func metricsHandler(reg *prometheus.Registry, log *slog.Logger, withPprof bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError,
	}))
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		// No /debug/pprof/cmdline: the command line may hold --secret or
		// --database-url with its password.
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// newRegistry is the process's private registry (the global default one is
// not used): the Go runtime and process collectors plus every collector
// given (each package declares its own).
func newRegistry(cs ...prometheus.Collector) (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	cs = append(cs, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return reg, nil
}
