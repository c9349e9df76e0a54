package api_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors"
	"github.com/ctcgw/gatewayd/ctc"
	"github.com/ctcgw/gatewayd/ctc/ctctest"
)

// (Checked by an audit, helper 4, whose tests these are.)

// readingsHeldBy starts one reading that runs for ever (the gateway
// never delivers) and one queued behind it, and returns their ids.
func readingsHeldBy(t *testing.T, e *liveEnv, sg *ctctest.Gateway, sensor string) (running, queued string) {
	t.Helper()
	sg.UpdateFaults(func(f *ctctest.Faults) { f.NeverDeliverReadings = true })
	post := func() string {
		r := e.do("POST", "/api/sensors/"+sensor+"/readings", nil)
		require.Equal(t, 202, r.status, string(r.body))
		return r.json(t)["id"].(string)
	}
	running = post()
	e.pollGET("/api/readings/"+running, 15*time.Second, 10*time.Millisecond, "reading starts",
		func(r response) bool { return r.json(t)["status"] == "RUNNING" })
	queued = post()
	return running, queued
}

// failedWith waits (well within READING_TIMEOUT) for a reading to be
// FAILED and returns its error.
func failedWith(t *testing.T, e *liveEnv, id string) any {
	t.Helper()
	r := e.pollGET("/api/readings/"+id, 15*time.Second, 10*time.Millisecond, "reading "+id+" fails",
		func(r response) bool { return r.json(t)["status"] == "FAILED" })
	return r.json(t)["error"]
}

// API.md §8: "A connection lost or an actor restarted while a reading is
// queued or running fails it (`connection lost`)". An operator's
// disconnect closes the connection: the readings it held fail at once,
// not after READING_TIMEOUT (here a minute).
func TestDisconnectFailsHeldReadings(t *testing.T) {
	e, id, sg, sensors := readingEnv(t, func(c *actors.Config) { c.ReadingTimeout = time.Minute })
	running, queued := readingsHeldBy(t, e, sg, sensors[10001]["id"].(string))
	r := e.do("POST", "/api/gateways/"+id+"/disconnect", nil)
	require.Equal(t, 202, r.status, string(r.body))
	assert.Equal(t, gatewayd.ReadingErrConnectionLost, failedWith(t, e, running))
	assert.Equal(t, gatewayd.ReadingErrConnectionLost, failedWith(t, e, queued))
}

// API.md §7/§8: deleting a gateway closes its WebSocket and removes its
// actor; its sensors are deleted with it. The readings it held are
// "queued or running" on a connection that is lost: FAILED (`connection
// lost`), never left for the abandoned-readings sweep (hours later).
func TestGatewayDeleteFailsHeldReadings(t *testing.T) {
	e, id, sg, sensors := readingEnv(t, func(c *actors.Config) { c.ReadingTimeout = time.Minute })
	running, queued := readingsHeldBy(t, e, sg, sensors[10001]["id"].(string))
	r := e.do("DELETE", "/api/gateways/"+id, nil)
	require.Equal(t, 204, r.status, string(r.body))
	assert.Equal(t, gatewayd.ReadingErrConnectionLost, failedWith(t, e, running))
	assert.Equal(t, gatewayd.ReadingErrConnectionLost, failedWith(t, e, queued))
}

// A url change makes the actor reconnect (API.md §4): the held readings'
// connection is lost.
func TestReconnectFailsHeldReadings(t *testing.T) {
	e, id, sg, sensors := readingEnv(t, func(c *actors.Config) { c.ReadingTimeout = time.Minute })
	running, queued := readingsHeldBy(t, e, sg, sensors[10001]["id"].(string))
	r := e.do("PUT", "/api/gateways/"+id, map[string]any{"url": sg.URL() + "?x=1", "password": "pw-rd-Xk2"})
	require.Equal(t, 200, r.status, string(r.body))
	assert.Equal(t, gatewayd.ReadingErrConnectionLost, failedWith(t, e, running))
	assert.Equal(t, gatewayd.ReadingErrConnectionLost, failedWith(t, e, queued))
}

// API.md §7: the merge after every login "serials missing from the
// answer get connected = false; nothing is deleted". A gateway moved to
// another host (a url change, with its password) reconnects there: the
// old host's sensor it does not list is disconnected and kept, its own
// new one is inserted, and a serial both list stays connected, with its
// id (and so its readings and settings).
func TestMovedGatewayMergesTheNewHostsList(t *testing.T) {
	e, id, _, before := readingEnv(t)
	pw := secret("pw-moved-Xk2")
	other := e.sim.Add("moved", ctctest.Config{Email: "moved@example.com", Password: pw})
	require.True(t, other.RemoveSensor(10001))
	other.AddSensor(ctc.Sensor{Serial: 20001, Connected: 1, PartNum: "P", ReadRate: 1000, Samples: 64, Name: "New"})
	r := e.do("PUT", "/api/gateways/"+id, map[string]any{"url": other.URL(), "email": "moved@example.com", "password": pw})
	require.Equal(t, 200, r.status, string(r.body))
	got := e.waitSensors(id, func(m map[float64]map[string]any) bool {
		return m[10001]["connected"] == false && m[20001] != nil
	}, "the new host's list merged")
	assert.Equal(t, true, got[20001]["connected"])
	assert.Equal(t, true, got[10002]["connected"])
	assert.Equal(t, before[10001]["id"], got[10001]["id"], "kept, not deleted")
	assert.Equal(t, before[10002]["id"], got[10002]["id"])
}
