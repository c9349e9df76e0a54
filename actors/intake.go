package actors

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// intake holds the readers back while the readings pipeline is full. It
// counts the bytes of readings between the sockets and the database: the
// frames being read and then waiting in their actors' mailboxes (a
// reservation each, carried by a ledger), the gateways' text waiting for
// the processor, and the packed samples waiting for the writer. A burst
// of readings from 1,000 gateways arrives faster than two cores decode,
// analyse and store it; without a hold it piles up in the heap (100 MB
// and more, which the collector lets double), and the processor's queue
// overflows into FAILED readings. Held readers do not read, so the frames
// wait in the sockets and TCP pushes back on the gateways instead.
//
// A reader waits in turn (first come, first served) and at most maxWait:
// it must still answer pings within the pong timeout, and a database that
// is down must not stop every gateway. Past that it reads anyway; the
// processor's and the writer's own bounds still hold.
type intake struct {
	limit int64

	mu      sync.Mutex
	bytes   int64
	waiters list.List // of *intakeWaiter
	// stuck is what the frames waiting to grow (grow) hold already. When
	// it is all the intake counts, nothing else will give bytes back and
	// none of them fits: the first goes on over the limit, as one larger
	// frame passes alone (unstickLocked).
	stuck int64
}

type intakeWaiter struct {
	n     int64
	held  int64         // a growing frame's reservation so far; 0 for a frame not begun
	ready chan struct{} // closed when n is reserved for it
}

func newIntake(limit int64) *intake { return &intake{limit: limit} }

// add counts n more bytes in the pipeline (fewer if negative); it never
// blocks. Room made lets waiting readers in, in turn.
func (in *intake) add(n int64) {
	if in == nil || n == 0 {
		return
	}
	in.mu.Lock()
	in.bytes += n
	if n < 0 {
		in.wakeLocked()
	}
	in.mu.Unlock()
}

func (in *intake) fits(n int64) bool { return in.bytes <= 0 || in.bytes+n <= in.limit }

func (in *intake) wakeLocked() {
	for e := in.waiters.Front(); e != nil; e = in.waiters.Front() {
		w := e.Value.(*intakeWaiter)
		if !in.fits(w.n) {
			break
		}
		in.letInLocked(e)
	}
	in.unstickLocked()
}

// letInLocked reserves the waiter's bytes and lets it go on.
func (in *intake) letInLocked(e *list.Element) {
	w := e.Value.(*intakeWaiter)
	in.bytes += w.n
	in.stuck -= w.held
	in.waiters.Remove(e)
	close(w.ready)
}

// unstickLocked lets the first frame waiting to grow go on when every
// byte counted is held by frames waiting to grow: 32 frames let in at
// their first reserve fill 8 MiB, and each then waited for room only
// another could make (until intakeWait).
func (in *intake) unstickLocked() {
	if in.stuck <= 0 || in.bytes > in.stuck {
		return
	}
	if e := in.waiters.Front(); e != nil && e.Value.(*intakeWaiter).held > 0 {
		in.letInLocked(e)
	}
}

// admit reserves n bytes for a frame about to be read: at once while the
// pipeline has room, else when room is made and the readers before it are
// in, or after maxWait regardless. It reports false, reserving nothing,
// when ctx ends first.
func (in *intake) admit(ctx context.Context, n int64, maxWait time.Duration) bool {
	return in.wait(ctx, n, 0, maxWait)
}

// grow reserves n more bytes for a frame already let in (holding held so
// far) that outgrew its buffer, as admit does, but ahead of the readers
// still waiting to begin theirs: a frame in hand holds its buffer while
// it waits, so it goes first. A large frame counted only its first
// reserve whatever it grew to, and 32 gateways' 4 MiB readings held
// 128 MiB where 8 MiB was the bound (found by an audit, helper 10).
func (in *intake) grow(ctx context.Context, n, held int64, maxWait time.Duration) bool {
	return in.wait(ctx, n, max(held, 1), maxWait)
}

func (in *intake) wait(ctx context.Context, n, held int64, maxWait time.Duration) bool {
	if in == nil {
		return true
	}
	in.mu.Lock()
	if (held > 0 || in.waiters.Len() == 0) && in.fits(n) {
		in.bytes += n
		in.mu.Unlock()
		return true
	}
	w := &intakeWaiter{n: n, held: held, ready: make(chan struct{})}
	var e *list.Element
	if held > 0 {
		e = in.waiters.PushFront(w)
		in.stuck += held
		in.unstickLocked()
	} else {
		e = in.waiters.PushBack(w)
	}
	in.mu.Unlock()
	timer := time.NewTimer(maxWait)
	defer timer.Stop()
	var cancelled bool
	select {
	case <-w.ready:
		return true
	case <-timer.C:
	case <-ctx.Done():
		cancelled = true
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	select {
	case <-w.ready: // let in meanwhile
		if cancelled {
			in.bytes -= n
			in.wakeLocked()
		}
		return !cancelled
	default:
	}
	in.waiters.Remove(e)
	in.stuck -= held
	if !cancelled {
		in.bytes += n // waited long enough: in anyway
	}
	in.wakeLocked() // the next in line may fit now
	return !cancelled
}

// held is the bytes counted, for tests.
func (in *intake) held() int64 {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.bytes
}

// ledger carries the intake reservations of one connection's frames from
// its reader to its actor. A reading's frame stays counted in the intake
// until the actor has turned it into a processor job (which counts its
// own bytes), not only until the reader has handed it over: frames
// waiting in the actors' mailboxes were counted nowhere, so while actors
// lagged behind a burst more readers were let in, and when the actors
// caught up the processor's backlog overflowed into FAILED "processing
// overloaded" readings (about one burst of 2,000 in six).
//
// When the connection is torn down its frames no longer become jobs (the
// actor drops frames of an old connection), so close gives back whatever
// is still held, and a frame handled or handed over after that gives
// back nothing more.
type ledger struct {
	in *intake

	mu      sync.Mutex
	closed  bool
	pending int64
}

func newLedger(in *intake) *ledger { return &ledger{in: in} }

// hold moves n reserved bytes of a frame about to be handed to the actor
// onto the ledger. It reports false, taking nothing, once the ledger is
// closed: the caller gives them back itself.
func (l *ledger) hold(n int64) bool {
	if l == nil || n == 0 {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.pending += n
	return true
}

// done gives back n bytes held for a frame the actor has handled.
func (l *ledger) done(n int64) {
	if l == nil || n == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.pending -= n
		l.in.add(-n)
	}
}

// close gives back everything still held; later holds and dones are
// no-ops.
func (l *ledger) close() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		l.in.add(-l.pending)
		l.pending = 0
	}
}
