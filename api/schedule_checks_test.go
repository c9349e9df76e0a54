package api_test

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors"
	"github.com/ctcgw/gatewayd/ctc/ctctest"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// schedulePhase is how far t is past the sensor's last grid point (README:
// due a whole number of intervals from the Unix epoch after an offset
// taken from the sensor's id).
func schedulePhase(sensor uuid.UUID, interval time.Duration, t time.Time) time.Duration {
	offset := int64(binary.BigEndian.Uint64(sensor[8:]) % uint64(interval))
	p := (t.UnixNano() - offset) % int64(interval)
	if p < 0 {
		p += int64(interval)
	}
	return time.Duration(p)
}

// scheduledReadings lists the sensor's SCHEDULED readings' requested_at.
func scheduledReadings(t *testing.T, e *liveEnv, sensor string) (all []time.Time, unfinished int) {
	t.Helper()
	r := e.do("GET", "/api/sensors/"+sensor+"/readings?limit=100", nil)
	if r.status != 200 {
		return nil, 0
	}
	for _, x := range r.json(t)["data"].([]any) {
		m := x.(map[string]any)
		if m["trigger"] != "SCHEDULED" {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, m["requested_at"].(string))
		require.NoError(t, err)
		all = append(all, at)
		if m["status"] == "QUEUED" || m["status"] == "RUNNING" {
			unfinished++
		}
	}
	return all, unfinished
}

// API.md §8: "the first at a random offset within the interval, so
// thousands of sensors do not fire together"; README: the grid "is the
// same across reconnects ... (no new offset is drawn at each login)". A
// gateway that reconnects mid-interval must not read its sensors at once
// on login (a thundering herd across a fleet after an outage): every
// scheduled reading stays on the sensor's grid.
// (Checked by an audit, helper 9, whose test this is.)
func TestScheduleKeepsItsGridAcrossAReconnect(t *testing.T) {
	e, id, sg, sensors := readingEnv(t)
	const interval = 20 * time.Second
	target, err := e.h.Store.Target(t.Context(), uuid.MustParse(id))
	require.NoError(t, err)
	var ids []uuid.UUID
	for _, serial := range []float64{10001} {
		sid := uuid.MustParse(sensors[serial]["id"].(string))
		ids = append(ids, sid)
		target.Schedules = append(target.Schedules, gatewayd.Schedule{SensorID: sid, Serial: int64(serial), Interval: interval})
	}
	e.runtime.GatewayUpdated(target)
	assert.False(t, e.h.WaitReconfigured(uuid.MustParse(id)), "schedules reached the actor without a reconnect")

	// Drop the connection when both sensors are 1-3 s past a grid point,
	// so a reading taken at login would stand 1-3+ s off the grid.
	testutil.Eventually(t, func() bool {
		now := time.Now()
		for _, sid := range ids {
			if p := schedulePhase(sid, interval, now); p < time.Second || p > 3*time.Second {
				return false
			}
		}
		return true
	}, 3*interval, "both sensors early in their interval")
	before := sg.Stats().Logins
	require.Equal(t, 1, sg.Drop(1001))
	testutil.Eventually(t, func() bool { return sg.Stats().Logins > before }, 15*time.Second, "logged in again")
	e.waitState(id, "AUTHENTICATED")
	loggedIn := time.Now()

	// Wait for a scheduled reading of each sensor requested after the
	// reconnect (the next grid point).
	testutil.Eventually(t, func() bool {
		for _, sid := range ids {
			got, _ := scheduledReadings(t, e, sid.String())
			if len(got) == 0 || !got[0].After(loggedIn.Add(-5*time.Second)) {
				return false
			}
		}
		return true
	}, 2*interval+15*time.Second, "a scheduled reading of each sensor after the reconnect")
	for _, sid := range ids {
		got, _ := scheduledReadings(t, e, sid.String())
		for _, at := range got {
			// requested_at is rendered in milliseconds (truncated) and is
			// when the actor handled the tick: 0 to a couple of seconds
			// on a loaded machine, never before the grid point.
			p := schedulePhase(sid, interval, at)
			assert.True(t, p < 2500*time.Millisecond || p > interval-time.Millisecond,
				"sensor %s: reading requested at %s is %s past its grid point (login at %s)", sid, at.Format(time.RFC3339Nano),
				p, loggedIn.Format(time.RFC3339Nano))
		}
	}
}

