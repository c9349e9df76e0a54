package actors_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/events"
)

// stateChangesTo reads gatewayd_gateway_state_changes_total{to}.
func stateChangesTo(t *testing.T, h *actorstest.Harness, to gatewayd.State) float64 {
	t.Helper()
	families, err := h.Telemetry.Metrics.Registry.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != "gatewayd_gateway_state_changes_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "to" && l.GetValue() == string(to) {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// A gateway whose login was refused before a restart comes back
// AUTH_FAILED without being dialed (API.md §4: "no retries until
// url/email/password change or a connect request"). Its gateway.state
// events (API.md §9) and gatewayd_gateway_state_changes_total must then
// not claim it entered CONNECTING ("dialing and WebSocket handshake"):
// it never dialed. (Found by an audit, helper 1, whose tests these are.)
func TestRestoredAuthFailedNeverClaimsCONNECTING(t *testing.T) {
	h := newHarness(t, actorstest.FastConfig())
	g, sg := h.Add("restored-refusal")
	h.WaitState(g.ID, gatewayd.StateAuthenticated, 10*time.Second)
	refusedAndKept(t, h, g.ID, sg)

	id := g.ID
	sub := h.Telemetry.Events.Subscribe(events.Filter{GatewayID: &id}, 0, 1024)
	defer sub.Close()
	connectingBefore := stateChangesTo(t, h, gatewayd.StateConnecting)
	dials := sg.Stats().Accepted

	h.Restart()
	h.WaitSettled(g.ID, gatewayd.StateAuthFailed)
	h.WaitState(g.ID, gatewayd.StateAuthFailed, 10*time.Second)
	require.Equal(t, dials, sg.Stats().Accepted, "not dialed (as TestAuthFailedOutlivesARestart checks)")

	var seen []string
	for e := sub.Next(); e != nil; e = sub.Next() {
		if e.Type != events.TypeGatewayState {
			continue
		}
		var d struct{ From, To *string }
		require.NoError(t, json.Unmarshal(e.Data, &d))
		from := "null"
		if d.From != nil {
			from = *d.From
		}
		seen = append(seen, from+"→"+*d.To)
	}
	t.Logf("gateway.state events after the restart: %v", seen)
	assert.NotContains(t, seen, "null→CONNECTING", "the restored gateway was never dialed")
	assert.NotContains(t, seen, "CONNECTING→AUTH_FAILED", "the restored gateway was never dialed")
	assert.Equal(t, connectingBefore, stateChangesTo(t, h, gatewayd.StateConnecting),
		"gatewayd_gateway_state_changes_total{to=\"CONNECTING\"} counted an entry into CONNECTING that never happened")
}

// Stopping the runtime (shutdown; in serve also the "instance lock lost"
// path, which stops the runtime first while the API and its event streams
// still serve) stops every gateway actor on purpose. None of them crashed,
// so none may be published or counted as FAILED ("the actor crashed more
// than GATEWAY_RESTART_LIMIT times within the window", API.md §4) with
// "gateway actor stopped unexpectedly".
func TestRuntimeShutdownDoesNotReportGatewaysFAILED(t *testing.T) {
	h := newHarness(t, actorstest.FastConfig())
	g, _ := h.Add("stopped-on-purpose")
	h.WaitState(g.ID, gatewayd.StateAuthenticated, 10*time.Second)
	id := g.ID
	sub := h.Telemetry.Events.Subscribe(events.Filter{GatewayID: &id}, 0, 1024)
	defer sub.Close()
	failedBefore := stateChangesTo(t, h, gatewayd.StateFailed)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, h.Runtime.Shutdown(ctx))

	for e := sub.Next(); e != nil; e = sub.Next() {
		if e.Type != events.TypeGatewayState {
			continue
		}
		var d struct {
			To        string  `json:"to"`
			LastError *string `json:"last_error"`
		}
		require.NoError(t, json.Unmarshal(e.Data, &d))
		assert.NotEqual(t, "FAILED", d.To, "a shutdown published %s", e.Data)
	}
	assert.Equal(t, failedBefore, stateChangesTo(t, h, gatewayd.StateFailed),
		"gatewayd_gateway_state_changes_total{to=\"FAILED\"} counted a shutdown as a crash loop")
}

// gauges reads gatewayd_gateways{state}.
func gauges(t *testing.T, h *actorstest.Harness) map[string]float64 {
	t.Helper()
	families, err := h.Telemetry.Metrics.Registry.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() == "gatewayd_gateways" {
			for _, m := range f.GetMetric() {
				out[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

// After the supervisor restarts (supervisor.started: "after a restart of
// the supervisor its children are gone, so it asks for a fresh read to
// bring them back"), gatewayd_gateways{state} (API.md §9, "kept as actors
// change state") and /api/health's gateways.total / authenticated (from
// Runtime.Counts) must again match the gateways the runtime has: the
// statuses it lists.
func TestSupervisorRestartKeepsGaugesAndCounts(t *testing.T) {
	h := newHarness(t, actorstest.FastConfig())
	gws, _ := h.AddAuthenticated("sup-restart", 2)
	// The counts move when the supervisor hears of a state change, which
	// can come after a status read off the actor says AUTHENTICATED.
	counted := func() bool {
		total, auth := h.Runtime.Counts()
		return total == 2 && auth == 2
	}
	eventually(t, counted, 10*time.Second, "Runtime.Counts: 2 gateways, 2 authenticated")

	actors.PanicSupervisor(h.Runtime)
	// Back: both gateways listed and AUTHENTICATED again.
	eventually(t, func() bool {
		list, err := h.Runtime.Statuses(context.Background(), nil)
		if err != nil || len(list) != 2 {
			return false
		}
		for _, st := range list {
			if st.State != gatewayd.StateAuthenticated {
				return false
			}
		}
		return true
	}, 15*time.Second, "both gateways back and AUTHENTICATED after the supervisor restarted")
	for _, g := range gws {
		h.WaitState(g.ID, gatewayd.StateAuthenticated, 10*time.Second)
	}
	eventually(t, counted, 10*time.Second, "Runtime.Counts (health's total, authenticated) after the restart")
	total, auth := h.Runtime.Counts()
	assert.Equal(t, [2]int{2, 2}, [2]int{total, auth}, "Runtime.Counts stay where they came back to")
	g := gauges(t, h)
	sum := 0.0
	for _, v := range g {
		sum += v
	}
	assert.Equal(t, 2.0, g["AUTHENTICATED"], "gatewayd_gateways{state=AUTHENTICATED}: %v", g)
	assert.Equal(t, 2.0, sum, "gatewayd_gateways summed over states is the number of gateways: %v", g)
}
