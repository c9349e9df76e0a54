package metrics_test

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/internal/testdb"
	"github.com/ctcgw/gatewayd/metrics"
)

// sample is one series of a scrape: a counter's or gauge's value, or a
// histogram's count and sum.
type sample struct {
	value, count, sum float64
}

// scrape gathers m's registry into "name{label=value,…}" → sample, the
// labels in name order as Prometheus writes them.
func scrape(t *testing.T, m *metrics.Metrics) map[string]sample {
	t.Helper()
	families, err := m.Registry.Gather()
	require.NoError(t, err)
	out := map[string]sample{}
	for _, f := range families {
		for _, s := range f.GetMetric() {
			var labels []string
			for _, l := range s.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(labels)
			key := f.GetName()
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			var v sample
			switch {
			case s.GetCounter() != nil:
				v.value = s.GetCounter().GetValue()
			case s.GetGauge() != nil:
				v.value = s.GetGauge().GetValue()
			case s.GetHistogram() != nil:
				v.count, v.sum = float64(s.GetHistogram().GetSampleCount()), s.GetHistogram().GetSampleSum()
			}
			out[key] = v
		}
	}
	return out
}

// The per-state gauges follow a gateway through its states and drop it
// when it is removed; gatewayd_gateway_state_changes_total{to} counts each
// state entered, by the state entered (API.md §9), never the one left.
func TestStateGaugesAndChanges(t *testing.T) {
	m := metrics.New()
	path := []gatewayd.State{"", gatewayd.StateConnecting, gatewayd.StateConnected, gatewayd.StateAuthenticated,
		gatewayd.StateBackoff, gatewayd.StateConnecting, gatewayd.StateConnected, gatewayd.StateAuthFailed}
	for i := 1; i < len(path); i++ {
		m.GatewayState(path[i-1], path[i])
	}
	got := scrape(t, m)
	for _, s := range gatewayd.States {
		want := 0.0
		if s == gatewayd.StateAuthFailed {
			want = 1
		}
		assert.Equal(t, want, got[`gatewayd_gateways{state=`+string(s)+`}`].value, "gatewayd_gateways{state=%q}", s)
	}
	entered := map[gatewayd.State]float64{gatewayd.StateConnecting: 2, gatewayd.StateConnected: 2,
		gatewayd.StateAuthenticated: 1, gatewayd.StateBackoff: 1, gatewayd.StateAuthFailed: 1}
	for _, s := range gatewayd.States {
		assert.Equal(t, entered[s], got[`gatewayd_gateway_state_changes_total{to=`+string(s)+`}`].value,
			"gatewayd_gateway_state_changes_total{to=%q}", s)
	}

	m.GatewayState(gatewayd.StateAuthFailed, "") // removed
	got = scrape(t, m)
	for _, s := range gatewayd.States {
		assert.Zero(t, got[`gatewayd_gateways{state=`+string(s)+`}`].value, "a removed gateway counts nowhere: %s", s)
	}
	assert.Equal(t, 1.0, got[`gatewayd_gateway_state_changes_total{to=AUTH_FAILED}`].value, "a removal enters no state")
}

// gatewayd_dials_total{result} counts dials by result, ok or error, and
// gatewayd_dial_seconds observes each dial's duration in seconds.
func TestDialsByResultAndSeconds(t *testing.T) {
	m := metrics.New()
	m.Dialed(true, 2*time.Millisecond)
	m.Dialed(true, 3*time.Millisecond)
	m.Dialed(false, 1500*time.Millisecond)
	got := scrape(t, m)
	assert.Equal(t, 2.0, got[`gatewayd_dials_total{result=ok}`].value)
	assert.Equal(t, 1.0, got[`gatewayd_dials_total{result=error}`].value)
	h := got[`gatewayd_dial_seconds`]
	assert.Equal(t, 3.0, h.count, "every dial is observed")
	assert.InDelta(t, 1.505, h.sum, 1e-9, "in seconds")
}

// gatewayd_logins_total{result} has its three results (the help names
// them) from the start, so a rate or an alert on refusals works before the
// first refusal; each answer counts under its own result.
func TestLoginResultsStartAtZero(t *testing.T) {
	m := metrics.New()
	got := scrape(t, m)
	for _, res := range []string{"accepted", "refused", "timeout"} {
		v, ok := got[`gatewayd_logins_total{result=`+res+`}`]
		assert.True(t, ok, "gatewayd_logins_total{result=%q} is exposed before any login", res)
		assert.Zero(t, v.value)
	}
	m.LoginAnswered("refused")
	m.LoginAnswered("accepted")
	m.LoginAnswered("accepted")
	got = scrape(t, m)
	assert.Equal(t, 2.0, got[`gatewayd_logins_total{result=accepted}`].value)
	assert.Equal(t, 1.0, got[`gatewayd_logins_total{result=refused}`].value)
	assert.Zero(t, got[`gatewayd_logins_total{result=timeout}`].value)
}