// storeShortInterval writes the sensor's reading_interval straight to
// the database, below the API's 1m floor (a test cannot wait minutes),
// as an operator's earlier PUT would have left it. The test's database is
// a pooled copy, kept for the next test and run: the constraint
// (migrations/003) goes back when the test ends.
func storeShortInterval(t *testing.T, e *liveEnv, sensor, interval string) {
	t.Helper()
	_, err := e.h.Pool.Exec(context.Background(), `ALTER TABLE sensors DROP CONSTRAINT sensors_reading_interval_check`)
	require.NoError(t, err)
	t.Cleanup(func() {
		_, err := e.h.Pool.Exec(context.Background(), `UPDATE sensors SET reading_interval = NULL WHERE reading_interval < interval '1 minute'`)
		require.NoError(t, err)
		_, err = e.h.Pool.Exec(context.Background(), `ALTER TABLE sensors ADD CONSTRAINT sensors_reading_interval_check
			CHECK (reading_interval IS NULL OR reading_interval >= interval '1 minute')`)
		require.NoError(t, err)
	})
	_, err = e.h.Pool.Exec(context.Background(), `UPDATE sensors SET reading_interval = $2::interval WHERE id = $1`, sensor, interval)
	require.NoError(t, err)
}

// API.md §8 / README: schedules come from the database; a restart of
// gatewayd resumes them on the same grid. The interval is written
// straight to the database (the API's floor is 1m; a test cannot wait
// minutes), as an operator's earlier PUT would have left it.
// (Checked by an audit, helper 9, whose test this is.)
func TestSchedulesResumeAfterAProcessRestart(t *testing.T) {
	e, id, _, sensors := readingEnv(t)
	sensor := sensors[10001]["id"].(string)
	const interval = 3 * time.Second
	storeShortInterval(t, e, sensor, "3 seconds")
	e.restart()
	restarted := time.Now()
	e.waitState(id, "AUTHENTICATED")
	var got []time.Time
	testutil.Eventually(t, func() bool {
		all, _ := scheduledReadings(t, e, sensor)
		got = got[:0]
		for _, at := range all {
			if at.After(restarted) {
				got = append(got, at)
			}
		}
		return len(got) >= 2
	}, 30*time.Second, "scheduled readings after the restart")
	for _, at := range got {
		// A timer runs on the monotonic clock: on the wall clock a tick
		// may land a millisecond before its grid point.
		p := schedulePhase(uuid.MustParse(sensor), interval, at)
		assert.True(t, p < 1500*time.Millisecond || p > interval-5*time.Millisecond,
			"requested at %s, %s past its grid point", at.Format(time.RFC3339Nano), p)
	}
}

// API.md §5: a crash restarts the gateway's actor; README: "The grid is
// the same across reconnects, crashes and restarts of gatewayd". The
// restarted actor keeps running its sensors' schedules.
// (Checked by an audit, helper 9, whose test this is.)
func TestSchedulesSurviveAnActorCrash(t *testing.T) {
	e, id, _, sensors := readingEnv(t)
	sensor := sensors[10001]["id"].(string)
	target, err := e.h.Store.Target(t.Context(), uuid.MustParse(id))
	require.NoError(t, err)
	target.Schedules = []gatewayd.Schedule{{SensorID: uuid.MustParse(sensor), Serial: 10001, Interval: time.Second}}
	e.runtime.GatewayUpdated(target)
	testutil.Eventually(t, func() bool { got, _ := scheduledReadings(t, e, sensor); return len(got) >= 1 }, 20*time.Second,
		"scheduled readings before the crash")
	require.Equal(t, 202, e.do("POST", "/api/debug/gateways/"+id+"/crash", nil).status)
	st := e.pollGET("/api/gateways/"+id+"/status", 15*time.Second, 10*time.Millisecond, "restarted and authenticated",
		func(r response) bool { m := r.json(t); return m["restarts"] == 1.0 && m["state"] == "AUTHENTICATED" }).json(t)
	back, err := time.Parse(time.RFC3339Nano, st["connected_at"].(string))
	require.NoError(t, err)
	testutil.Eventually(t, func() bool {
		got, _ := scheduledReadings(t, e, sensor)
		n := 0
		for _, at := range got {
			if !at.Before(back) {
				n++
			}
		}
		return n >= 2
	}, 20*time.Second, "scheduled readings after the crash (login again at %s)", back.Format(time.RFC3339Nano))
	got, _ := scheduledReadings(t, e, sensor)
	for _, at := range got {
		// A timer runs on the monotonic clock: on the wall clock a tick
		// may land a millisecond before its grid point.
		p := schedulePhase(uuid.MustParse(sensor), time.Second, at)
		assert.True(t, p < 700*time.Millisecond || p > time.Second-5*time.Millisecond,
			"requested at %s, %s past its grid point", at.Format(time.RFC3339Nano), p)
	}
}

