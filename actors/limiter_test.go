package actors

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// limiterProbe submits waiters whose start only records that it ran, so
// the limiter's decisions are visible without dialing anything.
type limiterProbe struct {
	l       *dialLimiter
	started chan string
}

func newLimiterProbe(slots int) *limiterProbe {
	l := newDialLimiter(slots)
	l.launch = func(start func()) { start() }
	return &limiterProbe{l: l, started: make(chan string, 100)}
}

func (p *limiterProbe) submit(name string, failing bool) *dialWait {
	w := &dialWait{failing: failing}
	w.start = func() { p.started <- name }
	p.l.submit(w)
	return w
}

// next returns the waiter started next; "" when none starts.
func (p *limiterProbe) next(t *testing.T) string {
	t.Helper()
	select {
	case name := <-p.started:
		return name
	default:
		return ""
	}
}

// startedNow returns the starts dispatched since the last look.
func (p *limiterProbe) startedNow(t *testing.T, n int) []string {
	t.Helper()
	var names []string
	for range n {
		names = append(names, p.next(t))
	}
	assert.Empty(t, p.next(t), "more started than slots allow")
	return names
}

// The limiter is crowded from the moment more dials wait or are in flight
// than there are slots until none is left.
func TestDialLimiterCrowded(t *testing.T) {
	t.Parallel()
	p := newLimiterProbe(2)
	p.submit("a", false)
	p.submit("b", true)
	p.startedNow(t, 2)
	assert.False(t, p.l.crowded(), "as many dials as slots")

	w := p.submit("c", false)
	assert.True(t, p.l.crowded(), "a third waits for a slot")
	require.True(t, p.l.cancel(w), "a queued dial can be taken back")
	assert.False(t, p.l.cancel(w), "only once")
	assert.True(t, p.l.crowded(), "two dials still in flight: the storm's tail")
	p.l.release(true)
	assert.Empty(t, p.next(t), "the cancelled dial never starts")
	assert.True(t, p.l.crowded(), "one still in flight")
	p.l.release(false)
	assert.False(t, p.l.crowded(), "none left")
	assert.Zero(t, p.l.pending.Load())
}

// Waiting dials start only as slots free, oldest first, and a failing
// gateway's dial only while the failing lane (half the slots) has room:
// a healthy gateway queued behind failing ones overtakes them when the
// lane is full.
func TestDialLimiterOrderAndLane(t *testing.T) {
	t.Parallel()
	p := newLimiterProbe(4) // lane: 2
	for _, name := range []string{"f1", "f2", "f3", "f4"} {
		p.submit(name, true)
	}
	assert.ElementsMatch(t, []string{"f1", "f2"}, p.startedNow(t, 2), "the lane holds two")
	p.submit("h1", false)
	p.submit("h2", false)
	p.submit("h3", false)
	assert.ElementsMatch(t, []string{"h1", "h2"}, p.startedNow(t, 2), "healthy dials take the free slots")
	assert.Equal(t, 7, int(p.l.pending.Load()), "four running, three waiting")

	p.l.release(false) // h1 done: f3 is older than h3, but the lane is full
	assert.Equal(t, []string{"h3"}, p.startedNow(t, 1))
	p.l.release(true) // f1 done: the lane has room again
	assert.Equal(t, []string{"f3"}, p.startedNow(t, 1))
	p.l.release(false)
	assert.Empty(t, p.next(t), "f4 waits for the lane, not for a slot")
	p.l.release(true)
	assert.Equal(t, []string{"f4"}, p.startedNow(t, 1))
	for _, failing := range []bool{false, true, true} {
		p.l.release(failing)
	}
	assert.Zero(t, p.l.pending.Load())
	assert.False(t, p.l.crowded())
}

// A storm's waiters are entries, not goroutines: ten thousand queued
// dials start nothing until slots free, and cancelling them all leaves
// the limiter empty.
func TestDialLimiterQueuesWithoutStarting(t *testing.T) {
	t.Parallel()
	p := newLimiterProbe(2)
	p.submit("a", false)
	p.submit("b", false)
	p.startedNow(t, 2)
	ws := make([]*dialWait, 10000)
	for i := range ws {
		ws[i] = p.submit("queued", i%2 == 0)
	}
	assert.Empty(t, p.next(t))
	for _, w := range ws {
		require.True(t, p.l.cancel(w))
	}
	p.l.release(false)
	p.l.release(false)
	assert.Empty(t, p.next(t), "nothing left to start")
	assert.Zero(t, p.l.pending.Load())
	assert.Nil(t, p.l.healthy.head)
	assert.Nil(t, p.l.unproven.head)
}