// gatewayd_readings_total{trigger,status} counts readings that ended, and
// gatewayd_reading_seconds observes each one's time from request to end,
// if it was requested: a pushed reading is counted, not timed.
func TestReadingsByTriggerAndStatusAndSeconds(t *testing.T) {
	m := metrics.New()
	at := time.Date(2026, 11, 29, 5, 32, 54, 0, time.UTC)
	m.ReadingDone(gatewayd.ReadingRef{Trigger: gatewayd.TriggerManual, Status: gatewayd.ReadingComplete,
		RequestedAt: at, CompletedAt: at.Add(2 * time.Second)})
	m.ReadingDone(gatewayd.ReadingRef{Trigger: gatewayd.TriggerScheduled, Status: gatewayd.ReadingFailed,
		RequestedAt: at, CompletedAt: at.Add(500 * time.Millisecond)})
	m.ReadingDone(gatewayd.ReadingRef{Trigger: gatewayd.TriggerGateway, Status: gatewayd.ReadingComplete,
		RequestedAt: at, CompletedAt: at})
	got := scrape(t, m)
	assert.Equal(t, 1.0, got[`gatewayd_readings_total{status=COMPLETE,trigger=MANUAL}`].value)
	assert.Equal(t, 1.0, got[`gatewayd_readings_total{status=FAILED,trigger=SCHEDULED}`].value)
	assert.Equal(t, 1.0, got[`gatewayd_readings_total{status=COMPLETE,trigger=GATEWAY}`].value)
	h := got[`gatewayd_reading_seconds`]
	assert.Equal(t, 2.0, h.count)
	assert.InDelta(t, 2.5, h.sum, 1e-9)
}

// gatewayd_http_requests_total{method,route,status} keeps each status of a
// route apart (the resolved counters are cached per method, route and
// status), and gatewayd_http_request_seconds{method,route} observes every
// request under its route pattern.
func TestHTTPRequestsByMethodRouteAndStatus(t *testing.T) {
	m := metrics.New()
	m.HTTPRequest("GET", "/api/gateways/:id", 200, 10*time.Millisecond)
	m.HTTPRequest("GET", "/api/gateways/:id", 404, 20*time.Millisecond)
	m.HTTPRequest("GET", "/api/gateways/:id", 200, 30*time.Millisecond)
	m.HTTPRequest("POST", "/api/gateways", 201, 40*time.Millisecond)
	got := scrape(t, m)
	assert.Equal(t, 2.0, got[`gatewayd_http_requests_total{method=GET,route=/api/gateways/:id,status=200}`].value)
	assert.Equal(t, 1.0, got[`gatewayd_http_requests_total{method=GET,route=/api/gateways/:id,status=404}`].value)
	assert.Equal(t, 1.0, got[`gatewayd_http_requests_total{method=POST,route=/api/gateways,status=201}`].value)
	h := got[`gatewayd_http_request_seconds{method=GET,route=/api/gateways/:id}`]
	assert.Equal(t, 3.0, h.count)
	assert.InDelta(t, 0.06, h.sum, 1e-9)
	assert.Equal(t, 1.0, got[`gatewayd_http_request_seconds{method=POST,route=/api/gateways}`].count)
}

// Restarts and flood cut-offs count one each.
func TestRestartsAndFloodCutOffsCount(t *testing.T) {
	m := metrics.New()
	m.ActorRestarted()
	m.FloodCutOff()
	m.FloodCutOff()
	got := scrape(t, m)
	assert.Equal(t, 1.0, got[`gatewayd_actor_restarts_total`].value)
	assert.Equal(t, 2.0, got[`gatewayd_flood_cutoffs_total`].value)
}

// The event stream's gauges read what the broker says at scrape time,
// each from its own source.
func TestEventStreamMetricsReadTheBroker(t *testing.T) {
	m := metrics.New()
	subscribers, published, overflows := 3, uint64(5), uint64(7)
	m.WatchEvents(func() int { return subscribers }, func() uint64 { return published }, func() uint64 { return overflows })
	got := scrape(t, m)
	assert.Equal(t, 3.0, got[`gatewayd_event_subscribers`].value)
	assert.Equal(t, 5.0, got[`gatewayd_events_published_total`].value)
	assert.Equal(t, 7.0, got[`gatewayd_event_overflows_total`].value)
	subscribers, published = 1, 9
	got = scrape(t, m)
	assert.Equal(t, 1.0, got[`gatewayd_event_subscribers`].value, "read at scrape time")
	assert.Equal(t, 9.0, got[`gatewayd_events_published_total`].value)
}

// The database pool's gauges tell the connections in use from the idle
// ones, read at scrape time.
func TestPoolGaugesReadThePool(t *testing.T) {
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(testdb.BaseURL())
	require.NoError(t, err)
	cfg.MaxConns, cfg.MinConns = 4, 0
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	defer pool.Close()
	m := metrics.New()
	m.WatchPool(pool)

	held, err := pool.Acquire(ctx)
	require.NoError(t, err)
	spare, err := pool.Acquire(ctx)
	require.NoError(t, err)
	spare.Release() // open and idle
	got := scrape(t, m)
	assert.Equal(t, 4.0, got[`gatewayd_db_pool_max_conns`].value)
	assert.Equal(t, 2.0, got[`gatewayd_db_pool_total_conns`].value)
	assert.Equal(t, 1.0, got[`gatewayd_db_pool_acquired_conns`].value)
	assert.Equal(t, 1.0, got[`gatewayd_db_pool_idle_conns`].value)
	assert.Equal(t, 2.0, got[`gatewayd_db_pool_acquires_total`].value)

	held.Release()
	got = scrape(t, m)
	assert.Zero(t, got[`gatewayd_db_pool_acquired_conns`].value, "read at scrape time")
	assert.Equal(t, 2.0, got[`gatewayd_db_pool_idle_conns`].value)
}
