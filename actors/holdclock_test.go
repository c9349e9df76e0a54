package actors

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// (Found by an audit, helper 11, whose test this is.) holdClock.heldFor
// is read by the actor (the pong timer's mark when a
// ping goes out, and again when the timer runs out) while the reader
// releases its holds. set(false) adds the hold to total and then stores
// the release in v: a heldFor that loads total after the Add and v
// before the Store (its second load of total agrees with the first)
// counts the hold twice, once in total and once as still running. The
// pong timer's mark taken then is too large by the whole hold, and
// pongWait grants a pong that waited behind the held frame that much
// less (a healthy connection is failed); taken at the timer's end, it
// grants a dead one a hold's worth more.
//
// Each trial is a fresh clock held once, at once, for hold: heldFor can
// never exceed the time since the clock began (read after it), and a
// hold counted twice does, by about hold.
func TestHeldForNeverCountsAHoldTwice(t *testing.T) {
	const hold = 20 * time.Microsecond
	var cur atomic.Pointer[holdClock]
	var stop atomic.Bool
	var trials atomic.Int64
	done := make(chan struct{})
	go func() { // the reader
		defer close(done)
		runtime.LockOSThread()
		for !stop.Load() {
			h := newHoldClock()
			h.set(true)
			cur.Store(h)
			for start := time.Now(); time.Since(start) < hold; {
			}
			h.set(false)
			trials.Add(1)
		}
	}()
	defer func() { stop.Store(true); <-done }()
	deadline := time.Now().Add(2 * time.Second)
	var worst time.Duration
	for time.Now().Before(deadline) && worst <= hold/2 {
		for range 1000 {
			h := cur.Load()
			if h == nil {
				continue
			}
			held := time.Duration(h.heldFor(time.Now()))
			if over := held - time.Since(h.base); over > worst {
				worst = over
			}
		}
	}
	if worst > hold/2 {
		t.Fatalf("heldFor counted %v more than its clock had run (holds of %v, %d trials): a hold counted twice",
			worst, hold, trials.Load())
	}
}
