package api_test

// The per-client connection cap's answer and its shutdown (clients.go).
// (Found by an audit, helper 1, whose tests these are.)

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/api"
	"github.com/ctcgw/gatewayd/events"
	"github.com/ctcgw/gatewayd/metrics"
	"github.com/ctcgw/gatewayd/telemetry"
)

// API.md: "Every error has one shape: {"error": {"code", "message",
// "statusCode", ...}}"; "Responses carry ... the usual security headers
// (X-Content-Type-Options, X-Frame-Options, Referrer-Policy,
// Content-Security-Policy…) and an X-Request-Id (echoed when the client
// sent one)". README ("Requests refused before routing"): they "get the
// same error envelope, security headers and X-Request-Id". The 429 of a
// connection over API_MAX_CONNECTIONS_PER_CLIENT had no statusCode, no
// X-Request-Id, and of the security headers only nosniff.
// Would catch: any of those missing from the refusal.
func Test429OverTheShareIsTheErrorEnvelope(t *testing.T) {
	e := newEnv(t, api.Options{MaxConnections: 100, MaxClientConnections: 1})
	addr := e.serve()
	const from = "127.0.0.31"
	_, code := keepAliveFrom(t, from, addr)
	require.Equal(t, 200, code)

	c := rawFrom(t, from, addr)
	_, err := io.WriteString(c, "GET /api/health HTTP/1.1\r\nHost: t\r\nX-Request-Id: mine-1\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var env struct {
		Error map[string]any `json:"error"`
	}
	require.NoError(t, json.Unmarshal(b, &env), "%s", b)
	assert.Equal(t, "TOO_MANY_REQUESTS", env.Error["code"])
	assert.Equal(t, float64(429), env.Error["statusCode"], "API.md's one error shape has statusCode: %s", b)
	assert.Equal(t, "mine-1", resp.Header.Get("X-Request-Id"), "README: refused requests get an X-Request-Id, the client's echoed")
	for h, want := range map[string]string{
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
		"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
	} {
		assert.Equal(t, want, resp.Header.Get(h), "security header %s on the 429", h)
	}
}

// "Does shutdown end with refusal goroutines left behind?" A refusal
// waits up to ~1 s (its request, then the client's close) on a goroutine
// nothing tracks: ShutdownWithTimeout returned with them still running,
// each holding a socket, and the serve loop's end did not wait for them.
// Would catch: refusal goroutines that outlive the app's shutdown.
func TestShutdownLeavesNoRefusalGoroutines(t *testing.T) {
	e := newEnv(t, api.Options{MaxConnections: 100, MaxClientConnections: 1})
	addr, done := e.serveOn("127.0.0.1:0")
	const from = "127.0.0.32"
	_, code := keepAliveFrom(t, from, addr)
	require.Equal(t, 200, code)
	// Over the share, sending nothing: each refusal waits for a request.
	for range 10 {
		rawFrom(t, from, addr)
	}
	require.Eventually(t, func() bool { return api.Refusing(e.app) == 10 }, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, e.app.ShutdownWithTimeout(5*time.Second))
	<-done
	// A refusal's slot is given back as its goroutine's last act: the
	// count of this app's refusal goroutines still running.
	assert.Zero(t, api.Refusing(e.app), "refusal goroutines still running after shutdown")
}

// README (Observability): connections refused before they are served
// are counted in gatewayd_http_connections_refused_total, by reason: the
// 429 over a client's share, the 503 past API_MAX_CONNECTIONS. They are
// not requests (fasthttp never sees them) and were counted nowhere.
// Would catch: a refusal not counted, or counted under the other reason.
func TestRefusedConnectionsAreCounted(t *testing.T) {
	m := metrics.New()
	e := newEnv(t, api.Options{MaxConnections: 2, MaxClientConnections: 1,
		Telemetry: &telemetry.Observer{Metrics: m, Events: events.NewBroker(10), Log: zerolog.Nop()}})
	addr := e.serve()
	refused := func() map[string]float64 {
		families, err := m.Registry.Gather()
		require.NoError(t, err)
		out := map[string]float64{}
		for _, f := range families {
			if f.GetName() != "gatewayd_http_connections_refused_total" {
				continue
			}
			for _, s := range f.GetMetric() {
				out[s.GetLabel()[0].GetValue()] = s.GetCounter().GetValue()
			}
		}
		return out
	}
	assert.Equal(t, map[string]float64{"client_share": 0, "max_connections": 0}, refused(), "both series from the start")

	_, code := keepAliveFrom(t, "127.0.0.33", addr)
	require.Equal(t, 200, code)
	_, code = keepAliveFrom(t, "127.0.0.33", addr)
	require.Equal(t, http.StatusTooManyRequests, code)
	_, code = keepAliveFrom(t, "127.0.0.34", addr) // the second of two connections
	require.Equal(t, 200, code)
	_, code = keepAliveFrom(t, "127.0.0.35", addr)
	require.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, map[string]float64{"client_share": 1, "max_connections": 1}, refused())
}