// A sensor that leaves the gateway (its scheduled readings fail) does
// not stop its siblings' schedules, and its own resumes when it returns
// (API.md §8: read every interval while authenticated).
// (Checked by an audit, helper 9, whose test this is.)
func TestScheduleOfASensorThatLeavesAndReturns(t *testing.T) {
	e, id, sg, sensors := readingEnv(t)
	a, b := sensors[10001]["id"].(string), sensors[10002]["id"].(string)
	target, err := e.h.Store.Target(t.Context(), uuid.MustParse(id))
	require.NoError(t, err)
	target.Schedules = []gatewayd.Schedule{{SensorID: uuid.MustParse(a), Serial: 10001, Interval: time.Second},
		{SensorID: uuid.MustParse(b), Serial: 10002, Interval: time.Second}}
	e.runtime.GatewayUpdated(target)
	complete := func(sensor string, after time.Time) int {
		n := 0
		r := e.do("GET", "/api/sensors/"+sensor+"/readings?status=COMPLETE&limit=100", nil)
		if r.status != 200 {
			return 0
		}
		for _, x := range r.json(t)["data"].([]any) {
			m := x.(map[string]any)
			at, _ := time.Parse(time.RFC3339Nano, m["requested_at"].(string))
			if m["trigger"] == "SCHEDULED" && at.After(after) {
				n++
			}
		}
		return n
	}
	testutil.Eventually(t, func() bool { return complete(a, time.Time{}) >= 1 && complete(b, time.Time{}) >= 1 },
		20*time.Second, "both sensors read on schedule")

	gone := sg.Sensors()[1]
	require.True(t, sg.RemoveSensor(10002))
	left := time.Now()
	r := e.do("POST", "/api/gateways/"+id+"/sensors/discover", nil)
	require.Equal(t, 200, r.status, "%s", r.body)
	testutil.Eventually(t, func() bool { return complete(a, left) >= 3 }, 30*time.Second, "a keeps its schedule while b is gone")

	sg.AddSensor(gone)
	back := time.Now()
	testutil.Eventually(t, func() bool { return complete(b, back) >= 2 }, 30*time.Second, "b's schedule resumes when it returns")
}

// API.md §8: "No reading stays unfinished forever"; a scheduled reading
// running when gatewayd restarts is FAILED (connection lost, or
// interrupted at the next start), never left RUNNING or lost.
// (Checked by an audit, helper 9, whose test this is.)
func TestScheduledReadingRunningAcrossARestart(t *testing.T) {
	e, id, sg, sensors := readingEnv(t, func(c *actors.Config) {
		c.ReadingStartTimeout, c.ReadingTimeout = 30*time.Second, 30*time.Second
	})
	sg.UpdateFaults(func(f *ctctest.Faults) { f.NeverDeliverReadings = true })
	sensor := sensors[10001]["id"].(string)
	target, err := e.h.Store.Target(t.Context(), uuid.MustParse(id))
	require.NoError(t, err)
	target.Schedules = []gatewayd.Schedule{{SensorID: uuid.MustParse(sensor), Serial: 10001, Interval: time.Second}}
	e.runtime.GatewayUpdated(target)
	testutil.Eventually(t, func() bool { return sg.Stats().ReadingsRequested >= 1 }, 20*time.Second, "a scheduled reading asked for")
	testutil.Eventually(t, func() bool { _, u := scheduledReadings(t, e, sensor); return u == 1 }, 20*time.Second,
		"its row written")
	e.restart()
	testutil.Eventually(t, func() bool { _, u := scheduledReadings(t, e, sensor); return u == 0 }, 20*time.Second,
		"no scheduled reading left unfinished after the restart")
	r := e.do("GET", "/api/sensors/"+sensor+"/readings?status=FAILED&limit=100", nil).json(t)["data"].([]any)
	require.NotEmpty(t, r)
	for _, x := range r {
		m := x.(map[string]any)
		assert.Contains(t, []any{gatewayd.ReadingErrConnectionLost, gatewayd.ReadingErrInterrupted}, m["error"], "%v", m)
	}
}
