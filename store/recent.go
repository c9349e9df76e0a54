package store

import (
	"context"
	"errors"
	"sync"
	"time"
	"unsafe"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ctcgw/gatewayd"
)

// recent keeps the rows that GETs by id read lately, each for ttl, so
// that the dashboards and scripts that poll the same factories and
// gateways again and again are answered without a round trip (issue #11:
// a GET by id cost PostgreSQL as much as gatewayd's whole request).
//
// It can be right because gatewayd is the only process that serves a
// database (the instance lock) and every write of these rows goes
// through this package, which forgets a row after its write commits and
// before the write's caller learns of it: a GET that begins after a
// write's answer never sees the row as it was before. A read that was
// under way while a row was forgotten does not keep what it read (gen).
// A write made behind gatewayd's back (SQL by hand, a restore) is seen
// within ttl.
//
// A write whose outcome is unknown (its deadline passed or its connection
// broke while PostgreSQL may still run it: pgx cuts its connection and
// sends a cancel request, which may not arrive) can commit after it was
// forgotten, and a read between the two would keep the row as it was
// (found by an audit, helper 1). After such a write nothing of its kind
// is kept for unsureFor; one that commits later still is seen within ttl
// of its commit, as a write behind gatewayd's back.
//
// Bounded: a row larger than maxKept is never kept, and past limit bytes
// the oldest generation of rows is let go (the map is replaced, which
// also gives its memory back); every sweepEvery the rows past their time
// are dropped. Values are shared among the callers that read them: a
// caller must not change what a returned value's slices or pointers
// point at.
type recent[V any] struct {
	ttl      time.Duration
	limit    int
	size     func(*V) int
	overhead int // what a row costs beyond size: see newRecent

	mu     sync.RWMutex
	gen    uint64 // moves with every write (written, writtenAll)
	rows   map[uuid.UUID]kept[V]
	bytes  int
	swept  time.Time
	unsure time.Time // nothing is kept before it (a write's outcome unknown)
}

type kept[V any] struct {
	v     V
	until time.Time
	size  int
}

const (
	// maxKept: rows larger than this (their metadata may be up to a MiB)
	// are read from the database every time.
	maxKept = 16 << 10
	// keptLimit is what one kind of row may hold in all: ~16,000
	// gateways of ordinary metadata.
	keptLimit = 8 << 20
	// unsureFor is how long nothing of a kind is kept after a write of it
	// whose outcome is unknown: past the 15 s pgx gives a cut
	// connection's cancel request, so a statement still running then was
	// waiting for a lock all that time.
	unsureFor = 20 * time.Second
)

// newRecent makes a cache of rows kept for ttl; nil (keeping nothing)
// when ttl is not positive.
func newRecent[V any](ttl time.Duration, size func(*V) int) *recent[V] {
	if ttl <= 0 {
		return nil
	}
	// A row costs its map slot (the key and kept[V], at a map's load of
	// at most 7/8) and its fields' own allocations (strings, times and
	// pointers, each rounded up to its size class), which size counts by
	// their lengths only: 128 bytes cover them (an audit, helper 1,
	// measured 399 bytes of heap for an ordinary gateway counted 329 with
	// a flat 256).
	overhead := int(unsafe.Sizeof(kept[V]{})+unsafe.Sizeof(uuid.UUID{}))*8/7 + 128
	return &recent[V]{ttl: ttl, limit: keptLimit, size: size, overhead: overhead, rows: map[uuid.UUID]kept[V]{}}
}

// get answers id from the rows kept, else from load, whose answer is then
// kept unless a write came while it ran.
func (r *recent[V]) get(ctx context.Context, id uuid.UUID, load func(context.Context, uuid.UUID) (V, error)) (V, error) {
	if r == nil {
		return load(ctx, id)
	}
	now := time.Now()
	r.mu.RLock()
	k, ok := r.rows[id]
	gen := r.gen
	r.mu.RUnlock()
	if ok && now.Before(k.until) {
		return k.v, nil
	}
	v, err := load(ctx, id)
	if err != nil {
		return v, err
	}
	r.keep(id, v, gen, now)
	return v, nil
}

