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
