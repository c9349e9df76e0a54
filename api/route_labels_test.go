package api_test

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/api"
	"github.com/ctcgw/gatewayd/events"
	"github.com/ctcgw/gatewayd/metrics"
	"github.com/ctcgw/gatewayd/telemetry"
)

// httpSeries gathers gatewayd_http_requests_total as "METHOD ROUTE STATUS" → count.
func httpSeries(t *testing.T, m *metrics.Metrics) map[string]float64 {
	t.Helper()
	families, err := m.Registry.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "gatewayd_http_requests_total" {
			continue
		}
		for _, s := range f.GetMetric() {
			l := map[string]string{}
			for _, p := range s.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			got[l["method"]+" "+l["route"]+" "+l["status"]] += s.GetCounter().GetValue()
		}
	}
	return got
}

// A request a middleware answered before its route (a body that is not
// JSON: 415; a CORS preflight: 204) is counted under its route's pattern
// (API.md §9: "route is the route pattern"), not under "(unmatched)",
// which is for a path no route matches; the same 415 on such a path is.
// (Found by an audit, helper 1.)
func TestMiddlewareAnswersKeepTheirRoutePattern(t *testing.T) {
	m := metrics.New()
	e := newEnv(t, api.Options{Telemetry: &telemetry.Observer{Metrics: m, Events: events.NewBroker(10)}})
	r := e.do("POST", "/api/organizations", "name=x", "Content-Type", "text/plain")
	require.Equal(t, 415, r.status, string(r.body))
	r = e.do("POST", "/api/nowhere", "name=x", "Content-Type", "text/plain")
	require.Equal(t, 415, r.status, string(r.body))
	preflight := func(path string) {
		r := e.do("OPTIONS", path, nil, "Origin", "https://ui.example", "Access-Control-Request-Method", "PUT")
		require.Equal(t, 204, r.status, string(r.body))
	}
	preflight("/api/organizations")
	preflight("/api/gateways/" + uuid.NewString())
	preflight("/api/nowhere")

	assert.Equal(t, map[string]float64{
		"POST /api/organizations 415":    1,
		"POST (unmatched) 415":           1,
		"OPTIONS /api/organizations 204": 1,
		"OPTIONS /api/gateways/:id 204":  1,
		"OPTIONS (unmatched) 204":        1,
	}, httpSeries(t, m))
}

// README (Observability): "a path no route matches (404, or a router's
// 405) under route="(unmatched)", a 415 or a CORS preflight under the
// pattern of the route its path matches". An OPTIONS that is no preflight
// (no Origin) is the router's 405, as a PATCH is, but it was counted under
// the route's pattern: allowTable.route took every OPTIONS for a
// preflight. (Found by an audit, helper 8, whose test this is.)
func TestPlainOptionsIsARoutersMethodNotAllowed(t *testing.T) {
	m := metrics.New()
	e := newEnv(t, api.Options{Telemetry: &telemetry.Observer{Metrics: m, Events: events.NewBroker(10)}})
	id := uuid.NewString()
	require.Equal(t, 405, e.do("PATCH", "/api/gateways/"+id, nil).status)
	require.Equal(t, 405, e.do("OPTIONS", "/api/gateways/"+id, nil).status)
	assert.Equal(t, map[string]float64{
		"PATCH (unmatched) 405":   1,
		"OPTIONS (unmatched) 405": 1,
	}, httpSeries(t, m))
}
