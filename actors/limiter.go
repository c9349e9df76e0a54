package actors

import (
	"context"
	"sync/atomic"
)

// dialLimiter bounds the dials in flight process-wide, so thousands of
// gateways starting (or reconnecting) at once do not storm the network.
// Gateways whose last connection did not reach login (new ones, and
// those failing) dial in a lane of their own that may hold at most half
// the slots: peers that accept TCP and then hang hold a slot for the whole
// handshake timeout, and without the lane a few hundred of them (even on
// their first dial) would make every healthy gateway's reconnect wait
// behind them.
type dialLimiter struct {
	slots    chan struct{} // every dial
	failing  chan struct{} // dials of failing gateways, on top of a slot
	inFlight atomic.Int64
	peak     atomic.Int64
	// pending counts the dials waiting for a slot or in flight; crowd is
	// set when they outnumber the slots and cleared when none is left.
	pending atomic.Int64
	crowd   atomic.Bool
}

func newDialLimiter(n int) *dialLimiter {
	return &dialLimiter{slots: make(chan struct{}, n), failing: make(chan struct{}, max(1, n/2))}
}

// acquire waits for a slot (and, for a failing gateway, a place in its
// lane) or for ctx to end.
func (l *dialLimiter) acquire(ctx context.Context, failing bool) error {
	if l.pending.Add(1) > int64(cap(l.slots)) && !l.crowd.Load() {
		l.crowd.Store(true)
	}
	if failing {
		select {
		case l.failing <- struct{}{}:
		case <-ctx.Done():
			l.done()
			return ctx.Err()
		}
	}
	select {
	case l.slots <- struct{}{}:
	case <-ctx.Done():
		if failing {
			<-l.failing
		}
		l.done()
		return ctx.Err()
	}
	n := l.inFlight.Add(1)
	for {
		p := l.peak.Load()
		if n <= p || l.peak.CompareAndSwap(p, n) {
			return nil
		}
	}
}

func (l *dialLimiter) release(failing bool) {
	l.done()
	l.inFlight.Add(-1)
	<-l.slots
	if failing {
		<-l.failing
	}
}

// done counts a dial finished or given up.
func (l *dialLimiter) done() {
	if l.pending.Add(-1) == 0 {
		l.crowd.Store(false)
	}
}

// crowded reports a cold start or a reconnect storm: from the moment more
// dials wait or are in flight than there are slots until none is left.
// Ending only at none, not when the queue drops below the slots, keeps
// the work it holds back (the sensor writes) out of the storm's last
// logins too.
func (l *dialLimiter) crowded() bool {
	return l.crowd.Load()
}
