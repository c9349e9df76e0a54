package api

import (
	"sync"

	"github.com/google/uuid"
)

// order serialises, per gateway, a change's database write with the
// runtime message that follows it. Two requests on one gateway (a connect
// and a disconnect, two PUTs of its url) each wrote, then each told the
// runtime; the two messages could arrive in the other order than the
// writes committed, and the runtime kept the older wish until the next
// reconciliation. Under the gateway's lock, the runtime is told in the
// order the database was written. Other gateways never wait: each id has
// a lock of its own, which lives while someone holds or waits for it.
type order struct {
	mu    sync.Mutex
	locks map[uuid.UUID]*orderLock
}

type orderLock struct {
	sync.Mutex
	users int // holding or waiting; guarded by order.mu
}

// lock takes id's lock and returns its release.
func (o *order) lock(id uuid.UUID) (unlock func()) {
	o.mu.Lock()
	if o.locks == nil {
		o.locks = make(map[uuid.UUID]*orderLock)
	}
	l := o.locks[id]
	if l == nil {
		l = &orderLock{}
		o.locks[id] = l
	}
	l.users++
	o.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		o.mu.Lock()
		if l.users--; l.users == 0 {
			delete(o.locks, id)
		}
		o.mu.Unlock()
	}
}

// await waits until whoever holds id's lock, or waits for it, has let
// go; it takes nothing when no one does (a delete of 50,000 gateways
// makes no lock of its own for each).
func (o *order) await(id uuid.UUID) {
	o.mu.Lock()
	l := o.locks[id]
	if l == nil {
		o.mu.Unlock()
		return
	}
	l.users++
	o.mu.Unlock()
	l.Lock()
	l.Unlock()
	o.mu.Lock()
	if l.users--; l.users == 0 {
		delete(o.locks, id)
	}
	o.mu.Unlock()
}
