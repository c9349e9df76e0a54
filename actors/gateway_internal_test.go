package actors

import (
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
)

// A change to one sensor's schedule re-arms that sensor only: the others
// keep their timers and their grid (a PUT of sensor B's interval once gave
// every sensor of the gateway a new random start).
func TestScheduleChangeMovesOnlyThatSensor(t *testing.T) {
	t.Parallel()
	system := actor.NewActorSystem()
	t.Cleanup(system.Shutdown)
	a := &gatewayActor{d: &deps{root: system.Root}, self: system.NewLocalPID("schedules-test")}
	t.Cleanup(a.stopSchedules)
	keep, change, drop, add := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	a.target.Schedules = []gatewayd.Schedule{{SensorID: keep, Serial: 1, Interval: time.Hour},
		{SensorID: change, Serial: 2, Interval: time.Hour}, {SensorID: drop, Serial: 3, Interval: time.Hour}}
	a.armSchedules()
	require.Len(t, a.schedules, 3)
	kept, changed, dropped := a.schedules[keep], a.schedules[change], a.schedules[drop]
	due := kept.due

	a.target.Schedules = []gatewayd.Schedule{{SensorID: keep, Serial: 1, Interval: time.Hour},
		{SensorID: change, Serial: 2, Interval: 2 * time.Hour}, {SensorID: add, Serial: 4, Interval: time.Minute}}
	a.updateSchedules()
	require.Len(t, a.schedules, 3)
	assert.Same(t, kept, a.schedules[keep], "an unchanged schedule keeps its timer")
	assert.Equal(t, due, a.schedules[keep].due, "and its grid")
	assert.NotSame(t, changed, a.schedules[change], "a changed one is armed anew")
	assert.Equal(t, 2*time.Hour, a.schedules[change].Interval)
	assert.NotContains(t, a.schedules, drop, "a removed one stops")
	assert.False(t, dropped.timer.Stop(), "its timer was stopped already")
	assert.False(t, changed.timer.Stop(), "the changed one's old timer too")
	assert.Contains(t, a.schedules, add)

	// A fire of the replaced schedule that was already on its way is stale.
	epoch := a.scheduleEpoch
	a.status.State = gatewayd.StateAuthenticated
	a.onScheduleFired(&scheduleFired{epoch: epoch, s: changed})
	assert.Empty(t, a.readings, "nothing queued for a stale fire")
}

// A restarted actor keeps its mailbox, so the incarnation before may have
// left a "dial finished" in it; the new one's generations start past the
// old one's, and such a message is dropped instead of taken for the new
// dial (a double crash once threw a fresh dial's socket away: BACKOFF
// "dial failed: unknown error").
func TestAnIncarnationIgnoresTheOneBefore(t *testing.T) {
	t.Parallel()
	w := &wanted{target: gatewayd.Target{ID: uuid.New()}}
	first := newGatewayActor(&deps{}, w)
	first.gen++ // its first dial
	leftover := &dialed{gen: first.gen}

	w.set(func(w *wanted) { w.restarts++ }) // the supervisor counts the crash, then restarts
	second := newGatewayActor(&deps{}, w)
	second.gen++ // its first dial, still under way
	inFlight := &dialing{}
	second.dial = inFlight
	second.onDialed(leftover)
	assert.Same(t, inFlight, second.dial, "the leftover is not this incarnation's dial")
	assert.NotEqual(t, leftover.gen, second.gen)
}

// A schedule's readings fall on a grid of its own: due after now, within
// one interval, the same grid whenever it is computed (a reconnect or a
// restart draws no new offset), and sensors spread over the interval.
func TestGridDue(t *testing.T) {
	now := time.Now()
	sc := gatewayd.Schedule{SensorID: uuid.New(), Interval: time.Minute}
	due := gridDue(sc, now)
	assert.True(t, due.After(now))
	assert.LessOrEqual(t, due.Sub(now), time.Minute)
	assert.Equal(t, due.Add(time.Minute), gridDue(sc, due), "strictly after now, one interval on")
	later := gridDue(sc, now.Add(17*time.Hour+23*time.Second))
	assert.Zero(t, later.Sub(due)%time.Minute, "the same grid hours later")

	long := gatewayd.Schedule{SensorID: uuid.New(), Interval: 366 * 24 * time.Hour}
	assert.LessOrEqual(t, gridDue(long, now).Sub(now), long.Interval)

	offsets := map[time.Duration]bool{}
	for range 1000 {
		s := gatewayd.Schedule{SensorID: uuid.New(), Interval: time.Hour}
		offsets[gridDue(s, now).Sub(now).Truncate(time.Second)] = true
	}
	assert.Greater(t, len(offsets), 800, "1,000 sensors spread over the hour's 3,600 seconds")
}
