package api_test

import (
	"context"
	"sort"
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

// Scheduled readings end to end (API.md §8: "never more
// than one scheduled reading of a sensor waiting"; README: "A tick missed
// ... is skipped, not made up for later"; "No reading waits for ever").
// (Checked by an audit, helper 7, whose tests these are.)

// scheduledRows reads a sensor's SCHEDULED readings straight from the
// database (the API may answer 503 on a loaded machine): requested_at in
// order, and how many are unfinished (QUEUED or RUNNING).
func scheduledRows(t *testing.T, e *liveEnv, sensor string) (at []time.Time, status []string, unfinished int, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows, err := e.h.Pool.Query(ctx, `SELECT requested_at, status FROM readings
		WHERE sensor_id = $1 AND trigger = 'SCHEDULED' ORDER BY requested_at`, sensor)
	if err != nil {
		return nil, nil, 0, err
	}
	defer rows.Close()
	for rows.Next() {
		var when time.Time
		var st string
		if err := rows.Scan(&when, &st); err != nil {
			return nil, nil, 0, err
		}
		at, status = append(at, when), append(status, st)
		if st == "QUEUED" || st == "RUNNING" {
			unfinished++
		}
	}
	return at, status, unfinished, rows.Err()
}

// noBurst asserts that consecutive scheduled readings are at least about
// an interval apart: a catch-up burst after a missed tick or an outage
// would put two within a fraction of it.
func noBurst(t *testing.T, at []time.Time, interval time.Duration) {
	t.Helper()
	sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
	for i := 1; i < len(at); i++ {
		// A tick is handled 0 to ~1 s late on a loaded machine; the next
		// stays on the grid, so two readings can stand a little under an
		// interval apart, never a small fraction of one.
		assert.GreaterOrEqual(t, at[i].Sub(at[i-1]), interval/3, "scheduled readings %d and %d requested at %s and %s",
			i-1, i, at[i-1].Format(time.RFC3339Nano), at[i].Format(time.RFC3339Nano))
	}
}

func scheduleEvery(t *testing.T, e *liveEnv, gw string, scs ...gatewayd.Schedule) {
	t.Helper()
	target, err := e.h.Store.Target(t.Context(), uuid.MustParse(gw))
	require.NoError(t, err)
	target.Schedules = scs
	e.runtime.GatewayUpdated(target)
}

// A gateway that starts readings and never delivers them: each scheduled
// reading times out (FAILED), the sensor waits for the failed one's late
// notes, and its next scheduled reading waits QUEUED meanwhile. Never more
// than one unfinished scheduled reading of the sensor, no burst when the
// gateway recovers, and the schedule goes on (not lost) afterwards.
// Would catch: a tick that queues a second scheduled reading behind one
// waiting for late notes, a schedule stopped by a failure, catch-up ticks.
func TestScheduledReadingsThatTimeOutNeverStack(t *testing.T) {
	e, id, sg, sensors := readingEnv(t, func(c *actors.Config) {
		c.ReadingStartTimeout, c.ReadingTimeout = 700*time.Millisecond, 700*time.Millisecond
	})
	sg.UpdateFaults(func(f *ctctest.Faults) { f.NeverDeliverReadings = true })
	sensor := sensors[10001]["id"].(string)
	const interval = 500 * time.Millisecond
	scheduleEvery(t, e, id, gatewayd.Schedule{SensorID: uuid.MustParse(sensor), Serial: 10001, Interval: interval})

	failWithOneWaiting(t, e, sensor)

	sg.UpdateFaults(func(f *ctctest.Faults) { f.NeverDeliverReadings = false })
	healed := time.Now()
	maxQueued := 0
	testutil.Eventually(t, func() bool {
		at, status, _, err := scheduledRows(t, e, sensor)
		require.NoError(t, err)
		// Once samples flow, a reading whose capture ended stays RUNNING
		// in the database while the processor analyses it (hundreds of ms
		// under -race and load), and the next tick's reading may start
		// meanwhile (README: a reading stays RUNNING while analysed). What must hold:
		// never two waiting for the gateway (QUEUED).
		maxQueued = max(maxQueued, countOf(status, "QUEUED"))
		n := 0
		for i, s := range status {
			if s == "COMPLETE" && at[i].After(healed) {
				n++
			}
		}
		return n >= 3
	}, 60*time.Second, "the schedule goes on once the gateway delivers again")
	assert.LessOrEqual(t, maxQueued, 1, "more than one scheduled reading of the sensor waiting")
	at, _, _, err := scheduledRows(t, e, sensor)
	require.NoError(t, err)
	noBurst(t, at, interval)
	// Every failure says why in words an operator reads, nothing internal.
	r := e.do("GET", "/api/sensors/"+sensor+"/readings?status=FAILED&limit=100", nil)
	require.Equal(t, 200, r.status, "%s", r.body)
	for _, x := range r.json(t)["data"].([]any) {
		m := x.(map[string]any)
		assert.Contains(t, []any{"no NOT_DYN_READING within 700ms", "no NOT_DYN_READING_STARTED within 700ms"}, m["error"], "%v", m)
		assert.NotNil(t, m["completed_at"], "%v", m)
	}
}

// failWithOneWaiting waits for four of the sensor's scheduled readings
// to fail, and asserts that meanwhile never more than one was unfinished.
func failWithOneWaiting(t *testing.T, e *liveEnv, sensor string) {
	t.Helper()
	maxUnfinished := 0
	testutil.Eventually(t, func() bool {
		_, status, u, err := scheduledRows(t, e, sensor)
		require.NoError(t, err)
		maxUnfinished = max(maxUnfinished, u)
		return countOf(status, "FAILED") >= 4
	}, 60*time.Second, "four scheduled readings failed")
	assert.LessOrEqual(t, maxUnfinished, 1, "more than one scheduled reading of the sensor waiting")
}

// countOf is how many of status are s.
func countOf(status []string, s string) int {
	n := 0
	for _, x := range status {
		if x == s {
			n++
		}
	}
	return n
}

// A gateway that never answers TAKE_DYN_READING: the same holds with the
// command's timeout (and a late "yes" nobody sends).
// Would catch: a scheduled reading left QUEUED/RUNNING, or stacked, when
// the command itself is never answered.
func TestScheduledReadingsUnansweredTakeNeverStack(t *testing.T) {
	e, id, sg, sensors := readingEnv(t, func(c *actors.Config) {
		c.CommandTimeout = time.Second
	})
	sg.UpdateFaults(func(f *ctctest.Faults) { f.IgnoreTakeReading = true })
	sensor := sensors[10001]["id"].(string)
	const interval = 300 * time.Millisecond
	scheduleEvery(t, e, id, gatewayd.Schedule{SensorID: uuid.MustParse(sensor), Serial: 10001, Interval: interval})
	failWithOneWaiting(t, e, sensor)
	assert.Equal(t, "AUTHENTICATED", e.status(id)["state"], "unanswered readings do not drop the connection")
	sg.UpdateFaults(func(f *ctctest.Faults) { f.IgnoreTakeReading = false })
	healed := time.Now()
	testutil.Eventually(t, func() bool {
		at, status, _, err := scheduledRows(t, e, sensor)
		require.NoError(t, err)
		for i, s := range status {
			if s == "COMPLETE" && at[i].After(healed) {
				return true
			}
		}
		return false
	}, 60*time.Second, "the schedule goes on once the gateway answers again")
	at, _, _, err := scheduledRows(t, e, sensor)
	require.NoError(t, err)
	noBurst(t, at, interval)
}

// A database outage while a sensor is read every second: the gateway's
// actor does not need the database to read, so the readings go on and are
// stored when it is back — no gap (a lost schedule), no burst of catch-up
// readings, and nothing left unfinished.
// Would catch: a schedule stopped by a failed write, readings lost with the
// outage, a tick missed during it made up for at once afterwards.
func TestSchedulesAcrossADatabaseOutage(t *testing.T) {
	e, id, sg, sensors := readingEnv(t)
	sensor := sensors[10001]["id"].(string)
	const interval = time.Second
	scheduleEvery(t, e, id, gatewayd.Schedule{SensorID: uuid.MustParse(sensor), Serial: 10001, Interval: interval})
	testutil.Eventually(t, func() bool {
		_, status, _, err := scheduledRows(t, e, sensor)
		require.NoError(t, err)
		return len(status) >= 2 && status[1] == "COMPLETE"
	}, 30*time.Second, "scheduled readings before the outage")

	reopen := tmpl.Close(t, e.h.DBURL)
	down := time.Now()
	// The outage lasts until the actor has asked the gateway for at least
	// three more readings.
	before := sg.Stats().ReadingsRequested
	testutil.Eventually(t, func() bool { return sg.Stats().ReadingsRequested >= before+3 }, 30*time.Second,
		"readings taken during the outage")
	reopen()
	up := time.Now()
	testutil.Eventually(t, func() bool {
		at, status, _, err := scheduledRows(t, e, sensor)
		if err != nil {
			return false // the pool reconnecting
		}
		n := 0
		for i, s := range status {
			if s == "COMPLETE" && at[i].After(up) {
				n++
			}
		}
		return n >= 3
	}, 60*time.Second, "scheduled readings after the outage")
	at, status, _, err := scheduledRows(t, e, sensor)
	require.NoError(t, err)
	noBurst(t, at, interval)
	during := 0
	for i, a := range at {
		if a.After(down) && a.Before(up) {
			during++
			assert.Equal(t, "COMPLETE", status[i], "reading requested at %s during the outage", a.Format(time.RFC3339Nano))
		}
	}
	assert.GreaterOrEqual(t, during, 2, "the readings taken during the outage were stored afterwards")
	for i := 1; i < len(at); i++ {
		assert.Less(t, at[i].Sub(at[i-1]), 3*interval, "a gap in the schedule between %s and %s (outage %s to %s)",
			at[i-1].Format(time.RFC3339Nano), at[i].Format(time.RFC3339Nano), down.Format(time.RFC3339Nano), up.Format(time.RFC3339Nano))
	}
	testutil.Eventually(t, func() bool {
		_, _, u, err := scheduledRows(t, e, sensor)
		return err == nil && u <= 1
	}, 20*time.Second, "at most the current scheduled reading unfinished")
}

// Changing a sensor's interval while it runs: shorter, longer, then off.
// Each interval is kept (no reading closer than the interval allows after
// the change, none lost), and off means off.
// Would catch: an old timer left running beside the new one (two readings
// an old interval apart), a schedule that keeps firing after null.
func TestIntervalChangesShorterLongerOff(t *testing.T) {
	e, id, _, sensors := readingEnv(t)
	sensor := sensors[10001]["id"].(string)
	other := sensors[10002]["id"].(string)
	sid, oid := uuid.MustParse(sensor), uuid.MustParse(other)
	count := func(after time.Time) (n int, at []time.Time) {
		all, _, _, err := scheduledRows(t, e, sensor)
		require.NoError(t, err)
		for _, a := range all {
			if a.After(after) {
				n++
				at = append(at, a)
			}
		}
		return n, at
	}
	scheduleEvery(t, e, id, gatewayd.Schedule{SensorID: sid, Serial: 10001, Interval: 3 * time.Second},
		gatewayd.Schedule{SensorID: oid, Serial: 10002, Interval: 2 * time.Second})
	testutil.Eventually(t, func() bool { n, _ := count(time.Time{}); return n >= 1 }, 30*time.Second, "first reading at 3s")

	// Shorter.
	shorter := time.Now()
	scheduleEvery(t, e, id, gatewayd.Schedule{SensorID: sid, Serial: 10001, Interval: 500 * time.Millisecond},
		gatewayd.Schedule{SensorID: oid, Serial: 10002, Interval: 2 * time.Second})
	testutil.Eventually(t, func() bool { n, _ := count(shorter); return n >= 5 }, 30*time.Second, "readings at 500ms")

	// Longer.
	longer := time.Now()
	scheduleEvery(t, e, id, gatewayd.Schedule{SensorID: sid, Serial: 10001, Interval: 2 * time.Second},
		gatewayd.Schedule{SensorID: oid, Serial: 10002, Interval: 2 * time.Second})
	testutil.Eventually(t, func() bool { n, _ := count(longer.Add(time.Second)); return n >= 3 }, 30*time.Second, "readings at 2s")
	_, at := count(longer.Add(time.Second)) // past any reading the old timer had queued
	noBurst(t, at, 4*time.Second)           // interval/3 of the assertion: >= 1.33 s apart

	// Off: nothing is requested after the change (a reading in flight may
	// finish). The other sensor's schedule is a clock: wait for three of
	// its readings after the change.
	off := time.Now()
	scheduleEvery(t, e, id, gatewayd.Schedule{SensorID: oid, Serial: 10002, Interval: 2 * time.Second})
	testutil.Eventually(t, func() bool {
		all, _, _, err := scheduledRows(t, e, other)
		require.NoError(t, err)
		n := 0
		for _, a := range all {
			if a.After(off) {
				n++
			}
		}
		return n >= 3
	}, 30*time.Second, "the other sensor read three times since")
	n, at := count(off.Add(50 * time.Millisecond))
	assert.Zero(t, n, "scheduled readings after the interval was set to null: %v", at)
}

// A password change the gateway refuses (AUTH_FAILED: no schedule runs),
// then the right one again: the schedule resumes on its grid, without a
// burst, and nothing is left unfinished from the refused period.
// Would catch: schedules armed while not authenticated (readings queued
// for a gateway that cannot take them), a schedule lost across the
// credentials' change, catch-up ticks at the new login.
func TestScheduleAcrossAPasswordChange(t *testing.T) {
	e, id, sg, sensors := readingEnv(t)
	sensor := sensors[10001]["id"].(string)
	const interval = 500 * time.Millisecond
	// In the database (the PUT reloads the gateway's target from it).
	storeShortInterval(t, e, sensor, "500 milliseconds")
	target, err := e.h.Store.Target(t.Context(), uuid.MustParse(id))
	require.NoError(t, err)
	require.Len(t, target.Schedules, 1)
	e.runtime.GatewayUpdated(target)
	testutil.Eventually(t, func() bool {
		_, status, _, err := scheduledRows(t, e, sensor)
		require.NoError(t, err)
		return len(status) >= 2
	}, 30*time.Second, "scheduled readings before the change")

	r := e.do("PUT", "/api/gateways/"+id, map[string]any{"password": secret("wrong-Pw-9q")})
	require.Equal(t, 200, r.status, "%s", r.body)
	e.waitState(id, "AUTH_FAILED")
	refused := time.Now()
	requested := sg.Stats().ReadingsRequested
	// While refused no scheduled reading may be requested: checked below
	// on the rows (none requested between AUTH_FAILED and the new login).
	r = e.do("PUT", "/api/gateways/"+id, map[string]any{"password": secret("pw-rd-Xk2")})
	require.Equal(t, 200, r.status, "%s", r.body)
	e.waitState(id, "AUTHENTICATED")
	back := time.Now()
	testutil.Eventually(t, func() bool {
		at, status, _, err := scheduledRows(t, e, sensor)
		require.NoError(t, err)
		n := 0
		for i, s := range status {
			if s == "COMPLETE" && at[i].After(back) {
				n++
			}
		}
		return n >= 3
	}, 30*time.Second, "the schedule resumes after the right password")
	at, status, u, err := scheduledRows(t, e, sensor)
	require.NoError(t, err)
	assert.LessOrEqual(t, u, 1)
	noBurst(t, at, interval)
	for i, a := range at {
		if a.After(refused) && a.Before(back.Add(-time.Second)) {
			t.Errorf("scheduled reading requested at %s while the login was refused (%s, gateway asked %d readings since)",
				a.Format(time.RFC3339Nano), status[i], sg.Stats().ReadingsRequested-requested)
		}
	}
}
