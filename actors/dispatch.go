package actors

import "sync"

const (
	// dispatchThroughput is Proto.Actor's default: messages a turn.
	dispatchThroughput = 300
	// dispatchIdle bounds the idle workers: ~8 KiB of stack each.
	dispatchIdle = 64
)

// workers is the actors' dispatcher: it runs each mailbox's turn on a
// goroutine that ran one before, when one is idle.
//
// Proto.Actor's default dispatcher starts a new goroutine for every turn
// of every mailbox. A gateway actor's turn goes deep (state change, event,
// log line, timers), so each new goroutine grew its stack by copying it,
// two or three times a turn: 8 % of gatewayd's CPU in a profile of the
// gateway create storm (BENCHMARKS.md, 2026-12-06 third session). A reused
// goroutine keeps the stack it grew.
//
// A turn never waits for a worker: with none idle, Schedule starts a new
// goroutine as the default dispatcher does, so an actor whose turn is
// slow cannot hold up another's. At most maxIdle workers wait for work;
// one more ends when its turn is done.
type workers struct {
	throughput int
	maxIdle    int

	mu     sync.Mutex
	idle   []chan func() // LIFO: the most recently used stack first
	closed bool
}

func newWorkers(throughput, maxIdle int) *workers {
	return &workers{throughput: throughput, maxIdle: maxIdle}
}

// Throughput is how many messages a mailbox handles in one turn.
func (w *workers) Throughput() int { return w.throughput }

// Schedule runs fn on an idle worker, or on a new goroutine.
func (w *workers) Schedule(fn func()) {
	w.mu.Lock()
	if n := len(w.idle); n > 0 {
		ch := w.idle[n-1]
		w.idle[n-1] = nil
		w.idle = w.idle[:n-1]
		w.mu.Unlock()
		ch <- fn // the worker waits on it, and its buffer holds one: never blocks
		return
	}
	w.mu.Unlock()
	go w.work(fn)
}

// work runs fn, then waits for the next turn while there is room among
// the idle, until close.
func (w *workers) work(fn func()) {
	ch := make(chan func(), 1)
	for fn != nil {
		fn()
		fn = nil // an idle worker keeps no mailbox reachable
		w.mu.Lock()
		if w.closed || len(w.idle) >= w.maxIdle {
			w.mu.Unlock()
			return
		}
		w.idle = append(w.idle, ch)
		w.mu.Unlock()
		fn = <-ch // nil once closed
	}
}

// close ends the idle workers; a turn scheduled later still runs, on a
// goroutine that ends with it.
func (w *workers) close() {
	w.mu.Lock()
	w.closed = true
	idle := w.idle
	w.idle = nil
	w.mu.Unlock()
	for _, ch := range idle {
		close(ch)
	}
}
