package store

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// coalescer shares statements among concurrent requests of one kind: GETs
// by id of a table, pages of a table's lists, and some writes (writes.go,
// which says what a shared write keeps of a lone one). The rest of this
// comment is about reads. While fewer than inFlight statements of its
// kind run, a read runs its own, as if the coalescer were not there. Past
// that it waits, and when a statement is done, every read that waited
// meanwhile is answered by one statement for all their keys (many), run
// by the first of them.
//
// Under load this turns many round trips into few: PostgreSQL parses,
// plans and answers one statement per batch instead of one per request,
// and gatewayd writes and reads one message per batch (BENCHMARKS.md,
// 2026-12-06 second session: GET by id at 32 clients nearly twice the
// requests per second, PostgreSQL's CPU per request down by 60 %). A
// quiet service pays nothing, and a read waits at most one statement
// before its own starts. Each statement is a snapshot taken after every
// read it answers began, so a read sees every write committed before it
// started, as it would with a statement of its own.
type coalescer[K comparable, V any] struct {
	// one answers a single key; a missing row is pgx.ErrNoRows.
	one func(ctx context.Context, key K) (V, error)
	// many answers several keys (perhaps repeated) with one round trip;
	// the answer function then gives each key's value.
	many func(ctx context.Context, keys []K) (func(K) (V, error), error)

	mu      sync.Mutex
	running int // statements in flight
	queue   []*waiter[K, V]

	// shared counts the statements that answered more than one request,
	// retried the shared writes that failed and were run request by
	// request (writer); tests read them.
	shared, retried atomic.Int64
}

// inFlight is how many statements of one kind run before reads wait for
// the next. Measured at 4–64 clients on two cores (BENCHMARKS.md): one
// gave the most at 32 and more clients but cost 30 % at 4, where two
// cost 10 %; four gained least under load.
const inFlight = 2

// maxBatch bounds the keys one statement answers.
const maxBatch = 64

// errSharedPanicked answers the requests of a statement whose run
// panicked.
var errSharedPanicked = errors.New("shared statement failed")

// waiter is one waiting read. done is closed when its answer (v, err) is
// set, or when it must run batch (lead) and answer the others.
type waiter[K comparable, V any] struct {
	ctx   context.Context
	key   K
	done  chan struct{}
	lead  bool
	batch []*waiter[K, V]
	v     V
	err   error
}

// get answers key: with a statement of its own when fewer than inFlight
// statements of this kind run, else with the next statement, shared with
// the reads that wait for it too, which this read may be made to run.
func (c *coalescer[K, V]) get(ctx context.Context, key K) (V, error) {
	c.mu.Lock()
	if c.running < inFlight {
		c.running++
		c.mu.Unlock()
		defer c.next()
		return c.one(ctx, key)
	}
	w := &waiter[K, V]{ctx: ctx, key: key, done: make(chan struct{})}
	c.queue = append(c.queue, w)
	c.mu.Unlock()
	select {
	case <-w.done:
	case <-ctx.Done():
		c.mu.Lock()
		if i := slices.Index(c.queue, w); i >= 0 {
			c.queue = slices.Delete(c.queue, i, i+1)
			c.mu.Unlock()
			var zero V
			return zero, ctx.Err()
		}
		c.mu.Unlock()
		// Taken into a statement already: its answer comes.
		<-w.done
	}
	if w.lead {
		defer c.next()
		c.run(w.batch)
	}
	return w.v, w.err
}

// next hands a finished statement's slot on: to the waiters as one batch,
// led by the first of them, or back free when nobody waits.
func (c *coalescer[K, V]) next() {
	c.mu.Lock()
	if len(c.queue) == 0 {
		c.running--
		c.mu.Unlock()
		return
	}
	n := min(len(c.queue), maxBatch)
	batch := slices.Clone(c.queue[:n])
	c.queue = slices.Delete(c.queue, 0, n)
	c.mu.Unlock()
	lead := batch[0]
	lead.lead, lead.batch = true, batch
	close(lead.done)
}

// run answers a batch with one statement. The lead (batch[0]) reads its
// own answer when run returns; every other waiter is woken, even if the
// statement's code panics.
func (c *coalescer[K, V]) run(batch []*waiter[K, V]) {
	answered := false
	defer func() {
		for i, w := range batch {
			if !answered {
				w.err = errSharedPanicked
			}
			if i > 0 {
				close(w.done)
			}
		}
	}()
	ctx := runUnder(batch)
	if len(batch) == 1 {
		batch[0].v, batch[0].err = c.one(ctx, batch[0].key)
		answered = true
		return
	}
	c.shared.Add(1)
	keys := make([]K, len(batch))
	for i, w := range batch {
		keys[i] = w.key
	}
	answer, err := c.many(ctx, keys)
	for _, w := range batch {
		if err != nil {
			w.err = err
		} else {
			w.v, w.err = answer(w.key)
		}
	}
	answered = true
}

// runUnder picks the request a batch's statement runs under: of those
// still on, the one with the latest deadline. A waiter that gave up, or
// whose time is nearly out, must not fail the others.
func runUnder[K comparable, V any](batch []*waiter[K, V]) context.Context {
	ctx := batch[0].ctx
	var latest time.Time
	found := false
	for _, w := range batch {
		if w.ctx.Err() != nil {
			continue
		}
		d, ok := w.ctx.Deadline()
		if !ok {
			return w.ctx // no deadline at all: the latest there is
		}
		if !found || d.After(latest) {
			ctx, latest, found = w.ctx, d, true
		}
	}
	return ctx
}

// byID makes the coalescer of a table's GETs by id: one reads a live row,
// many the live rows of several ids (WHERE id = ANY($1)), leaving the
// missing out.
func byID[V any](pool *pgxpool.Pool, table, columns string, scan pgx.RowToFunc[V], idOf func(*V) uuid.UUID) *coalescer[uuid.UUID, V] {
	oneSQL := `SELECT ` + columns + ` FROM ` + table + ` WHERE id = $1 AND deleted_at IS NULL`
	manySQL := `SELECT ` + columns + ` FROM ` + table + ` WHERE id = ANY($1) AND deleted_at IS NULL`
	return byIDOf(func(ctx context.Context, id uuid.UUID) (V, error) {
		rows, _ := pool.Query(ctx, oneSQL, id)
		return pgx.CollectExactlyOneRow(rows, scan)
	}, func(ctx context.Context, ids []uuid.UUID) ([]V, error) {
		rows, _ := pool.Query(ctx, manySQL, ids)
		return pgx.CollectRows(rows, scan)
	}, idOf)
}

// byIDOf makes a coalescer of lookups by id from a single-row read and a
// read of many rows.
func byIDOf[V any](one func(context.Context, uuid.UUID) (V, error), many func(context.Context, []uuid.UUID) ([]V, error),
	idOf func(*V) uuid.UUID) *coalescer[uuid.UUID, V] {
	return &coalescer[uuid.UUID, V]{one: one, many: func(ctx context.Context, ids []uuid.UUID) (func(uuid.UUID) (V, error), error) {
		rows, err := many(ctx, ids)
		if err != nil {
			return nil, err
		}
		return func(id uuid.UUID) (V, error) {
			for i := range rows {
				if idOf(&rows[i]) == id {
					return rows[i], nil
				}
			}
			var zero V
			return zero, pgx.ErrNoRows
		}, nil
	}}
}
