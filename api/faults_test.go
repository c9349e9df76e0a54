package api_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/api"
	"github.com/ctcgw/gatewayd/ctc/ctctest"
)

// The database closed to new connections (maintenance): everything that
// needs it answers 503, liveness stays 200, the gateways keep their
// connections, and when it opens again everything recovers by itself.
func TestDatabaseClosedToConnectionsIs503(t *testing.T) {
	e := newLiveEnv(t, actorstest.FastConfig())
	var ids []string
	for i := range 3 {
		id, _ := e.add(fmt.Sprintf("closed-%d", i))
		ids = append(ids, id)
	}
	for _, id := range ids {
		e.waitState(id, "AUTHENTICATED")
	}
	org := e.org("Before")

	reopen := tmpl.Close(t, e.h.DBURL)
	for _, req := range []struct{ method, path string }{
		{"GET", "/api/ready"},
		{"GET", "/api/organizations"},
		{"GET", "/api/organizations/" + org},
		{"GET", "/api/gateways/" + ids[0]},
		{"POST", "/api/organizations"},
		{"PUT", "/api/organizations/" + org},
		{"DELETE", "/api/factories/" + e.factoryID},
		{"POST", "/api/gateways/" + ids[0] + "/disconnect"},
	} {
		var body any
		if req.method == "POST" || req.method == "PUT" {
			body = map[string]any{"name": "x"}
		}
		if req.path == "/api/gateways/"+ids[0]+"/disconnect" {
			body = nil
		}
		r := e.do(req.method, req.path, body)
		require.Equal(t, 503, r.status, "%s %s: %s", req.method, req.path, r.body)
		code, _ := r.errorBody(t)
		assert.Equal(t, "SERVICE_UNAVAILABLE", code)
	}
	h := e.do("GET", "/api/health", nil)
	require.Equal(t, 200, h.status, "liveness stays up")
	assert.Equal(t, "unreachable", h.json(t)["database"])
	assert.NotContains(t, e.logText(), `"level":"error"`, "unavailability is not an unexpected error")

	// A failed reconciliation read changes nothing; every gateway keeps
	// its one socket, and the disconnect that could not be stored did not
	// happen.
	e.runtime.Reconcile()
	for _, id := range ids {
		assert.Equal(t, "AUTHENTICATED", e.status(id)["state"])
	}
	for i := range 3 {
		st := e.sim.Gateway(fmt.Sprintf("closed-%d", i)).Stats()
		assert.Equal(t, 1, st.Accepted)
		assert.Equal(t, 1, st.Open)
	}

	reopen()
	require.Eventually(t, func() bool { return e.do("GET", "/api/ready", nil).status == 200 }, 10*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool { return e.do("GET", "/api/organizations/"+org, nil).status == 200 }, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, "ok", e.do("GET", "/api/health", nil).json(t)["database"])
	e.create("/api/organizations", map[string]any{"name": "After"})
}

// An operator's disconnect outlives a restart of the service; a connect
// does too.
func TestDesiredStateSurvivesRestart(t *testing.T) {
	e := newLiveEnv(t, actorstest.FastConfig())
	id, sg := e.add("maint")
	other, _ := e.add("steady")
	e.waitState(id, "AUTHENTICATED")
	e.waitState(other, "AUTHENTICATED")
	r := e.do("POST", "/api/gateways/"+id+"/disconnect", nil)
	require.Equal(t, 202, r.status)
	assert.Equal(t, "DISCONNECTED", e.do("GET", "/api/gateways/"+id, nil).json(t)["desired_state"])

	e.restart()
	e.waitState(other, "AUTHENTICATED")
	e.h.WaitSettled(uuid.MustParse(id), gatewayd.StateDisconnected) // registered, nothing scheduled
	st := e.status(id)
	assert.Equal(t, "DISCONNECTED", st["state"])
	assert.Equal(t, "DISCONNECTED", st["desired_state"])
	assert.Equal(t, 1, sg.Stats().Accepted, "never dialed after the restart")
	stored := e.do("GET", "/api/gateways/"+id, nil).json(t)["last_seen_at"]
	require.NotNil(t, stored, "the login before the restart was written")
	assert.Equal(t, stored, st["last_seen_at"], "the status knows when it was last seen, from before the restart")
	list := e.do("GET", "/api/gateways/status", nil).json(t)
	assert.Equal(t, 1.0, list["counts"].(map[string]any)["DISCONNECTED"], "counted")
	assert.Len(t, list["data"], 2)

	require.Equal(t, 202, e.do("POST", "/api/gateways/"+id+"/connect", nil).status)
	e.waitState(id, "AUTHENTICATED")
	e.restart()
	e.waitState(id, "AUTHENTICATED")
	assert.Equal(t, "CONNECTED", e.status(id)["desired_state"])
}

// A gateway created DISCONNECTED is registered but never dialed until a
// connect; a PUT of desired_state acts as connect and disconnect.
func TestCreatedDisconnectedIsNeverDialed(t *testing.T) {
	e := newLiveEnv(t, actorstest.FastConfig())
	email, pw := actorstest.Credentials("parked")
	sg := e.sim.Add("parked", ctctest.Config{Email: email, Password: secret(pw)})
	g := e.create("/api/gateways", map[string]any{"factory_id": e.factoryID, "gateway_id": "parked", "name": "parked",
		"url": sg.URL(), "email": email, "password": pw, "desired_state": "DISCONNECTED"})
	id := g["id"].(string)
	assert.Equal(t, "DISCONNECTED", g["desired_state"])
	e.h.WaitSettled(uuid.MustParse(id), gatewayd.StateDisconnected)
	assert.Equal(t, "DISCONNECTED", e.status(id)["state"])
	assert.Equal(t, 0, sg.Stats().Accepted)

	r := e.do("PUT", "/api/gateways/"+id, map[string]any{"desired_state": "CONNECTED"})
	require.Equal(t, 200, r.status, string(r.body))
	e.waitState(id, "AUTHENTICATED")
	r = e.do("PUT", "/api/gateways/"+id, map[string]any{"desired_state": "DISCONNECTED"})
	require.Equal(t, 200, r.status)
	e.h.WaitSettled(uuid.MustParse(id), gatewayd.StateDisconnected)
	require.Eventually(t, func() bool { return sg.Stats().Open == 0 }, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, []int{1000}, sg.Stats().CloseCodes)

	r = e.do("PUT", "/api/gateways/"+id, map[string]any{"desired_state": "SLEEPING"})
	require.Equal(t, 400, r.status)
	_, fields := r.errorBody(t)
	assert.Equal(t, []string{"desired_state"}, fields)
}

// restart stops the runtime and starts a new one, with a new app over it,
// as a restart of the process would.
func (e *liveEnv) restart() {
	e.t.Helper()
	e.h.Restart()
	e.runtime = e.h.Runtime
	e.app = api.New(e.h.Store, e.h.Runtime, e.h.Log, api.Options{ChaosEnabled: true, Telemetry: e.h.Telemetry})
}