// Each lane is first in, first out: healthy dials start in the order they
// were queued, and so do failing ones, whatever the other lane does; a
// failing dial skipped while the lane is full keeps its place ahead of
// the failing dials queued after it.
func TestDialLimiterLanesAreFirstInFirstOut(t *testing.T) {
	t.Parallel()
	p := newLimiterProbe(4) // lane: 2
	for _, name := range []string{"r1", "r2", "r3", "r4"} {
		p.submit(name, false)
	}
	require.Equal(t, []string{"r1", "r2", "r3", "r4"}, p.startedNow(t, 4))
	for _, name := range []string{"f1", "f2", "f3", "f4"} {
		p.submit(name, true)
	}
	for _, name := range []string{"h1", "h2", "h3"} {
		p.submit(name, false)
	}
	assert.Empty(t, p.next(t), "every slot is taken")

	var order []string
	for _, failing := range []bool{false, false, false, false, true, true, false} {
		p.l.release(failing)
		order = append(order, p.startedNow(t, 1)...)
	}
	// f1 and f2 fill the lane, so h1 and h2 pass f3 and f4; each freed
	// lane place goes to the oldest failing dial, f3 before f4.
	assert.Equal(t, []string{"f1", "f2", "h1", "h2", "f3", "f4", "h3"}, order)
	for _, failing := range []bool{true, true, true, true} {
		p.l.release(failing)
	}
	assert.Empty(t, p.next(t))
	assert.Zero(t, p.l.pending.Load())
}

// Across the lanes the oldest waiter is served first: a failing dial
// queued before a healthy one starts before it while the lane has room,
// and after it when it was queued after it. Only a full lane lets a
// younger healthy dial pass an older failing one.
func TestDialLimiterServesTheOldestAcrossLanes(t *testing.T) {
	t.Parallel()
	p := newLimiterProbe(4) // lane: 2
	for _, name := range []string{"r1", "r2", "r3", "r4"} {
		p.submit(name, false)
	}
	p.startedNow(t, 4)
	for _, w := range []struct {
		name    string
		failing bool
	}{{"h1", false}, {"f1", true}, {"f2", true}, {"h2", false}, {"f3", true}, {"h3", false}} {
		p.submit(w.name, w.failing)
	}
	assert.Empty(t, p.next(t), "every slot is taken")

	p.l.release(false)
	assert.Equal(t, []string{"h1"}, p.startedNow(t, 1), "h1 is older than f1")
	p.l.release(false)
	assert.Equal(t, []string{"f1"}, p.startedNow(t, 1), "f1 is older than h2, and the lane has room")
	p.l.release(false)
	assert.Equal(t, []string{"f2"}, p.startedNow(t, 1), "f2 is older than h2, and the lane has room")
	p.l.release(false)
	assert.Equal(t, []string{"h2"}, p.startedNow(t, 1), "h2 is older than f3")
	p.l.release(false)
	assert.Equal(t, []string{"h3"}, p.startedNow(t, 1), "f3 is older, but the lane is full")
	p.l.release(true)
	assert.Equal(t, []string{"f3"}, p.startedNow(t, 1), "the lane has room again")
	for _, failing := range []bool{false, false, true, true} {
		p.l.release(failing)
	}
	assert.Empty(t, p.next(t))
	assert.Zero(t, p.l.pending.Load())
	assert.False(t, p.l.crowded())
}

// The failing lane is half the slots, rounded down, and never less than
// one: with GATEWAY_DIAL_CONCURRENCY 1 the lane is the only slot (README),
// so a new gateway still dials.
func TestDialLimiterLaneIsHalfTheSlots(t *testing.T) {
	t.Parallel()
	for slots, lane := range map[int]int{1: 1, 2: 1, 3: 1, 4: 2, 5: 2, 64: 32} {
		p := newLimiterProbe(slots)
		for range slots {
			p.submit("f", true)
		}
		started := 0
		for p.next(t) != "" {
			started++
		}
		assert.Equal(t, lane, started, "%d slots: failing dials in flight", slots)
		// The rest of the slots are the open lane's.
		for range slots - lane {
			p.submit("h", false)
		}
		assert.Len(t, p.startedNow(t, slots-lane), slots-lane, "%d slots: healthy dials beside the lane", slots)
	}
}
