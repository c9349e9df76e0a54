package actors_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/ctc/ctctest"
)

// stateLines are the "gateway state changed" lines of one gateway.
func stateLines(t *testing.T, logs, id string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		if m["message"] == "gateway state changed" && m["id"] == id {
			out = append(out, m)
		}
	}
	return out
}

// At info, an operator sees every state change of a gateway, one line
// each, naming it by UUID (id) and by its human gateway_id, with units
// in the field names.
func TestStateChangesAreLoggedAtInfo(t *testing.T) {
	h := newHarness(t, actorstest.FastConfig())
	g, sg := h.Add("GW-0042")
	h.WaitState(g.ID, gatewayd.StateAuthenticated, 5*time.Second)
	sg.Drop(websocket.CloseGoingAway)
	h.WaitEntered(g.ID, gatewayd.StateBackoff) // for 50 ms: too short to poll for
	h.WaitState(g.ID, gatewayd.StateAuthenticated, 5*time.Second)

	lines := stateLines(t, h.Logs.String(), g.ID.String())
	var path []string
	for _, l := range lines {
		assert.Equal(t, "GW-0042", l["gateway_id"])
		assert.Equal(t, "info", l["level"])
		path = append(path, l["state"].(string))
	}
	require.Equal(t, []string{"CONNECTING", "CONNECTED", "AUTHENTICATED", "BACKOFF", "CONNECTING", "CONNECTED", "AUTHENTICATED"}, path)
	assert.Equal(t, "CONNECTED", lines[2]["from"])
	assert.Contains(t, lines[2], "duration_ms", "how long the attempt took")
	backoff := lines[3]
	assert.Contains(t, backoff, "retry_in_ms")
	assert.EqualValues(t, 1, backoff["attempt"])
	assert.NotEmpty(t, backoff["error"])

	// A refused login is a warning, with the gateway's words.
	sg.SetFaults(ctctest.Faults{RefuseLogins: true})
	sg.Drop(websocket.CloseGoingAway)
	h.WaitState(g.ID, gatewayd.StateAuthFailed, 5*time.Second)
	lines = stateLines(t, h.Logs.String(), g.ID.String())
	last := lines[len(lines)-1]
	assert.Equal(t, "AUTH_FAILED", last["state"])
	assert.Equal(t, "warn", last["level"])
	assert.Contains(t, last["error"], "Invalid email or password")
}

// A gateway flapping faster than anyone can read is logged at most twenty
// lines (five reconnects) per ten seconds.
func TestFlappingGatewayStateLogsAreLimited(t *testing.T) {
	cfg := actorstest.FastConfig()
	cfg.BackoffInitial, cfg.BackoffMax = 5*time.Millisecond, 5*time.Millisecond
	h := newHarness(t, cfg)
	g, sg := h.Create("flappy")
	sg.SetFaults(ctctest.Faults{DropAfter: 10 * time.Millisecond, DropCode: 1001})
	_, pw := actorstest.Credentials("flappy")
	h.Runtime.GatewayStarted(g.Target(pw))
	eventually(t, func() bool { return sg.Stats().Accepted >= 20 }, 10*time.Second, "flapping")
	lines := stateLines(t, h.Logs.String(), g.ID.String())
	// 20 connections are at least 80 state changes, all within the window.
	assert.Len(t, lines, 20)
}

// Dropped traffic is logged at most once per 10 s per gateway (README:
// "garbage is dropped and logged at most once per 10 s"): hundreds of
// garbage frames make a line, not hundreds, and the gateway keeps its
// connection.
func TestDroppedTrafficIsLoggedAtMostOncePerTenSeconds(t *testing.T) {
	h := newHarness(t, actorstest.FastConfig())
	g, sg := h.Add("noisy")
	h.WaitState(g.ID, gatewayd.StateAuthenticated, 10*time.Second)
	start := time.Now()
	sg.SetFaults(ctctest.Faults{Garbage: true, GarbageEvery: time.Millisecond})
	eventually(t, func() bool { return sg.Stats().GarbageSent >= 300 }, 10*time.Second, "300 garbage frames sent")
	eventually(t, func() bool { return len(dropLines(t, h.Logs.String(), g.ID.String())) >= 1 }, 2*time.Second, "drops logged")
	sg.SetFaults(ctctest.Faults{})
	lines := dropLines(t, h.Logs.String(), g.ID.String())
	windows := 1 + int(time.Since(start)/(10*time.Second)) // on a slow machine the flood may span more than one
	assert.LessOrEqual(t, len(lines), windows, "%d lines for %d garbage frames", len(lines), sg.Stats().GarbageSent)
	assert.Equal(t, gatewayd.StateAuthenticated, h.Status(g.ID).State)
	assert.Equal(t, 1, sg.Stats().Accepted)
}

// dropLines are the "gateway traffic dropped" lines of one gateway.
func dropLines(t *testing.T, logs, id string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		if strings.HasPrefix(fmt.Sprint(m["message"]), "gateway traffic dropped") && m["id"] == id {
			out = append(out, m)
		}
	}
	return out
}
