package actors

import (
	"github.com/asynkron/protoactor-go/actor"
)

// maxStopping is how many removed gateways' actors may be stopping at once.
//
// Proto.Actor runs each actor's turn on a goroutine of its own, and
// stopping an actor is a turn. Deleting a factory of 50,000 gateways used
// to tell all of them to stop in one supervisor turn: thousands of
// goroutines at once (4,400 for 20,000 removed in a test), each with a
// stack, and the runtime keeps every goroutine descriptor it ever made
// (480 B each; a heap profile after a churn of 50,000 held 5 MB of them,
// BENCHMARKS.md 2026-12-05, third session). Paced, the stops take a few
// hundred goroutines. The limit is generous so that actors slow to stop
// (a peer that reads nothing makes the close wait for its write deadline)
// delay other gateways' stops only when hundreds of them are slow at
// once, and then only by that deadline.
const maxStopping = 512

// stopper paces the stops of removed gateways' actors: at most maxStopping
// are told to stop and have not yet terminated; the others wait their turn,
// oldest first. It belongs to the supervisor and runs in its turns. PIDs
// are compared by pointer: Proto.Actor hands out one *PID per incarnation,
// and an actor's Terminated carries that pointer, so a later incarnation
// with the same name is never taken for an earlier one.
type stopper struct {
	order    []*actor.PID // waiting, oldest first; entries no longer in waiting are skipped
	waiting  map[*actor.PID]struct{}
	inFlight map[*actor.PID]struct{}
}

// add queues pid to be stopped and stops as many as the limit allows.
func (st *stopper) add(c actor.Context, pid *actor.PID) {
	if st.waiting == nil {
		st.waiting = make(map[*actor.PID]struct{})
	}
	st.waiting[pid] = struct{}{}
	st.order = append(st.order, pid)
	st.run(c)
}

// terminated forgets pid, stopping or still waiting (an actor may end on
// its own before its turn, by crashing), and lets the next one stop.
func (st *stopper) terminated(c actor.Context, pid *actor.PID) {
	if _, ok := st.inFlight[pid]; ok {
		delete(st.inFlight, pid)
		st.run(c)
		return
	}
	delete(st.waiting, pid)
}

// idle reports whether no stop is waiting or under way.
func (st *stopper) idle() bool { return len(st.waiting) == 0 && len(st.inFlight) == 0 }

func (st *stopper) run(c actor.Context) {
	for len(st.inFlight) < maxStopping && len(st.order) > 0 {
		pid := st.order[0]
		st.order[0] = nil
		st.order = st.order[1:]
		if _, ok := st.waiting[pid]; !ok {
			continue // ended before its turn
		}
		delete(st.waiting, pid)
		if st.inFlight == nil {
			st.inFlight = make(map[*actor.PID]struct{})
		}
		st.inFlight[pid] = struct{}{}
		c.Stop(pid) // the actor closes its socket with code 1000
	}
	if len(st.order) == 0 {
		// A mass removal's queue and table go with it: Go maps keep the
		// table of their largest size.
		st.order, st.waiting = nil, nil
	}
}
