// Package metrics owns gatewayd's Prometheus metrics: their names, their
// labels (never a gateway id), and where they are counted. Everything is
// counted where it happens, with counters resolved once, so a hot path
// pays an atomic add and a scrape asks no actor anything.
package metrics

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ctcgw/gatewayd"
)

// Metrics is the process's registry and its instruments.
type Metrics struct {
	Registry *prometheus.Registry

	gateways     map[gatewayd.State]prometheus.Gauge
	stateChanges map[gatewayd.State]prometheus.Counter
	dialsOK      prometheus.Counter
	dialsFailed  prometheus.Counter
	dialSeconds  prometheus.Histogram
	logins       *prometheus.CounterVec
	restarts     prometheus.Counter
	floods       prometheus.Counter
	readings     *prometheus.CounterVec
	readingSecs  prometheus.Histogram
	httpRequests *prometheus.CounterVec
	httpSeconds  *prometheus.HistogramVec
	refusedShare prometheus.Counter // connections over a client's share (429)
	refusedFull  prometheus.Counter // connections past API_MAX_CONNECTIONS (503)

	// Resolved label sets, so a request pays a map read, not a hash of
	// its labels under the vector's lock.
	httpCounters sync.Map // httpKey → prometheus.Counter
	httpTimers   sync.Map // routeKey → prometheus.Observer
}

// New registers every instrument, with Go's and the process's collectors.
func New() *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := factory{r}
	m := &Metrics{Registry: r, gateways: map[gatewayd.State]prometheus.Gauge{}, stateChanges: map[gatewayd.State]prometheus.Counter{}}
	gauges := f.gaugeVec("gatewayd_gateways", "Gateways by connection state.", "state")
	changes := f.counterVec("gatewayd_gateway_state_changes_total", "Gateway state changes, by the state entered.", "to")
	for _, s := range gatewayd.States {
		m.gateways[s] = gauges.WithLabelValues(string(s))
		m.stateChanges[s] = changes.WithLabelValues(string(s))
	}
	dials := f.counterVec("gatewayd_dials_total", "WebSocket dials to gateways, by result.", "result")
	m.dialsOK, m.dialsFailed = dials.WithLabelValues("ok"), dials.WithLabelValues("error")
	m.dialSeconds = f.histogram("gatewayd_dial_seconds", "Time to dial a gateway (TCP and WebSocket handshake).",
		prometheus.ExponentialBuckets(0.001, 4, 8))
	m.logins = f.counterVec("gatewayd_logins_total", "Answers to POST_LOGIN, by result (accepted, refused, timeout).", "result")
	for _, res := range []string{"accepted", "refused", "timeout"} {
		m.logins.WithLabelValues(res)
	}
	m.restarts = f.counter("gatewayd_actor_restarts_total", "Gateway actors restarted by the supervisor after a crash.")
	m.floods = f.counter("gatewayd_flood_cutoffs_total", "Connections cut off because the gateway flooded them.")
	m.readings = f.counterVec("gatewayd_readings_total", "Readings that ended, by trigger and final status.", "trigger", "status")
	// Every series from the start, as the logins': a rate or an absent()
	// alert works before the first reading ends (found by an audit,
	// helper 6: the family was missing from /metrics until then).
	for _, tr := range []gatewayd.Trigger{gatewayd.TriggerManual, gatewayd.TriggerScheduled, gatewayd.TriggerGateway} {
		for _, st := range []gatewayd.ReadingStatus{gatewayd.ReadingComplete, gatewayd.ReadingFailed} {
			m.readings.WithLabelValues(string(tr), string(st))
		}
	}
	m.readingSecs = f.histogram("gatewayd_reading_seconds",
		"Time from a reading's request to its samples' arrival, or to its failure; readings a gateway pushed unasked are not observed.",
		prometheus.ExponentialBuckets(0.05, 2, 12))
	m.httpRequests = f.counterVec("gatewayd_http_requests_total", "HTTP requests, by method, route pattern and status.",
		"method", "route", "status")
	m.httpSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "gatewayd_http_request_seconds",
		Help: "HTTP request durations, by method and route pattern.", Buckets: prometheus.ExponentialBuckets(0.0005, 4, 8)},
		[]string{"method", "route"})
	r.MustRegister(m.httpSeconds)
	// Refused before fasthttp sees them, these are not requests (no
	// method or route is known): counted on their own, from the start.
	refused := f.counterVec("gatewayd_http_connections_refused_total",
		"HTTP connections answered and closed unserved, by reason: client_share (429, API_MAX_CONNECTIONS_PER_CLIENT) or max_connections (503, API_MAX_CONNECTIONS).",
		"reason")
	m.refusedShare, m.refusedFull = refused.WithLabelValues("client_share"), refused.WithLabelValues("max_connections")
	return m
}

// ConnectionRefused counts a connection refused before it was served:
// past API_MAX_CONNECTIONS (full) or over its client's share. Safe on a
// nil Metrics.
func (m *Metrics) ConnectionRefused(full bool) {
	switch {
	case m == nil:
	case full:
		m.refusedFull.Inc()
	default:
		m.refusedShare.Inc()
	}
}

type factory struct{ r *prometheus.Registry }

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	f.r.MustRegister(c)
	return c
}

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	f.r.MustRegister(c)
	return c
}

