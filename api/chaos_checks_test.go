package api_test

// (Checked by an audit, helper 17, whose tests these are: the chaos
// promise — one gateway's failure never touches another.)

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors"
	"github.com/ctcgw/gatewayd/ctc/ctctest"
)

// API.md §8: "A connection lost or an actor restarted while a reading is
// queued or running fails it (`connection lost`)". A chaos crash restarts
// the actor: the reading it was running and the one queued behind it are
// FAILED at once (not after READING_TIMEOUT, a minute here), and the
// restarted actor takes readings again.
func TestCrashFailsHeldReadings(t *testing.T) {
	e, id, sg, sensors := readingEnv(t, func(c *actors.Config) { c.ReadingTimeout = time.Minute })
	sensor := sensors[10001]["id"].(string)
	running, queued := readingsHeldBy(t, e, sg, sensor)
	r := e.do("POST", "/api/debug/gateways/"+id+"/crash", nil)
	require.Equal(t, 202, r.status, string(r.body))
	assert.Equal(t, gatewayd.ReadingErrConnectionLost, failedWith(t, e, running))
	assert.Equal(t, gatewayd.ReadingErrConnectionLost, failedWith(t, e, queued))

	sg.UpdateFaults(func(f *ctctest.Faults) { f.NeverDeliverReadings = false })
	e.pollGET("/api/gateways/"+id+"/status", 15*time.Second, 10*time.Millisecond, "restarted and authenticated",
		func(r response) bool {
			m := r.json(t)
			return m["state"] == "AUTHENTICATED" && m["restarts"] == float64(1)
		})
	require.Eventually(t, func() bool { return sg.PushTemperature(1, 20) == 1 }, 10*time.Second, 10*time.Millisecond, "subscribed again")
	rd := e.take(sensor)
	assert.Equal(t, "COMPLETE", rd["status"], "%v", rd["error"])
}

// The crash that makes the gateway FAILED (GATEWAY_RESTART_LIMIT 0: the
// first crash) stops the actor: what it held fails (`connection lost`),
// nothing stays RUNNING or QUEUED, and a reading asked for while FAILED is
// refused 409 without a row left behind.
func TestCrashToFailedFailsHeldReadings(t *testing.T) {
	e, id, sg, sensors := readingEnv(t, func(c *actors.Config) { c.ReadingTimeout = time.Minute; c.RestartLimit = 0 })
	sensor := sensors[10001]["id"].(string)
	running, queued := readingsHeldBy(t, e, sg, sensor)
	r := e.do("POST", "/api/debug/gateways/"+id+"/crash", nil)
	require.Equal(t, 202, r.status, string(r.body))
	assert.Equal(t, gatewayd.ReadingErrConnectionLost, failedWith(t, e, running))
	assert.Equal(t, gatewayd.ReadingErrConnectionLost, failedWith(t, e, queued))
	st := e.waitState(id, "FAILED")
	assert.Equal(t, "CONNECTED", st["desired_state"], "FAILED keeps what the operator asked for")
	assert.Nil(t, st["next_retry_at"], "no retries while FAILED")
	require.Eventually(t, func() bool { return sg.Stats().Open == 0 }, 10*time.Second, 10*time.Millisecond, "its socket is closed")

	r = e.do("POST", "/api/sensors/"+sensor+"/readings", nil)
	assert.Equal(t, 409, r.status, string(r.body))
	for _, status := range []string{"QUEUED", "RUNNING"} {
		r = e.do("GET", "/api/sensors/"+sensor+"/readings?status="+status, nil)
		require.Equal(t, 200, r.status, string(r.body))
		assert.Empty(t, r.json(t)["data"], "no reading left %s", status)
	}
}

// Several gateways crashed past the restart limit at once (each crash
// request fired concurrently, many per gateway) end FAILED with the
// documented fields, while every other gateway keeps its one connection
// and login, its restarts at 0, and answers readings. Crashes of a FAILED
// gateway are 409, never a restart; a PUT of its name leaves it FAILED
// (no dial); connect brings it back.
func TestMassCrashPastTheLimitTouchesNoOtherGateway(t *testing.T) {
	cfg := func(c *actors.Config) { c.RestartLimit = 2 }
	e, readerID, readerSim, sensors := readingEnv(t, cfg)
	const n = 6
	ids := make([]string, n)
	sims := make([]*ctctest.Gateway, n)
	for i := range n {
		ids[i], sims[i] = e.add(fmt.Sprintf("mass-%d", i))
	}
	for _, id := range ids {
		e.waitState(id, "AUTHENTICATED")
	}
	victims, bystanders := ids[:3], ids[3:]
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for _, id := range victims {
		for range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := e.do("POST", "/api/debug/gateways/"+id+"/crash", nil)
				mu.Lock()
				codes[r.status]++
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	for code := range codes {
		assert.Contains(t, []int{202, 409}, code, "every crash answer is 202 or 409: %v", codes)
	}
	for i, id := range victims {
		st := e.waitState(id, "FAILED")
		assert.Equal(t, float64(2), st["restarts"], "the limit's restarts, then FAILED")
		assert.Equal(t, "CONNECTED", st["desired_state"])
		assert.Nil(t, st["next_retry_at"])
		require.NotNil(t, st["last_error"])
		assert.Contains(t, st["last_error"], actors.ChaosPanic, "the reason says it was a drill")
		require.Eventually(t, func() bool { return sims[i].Stats().Open == 0 }, 10*time.Second, 10*time.Millisecond, "socket closed")
		r := e.do("POST", "/api/debug/gateways/"+id+"/crash", nil)
		assert.Equal(t, 409, r.status, "a FAILED gateway has no actor to crash")
	}
	for i, id := range bystanders {
		st := e.status(id)
		assert.Equal(t, "AUTHENTICATED", st["state"])
		assert.Equal(t, float64(0), st["restarts"])
		s := sims[3+i].Stats()
		assert.Equal(t, 1, s.Accepted, "bystander %d dialed once", i)
		assert.Equal(t, 1, s.Logins, "bystander %d logged in once", i)
		assert.Equal(t, 1, s.Open)
	}
	assert.Equal(t, 1, readerSim.Stats().Logins, "the reading gateway logged in once")
	assert.Equal(t, "AUTHENTICATED", e.status(readerID)["state"])
	rd := e.take(sensors[10001]["id"].(string))
	assert.Equal(t, "COMPLETE", rd["status"], "%v", rd["error"])

	// FAILED is left only by a connect or a change of connection settings.
	accepted := sims[0].Stats().Accepted
	r := e.do("PUT", "/api/gateways/"+victims[0], map[string]any{"name": "renamed"})
	require.Equal(t, 200, r.status, string(r.body))
	st := e.status(victims[0])
	assert.Equal(t, "FAILED", st["state"])
	assert.Equal(t, "renamed", st["name"])
	assert.Equal(t, accepted, sims[0].Stats().Accepted, "a rename dials nothing")
	r = e.do("POST", "/api/gateways/"+victims[0]+"/connect", nil)
	require.Equal(t, 202, r.status, string(r.body))
	e.waitState(victims[0], "AUTHENTICATED")
	assert.Equal(t, "FAILED", e.status(victims[1])["state"], "the others stay FAILED")
}
