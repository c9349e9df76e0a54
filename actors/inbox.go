package actors

import (
	"context"
	"sync"

	"golang.org/x/sync/semaphore"
)

// inboxFloor is what a connection's decoded frames may hold while they
// wait for its actor before they draw on the fleet's share (in the
// inbox's units: a frame's bytes plus frameOverhead). An honest gateway's
// traffic (a login answer, a sensor list, a round of temperatures) fits
// in it, so it never waits for the share hostile peers fill.
const inboxFloor = 128 << 10

// defaultFleetInboxBytes is the fleet's share: what all connections'
// waiting frames may hold together past their floors.
const defaultFleetInboxBytes = 32 << 20

// inboxShare bounds what one connection's frames hold together with every
// other connection's. The inbox (InboxBytes) bounds one connection; a
// frame that ends within a small buffer never waits for the reading
// intake, so nothing else bounded a fleet: each of a hundred gateways
// whose actors had fallen behind filled its inbox with decoded 30 KB
// frames, 106 MiB in all, ~1 MiB more for every other such gateway
// (found by an audit, helper 1). A frame is charged to the connection's
// floor while that has room, else to the fleet's share, where the reader
// waits (and TCP pushes back on the peer) while the share is full. Large
// frames are not charged: the reading intake counts them, fleet-wide.
//
// The actor gives a frame's charge back as it handles it, in the order
// the reader charged them (one reader, one mailbox), so charges are
// queued here and the frame does not carry them. When the connection is
// torn down its frames are dropped unhandled: close gives back what they
// hold of the share, and later charges and gives are no-ops.
type inboxShare struct {
	fleet *semaphore.Weighted // nil: no fleet bound

	mu      sync.Mutex
	closed  bool
	floor   int64         // what the queued frames hold of the floor
	shared  int64         // what they hold of the fleet's share
	charges []inboxCharge // per frame, oldest first
}

type inboxCharge struct{ floor, shared int64 }

func newInboxShare(fleet *semaphore.Weighted) *inboxShare { return &inboxShare{fleet: fleet} }

// charge counts a frame of cost, large (exempt) or not, waiting for the
// fleet's share when its floor has no room; it reports false when ctx
// ended first, or the share is closed, taking nothing.
func (s *inboxShare) charge(ctx context.Context, cost int64, large bool) bool {
	if s == nil {
		return true
	}
	var c inboxCharge
	s.mu.Lock()
	switch {
	case large || s.fleet == nil:
	case s.floor+cost <= inboxFloor:
		c.floor = cost
	default:
		c.shared = cost
	}
	if c.shared > 0 {
		s.mu.Unlock()
		if err := s.fleet.Acquire(ctx, cost); err != nil {
			return false
		}
		s.mu.Lock()
	}
	if s.closed {
		s.mu.Unlock()
		if c.shared > 0 {
			s.fleet.Release(c.shared)
		}
		return false
	}
	s.floor += c.floor
	s.shared += c.shared
	s.charges = append(s.charges, c)
	s.mu.Unlock()
	return true
}

// done gives back the charge of the oldest frame not yet handled.
func (s *inboxShare) done() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || len(s.charges) == 0 {
		return
	}
	c := s.charges[0]
	s.charges[0] = inboxCharge{}
	s.charges = s.charges[1:]
	if len(s.charges) == 0 {
		s.charges = nil // let the emptied array go
	}
	s.floor -= c.floor
	s.shared -= c.shared
	if c.shared > 0 {
		s.fleet.Release(c.shared)
	}
}

// close gives back everything the connection's frames hold of the share.
func (s *inboxShare) close() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	if s.shared > 0 {
		s.fleet.Release(s.shared)
	}
	s.floor, s.shared, s.charges = 0, 0, nil
}
