package ctc

import "time"

// Matcher pairs answers with requests first-in first-out, since gateways
// send no correlation id. It is plain logic with no goroutines or timers:
// its owner (one gateway actor) calls Expire when its timer fires.
//
// A request that timed out stays in the queue as a tombstone until its
// answer arrives or a second timeout passes, so a late answer is dropped
// instead of being handed to the next request.
type Matcher[T any] struct {
	queue []entry[T]
}

type entry[T any] struct {
	value    T
	deadline time.Time
	timeout  time.Duration
	expired  bool // timed out; waiting to swallow a late answer
}

// Add queues a request sent at now that must be answered within timeout.
func (m *Matcher[T]) Add(v T, now time.Time, timeout time.Duration) {
	m.queue = append(m.queue, entry[T]{value: v, deadline: now.Add(timeout), timeout: timeout})
}

// Take takes the oldest request for an answer. ok is false when nobody
// is waiting (an answer nobody asked for); late is true when the oldest
// request had already timed out. Either way the answer is not its
// request's to act on, though a late one still tells something of it (a
// capture the gateway went on with).
func (m *Matcher[T]) Take() (v T, ok, late bool) {
	if len(m.queue) == 0 {
		return v, false, false
	}
	e := m.queue[0]
	m.queue[0] = entry[T]{}
	m.queue = m.queue[1:]
	return e.value, true, e.expired
}

// Expire fails the requests whose deadline has passed and returns them.
// A failed request's tombstone is forgotten once its timeout has passed a
// second time with no late answer.
func (m *Matcher[T]) Expire(now time.Time) []T {
	var failed []T
	keep := m.queue[:0]
	for _, e := range m.queue {
		if !now.Before(e.deadline) {
			if e.expired {
				continue
			}
			failed = append(failed, e.value)
			e.expired = true
			e.deadline = now.Add(e.timeout)
		}
		keep = append(keep, e)
	}
	clear(m.queue[len(keep):])
	m.queue = keep
	return failed
}

// Close fails every pending request (the connection is gone) and empties
// the queue.
func (m *Matcher[T]) Close() []T {
	var failed []T
	for _, e := range m.queue {
		if !e.expired {
			failed = append(failed, e.value)
		}
	}
	clear(m.queue)
	m.queue = m.queue[:0]
	return failed
}

// Len counts the entries in the queue, tombstones included: while it is
// not zero, an answer may still arrive for an earlier request, so an
// owner that sends one request at a time waits for zero.
func (m *Matcher[T]) Len() int { return len(m.queue) }

// Pending counts requests still waiting for an answer (tombstones excluded).
func (m *Matcher[T]) Pending() int {
	n := 0
	for _, e := range m.queue {
		if !e.expired {
			n++
		}
	}
	return n
}

// NextDeadline is the earliest deadline in the queue, for the owner's timer.
func (m *Matcher[T]) NextDeadline() (time.Time, bool) {
	var next time.Time
	for _, e := range m.queue {
		if next.IsZero() || e.deadline.Before(next) {
			next = e.deadline
		}
	}
	return next, !next.IsZero()
}