func (f factory) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	f.r.MustRegister(g)
	return g
}

func (f factory) histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
	f.r.MustRegister(h)
	return h
}

// GatewayState moves a gateway between the per-state gauges.
func (m *Metrics) GatewayState(from, to gatewayd.State) {
	if g := m.gateways[from]; g != nil {
		g.Dec()
	}
	if g := m.gateways[to]; g != nil {
		g.Inc()
		m.stateChanges[to].Inc()
	}
}

// Dialed counts a dial and its duration.
func (m *Metrics) Dialed(ok bool, took time.Duration) {
	if ok {
		m.dialsOK.Inc()
	} else {
		m.dialsFailed.Inc()
	}
	m.dialSeconds.Observe(took.Seconds())
}

// LoginAnswered counts an answer to POST_LOGIN.
func (m *Metrics) LoginAnswered(result string) { m.logins.WithLabelValues(result).Inc() }

// ActorRestarted counts a restart.
func (m *Metrics) ActorRestarted() { m.restarts.Inc() }

// FloodCutOff counts a connection cut off for flooding.
func (m *Metrics) FloodCutOff() { m.floods.Inc() }

// ReadingDone counts a reading that ended and, if someone asked for it,
// how long it took. A reading a gateway pushed was asked by nobody: its
// requested_at is its arrival, and its 0 s pulled every quantile down
// where gateways push often (found by an audit, helper 2).
func (m *Metrics) ReadingDone(r gatewayd.ReadingRef) {
	m.readings.WithLabelValues(string(r.Trigger), string(r.Status)).Inc()
	if r.Trigger != gatewayd.TriggerGateway {
		m.readingSecs.Observe(r.CompletedAt.Sub(r.RequestedAt).Seconds())
	}
}

type httpKey struct {
	method, route string
	status        int
}

type routeKey struct{ method, route string }

// HTTPRequest counts a request by its route pattern (never its path).
func (m *Metrics) HTTPRequest(method, route string, status int, took time.Duration) {
	k := httpKey{method, route, status}
	c, ok := m.httpCounters.Load(k)
	if !ok {
		// The strings may be views into a request buffer that the server
		// reuses (Fiber's zero-allocation mode): what is kept is copied.
		method, route = strings.Clone(method), strings.Clone(route)
		k = httpKey{method, route, status}
		c, _ = m.httpCounters.LoadOrStore(k, m.httpRequests.WithLabelValues(method, route, strconv.Itoa(status)))
	}
	c.(prometheus.Counter).Inc()
	rk := routeKey{method, route}
	o, ok := m.httpTimers.Load(rk)
	if !ok {
		rk = routeKey{strings.Clone(method), strings.Clone(route)}
		o, _ = m.httpTimers.LoadOrStore(rk, m.httpSeconds.WithLabelValues(rk.method, rk.route))
	}
	o.(prometheus.Observer).Observe(took.Seconds())
}

// WatchPool exposes the database pool's state, read at scrape time.
func (m *Metrics) WatchPool(pool *pgxpool.Pool) {
	stat := func(f func(*pgxpool.Stat) float64) func() float64 {
		return func() float64 { return f(pool.Stat()) }
	}
	for _, g := range []struct {
		name, help string
		value      func(*pgxpool.Stat) float64
	}{
		{"gatewayd_db_pool_max_conns", "Most database connections the pool opens.", func(s *pgxpool.Stat) float64 { return float64(s.MaxConns()) }},
		{"gatewayd_db_pool_total_conns", "Database connections open now.", func(s *pgxpool.Stat) float64 { return float64(s.TotalConns()) }},
		{"gatewayd_db_pool_acquired_conns", "Database connections in use now.", func(s *pgxpool.Stat) float64 { return float64(s.AcquiredConns()) }},
		{"gatewayd_db_pool_idle_conns", "Idle database connections now.", func(s *pgxpool.Stat) float64 { return float64(s.IdleConns()) }},
	} {
		m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: g.name, Help: g.help}, stat(g.value)))
	}
	for _, c := range []struct {
		name, help string
		value      func(*pgxpool.Stat) float64
	}{
		{"gatewayd_db_pool_acquires_total", "Connections taken from the pool.", func(s *pgxpool.Stat) float64 { return float64(s.AcquireCount()) }},
		{"gatewayd_db_pool_empty_acquires_total", "Takes that had to wait for a connection.", func(s *pgxpool.Stat) float64 { return float64(s.EmptyAcquireCount()) }},
		{"gatewayd_db_pool_acquire_seconds_total", "Time spent waiting for connections.", func(s *pgxpool.Stat) float64 { return s.AcquireDuration().Seconds() }},
	} {
		m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help}, stat(c.value)))
	}
}

// WatchEvents exposes the event stream's state, read at scrape time.
func (m *Metrics) WatchEvents(subscribers func() int, published, overflows func() uint64) {
	m.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gatewayd_event_subscribers", Help: "Clients on /api/events now."},
			func() float64 { return float64(subscribers()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "gatewayd_events_published_total", Help: "Events published."},
			func() float64 { return float64(published()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "gatewayd_event_overflows_total",
			Help: "Event subscribers cut off because they fell behind."}, func() float64 { return float64(overflows()) }),
	)
}
