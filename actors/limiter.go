package actors

import (
	"sync"
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
//
// A dial waiting for its slot is an entry in a queue, not a goroutine: in
// a storm of new or unreachable gateways tens of thousands wait at once
// (19,004 goroutines, 63 MiB of stacks, in gwload churn
// -churn-unreachable), and each one's goroutine starts only when it is
// granted its slot. Waiters are served oldest first, a failing one only
// while its lane has room.
type dialLimiter struct {
	slots, lane int // every dial; dials of failing gateways among them
	// launch starts a granted waiter; nil: in a new goroutine (tests run
	// it inline to see each decision as it is made).
	launch func(start func())

	mu       sync.Mutex
	inFlight int
	failing  int // failing dials in flight
	healthy  waitQueue
	unproven waitQueue // failing gateways' dials
	seq      uint64

	// pending counts the dials waiting for a slot or in flight; crowd is
	// set when they outnumber the slots and cleared when none is left.
	pending atomic.Int64
	crowd   atomic.Bool
}

// dialWait is one dial's place in the limiter: queued until a slot is
// free, then started in its own goroutine holding the slot, which that
// goroutine gives back with release.
type dialWait struct {
	failing bool
	start   func()
	// Guarded by the limiter's mu.
	seq        uint64
	prev, next *dialWait
	queued     bool
}

type waitQueue struct{ head, tail *dialWait }

func (q *waitQueue) push(w *dialWait) {
	w.prev, w.next = q.tail, nil
	if q.tail != nil {
		q.tail.next = w
	} else {
		q.head = w
	}
	q.tail = w
}

func (q *waitQueue) remove(w *dialWait) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		q.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		q.tail = w.prev
	}
	w.prev, w.next = nil, nil
}

func newDialLimiter(n int) *dialLimiter {
	return &dialLimiter{slots: n, lane: max(1, n/2)}
}

// submit starts w at once if a slot is free for it and nobody eligible is
// waiting, and queues it otherwise.
func (l *dialLimiter) submit(w *dialWait) {
	if l.pending.Add(1) > int64(l.slots) && !l.crowd.Load() {
		l.crowd.Store(true)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	w.seq, w.queued = l.seq, true
	l.queueOf(w).push(w)
	l.dispatch()
}

// cancel takes w out of the queue; false means it has already started
// (its goroutine then ends on its own, and releases its slot).
func (l *dialLimiter) cancel(w *dialWait) bool {
	l.mu.Lock()
	if !w.queued {
		l.mu.Unlock()
		return false
	}
	w.queued = false
	l.queueOf(w).remove(w)
	l.mu.Unlock()
	l.done()
	return true
}

// release gives back the slot of a dial that finished, and starts the
// next waiter.
func (l *dialLimiter) release(failing bool) {
	l.mu.Lock()
	l.inFlight--
	if failing {
		l.failing--
	}
	l.dispatch()
	l.mu.Unlock()
	l.done()
}

// queueOf is the queue w waits in.
func (l *dialLimiter) queueOf(w *dialWait) *waitQueue {
	if w.failing {
		return &l.unproven
	}
	return &l.healthy
}

// dispatch starts waiters, oldest first, while there are slots for them.
// Called with mu held.
func (l *dialLimiter) dispatch() {
	for l.inFlight < l.slots {
		w := l.healthy.head
		if u := l.unproven.head; u != nil && l.failing < l.lane && (w == nil || u.seq < w.seq) {
			w = u
		}
		if w == nil {
			return
		}
		w.queued = false
		l.queueOf(w).remove(w)
		l.inFlight++
		if w.failing {
			l.failing++
		}
		if l.launch != nil {
			l.launch(w.start)
		} else {
			go w.start()
		}
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