// peek answers id from the rows kept, if it is there and in its time.
func (r *recent[V]) peek(id uuid.UUID) (V, bool) {
	if r == nil {
		var zero V
		return zero, false
	}
	r.mu.RLock()
	k, ok := r.rows[id]
	r.mu.RUnlock()
	if !ok || !time.Now().Before(k.until) {
		var zero V
		return zero, false
	}
	return k.v, true
}

// keep stores v, read from a snapshot taken after now, unless a write
// came since gen was seen.
func (r *recent[V]) keep(id uuid.UUID, v V, gen uint64, now time.Time) {
	n := r.overhead + r.size(&v)
	if n > maxKept {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gen != gen || now.Before(r.unsure) {
		return
	}
	if now.Sub(r.swept) >= sweepEvery(r.ttl) {
		r.sweep(now)
	}
	if r.bytes+n > r.limit {
		// Full of rows still in their time: start again rather than scan
		// for the oldest on every read.
		r.rows, r.bytes = map[uuid.UUID]kept[V]{}, 0
	}
	if old, ok := r.rows[id]; ok {
		r.bytes -= old.size
	}
	r.rows[id] = kept[V]{v: v, until: now.Add(r.ttl), size: n}
	r.bytes += n
}

// sweepEvery is how often the rows past their time are dropped.
func sweepEvery(ttl time.Duration) time.Duration {
	return max(10*ttl, time.Second)
}

// sweep keeps only the rows still in their time, in a new map: a map
// never shrinks, and a burst of reads of many rows must not hold its
// peak for good. Called with mu held.
func (r *recent[V]) sweep(now time.Time) {
	r.swept = now
	live := make(map[uuid.UUID]kept[V], len(r.rows)/2)
	bytes := 0
	for id, k := range r.rows {
		if now.Before(k.until) {
			live[id] = k
			bytes += k.size
		}
	}
	r.rows, r.bytes = live, bytes
}

// written drops the rows of ids, and keeps nothing a read that was under
// way meanwhile brings back. Called when a write of them returned err
// (nil: committed), before its caller is answered; when err leaves the
// outcome unknown, nothing of the kind is kept for unsureFor.
func (r *recent[V]) written(err error, ids ...uuid.UUID) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.gen++
	if unknownOutcome(err) {
		r.unsure = time.Now().Add(unsureFor)
	}
	for _, id := range ids {
		if k, ok := r.rows[id]; ok {
			r.bytes -= k.size
			delete(r.rows, id)
		}
	}
	r.mu.Unlock()
}

// writtenAll drops every row: after a cascade (a factory's or an
// organization's delete) that changed rows this process did not list.
// err is the write's, as for written.
func (r *recent[V]) writtenAll(err error) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.gen++
	if unknownOutcome(err) {
		r.unsure = time.Now().Add(unsureFor)
	}
	r.rows, r.bytes = map[uuid.UUID]kept[V]{}, 0
	r.mu.Unlock()
}

// unknownOutcome says whether a write that returned err may still have
// committed, or commit later. Known: success, PostgreSQL's own error
// (the statement or transaction failed), no row matched, an error pgx
// raised before it sent anything, and the domain's errors, which the
// writes return from inside their transactions (rolled back). Anything
// else (a deadline, a broken connection, a failed commit) is unknown.
func unknownOutcome(err error) bool {
	if err == nil || errors.Is(err, pgx.ErrNoRows) || pgconn.SafeToRetry(err) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return false
	}
	for _, known := range []error{gatewayd.ErrNotFound, gatewayd.ErrConflict, gatewayd.ErrInvalidReference, ErrPasswordRequired} {
		if errors.Is(err, known) {
			return false
		}
	}
	return true
}
