package actors

import (
	"context"
	"sync/atomic"
)

// dialLimiter bounds the dials in flight process-wide, so thousands of
// gateways starting (or reconnecting) at once do not storm the network.
type dialLimiter struct {
	slots    chan struct{}
	inFlight atomic.Int64
	peak     atomic.Int64
}

func newDialLimiter(n int) *dialLimiter {
	return &dialLimiter{slots: make(chan struct{}, n)}
}

// acquire waits for a slot or for ctx to end.
func (l *dialLimiter) acquire(ctx context.Context) error {
	select {
	case l.slots <- struct{}{}:
	case <-ctx.Done():
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

func (l *dialLimiter) release() {
	l.inFlight.Add(-1)
	<-l.slots
}
