package store

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// row is what the fake statements return: the id and a value derived from it.
type row struct {
	id  uuid.UUID
	val string
}

// fakeDB is the statements a byID runs, with their calls recorded. A
// statement waits for gate (when set) before it answers; ids in missing
// have no row.
type fakeDB struct {
	mu      sync.Mutex
	gate    chan struct{}
	started chan struct{} // gets a value when a statement starts
	missing map[uuid.UUID]bool
	ones    []uuid.UUID
	manys   [][]uuid.UUID
	manyErr error
	panics  bool
	manyCtx context.Context
}

func (f *fakeDB) wait() {
	if f.started != nil {
		f.started <- struct{}{}
	}
	if f.gate != nil {
		<-f.gate
	}
}

func (f *fakeDB) one(_ context.Context, id uuid.UUID) (row, error) {
	f.mu.Lock()
	f.ones = append(f.ones, id)
	f.mu.Unlock()
	f.wait()
	if f.missing[id] {
		return row{}, pgx.ErrNoRows
	}
	return row{id, "v-" + id.String()}, nil
}

func (f *fakeDB) many(ctx context.Context, ids []uuid.UUID) ([]row, error) {
	f.mu.Lock()
	f.manys = append(f.manys, slices.Clone(ids))
	f.manyCtx = ctx
	f.mu.Unlock()
	f.wait()
	if f.panics {
		panic("scan exploded")
	}
	if f.manyErr != nil {
		return nil, f.manyErr
	}
	var out []row
	for _, id := range ids {
		if !f.missing[id] && !slices.ContainsFunc(out, func(r row) bool { return r.id == id }) {
			out = append(out, row{id, "v-" + id.String()})
		}
	}
	return out, nil
}

func newFake(f *fakeDB) *coalescer[uuid.UUID, row] {
	return byIDOf(f.one, f.many, func(r *row) uuid.UUID { return r.id })
}

// queued waits until n lookups wait in b's queue.
func queued[K comparable, V any](t *testing.T, b *coalescer[K, V], n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.queue) == n
	}, 5*time.Second, time.Millisecond, "%d lookups never queued", n)
}

// occupy starts inFlight lookups that hold every statement slot until the
// gate opens, so that the next lookups wait.
func occupy(b *coalescer[uuid.UUID, row], f *fakeDB, out chan<- answer) []uuid.UUID {
	ids := make([]uuid.UUID, inFlight)
	for i := range ids {
		ids[i] = uuid.New()
		go lookup(b, context.Background(), ids[i], out)
		<-f.started
	}
	return ids
}

type answer struct {
	id  uuid.UUID
	v   row
	err error
}

func lookup(b *coalescer[uuid.UUID, row], ctx context.Context, id uuid.UUID, out chan<- answer) {
	v, err := b.get(ctx, id)
	out <- answer{id, v, err}
}

func TestByIDAloneRunsItsOwnStatement(t *testing.T) {
	f := &fakeDB{missing: map[uuid.UUID]bool{}}
	b := newFake(f)
	id, gone := uuid.New(), uuid.New()
	f.missing[gone] = true
	v, err := b.get(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, row{id, "v-" + id.String()}, v)
	_, err = b.get(context.Background(), gone)
	assert.ErrorIs(t, err, pgx.ErrNoRows)
	assert.Equal(t, []uuid.UUID{id, gone}, f.ones)
	assert.Empty(t, f.manys, "nothing waited, so nothing was batched")
	assert.Zero(t, b.running)
}

func TestByIDAnswersWaitersWithOneStatement(t *testing.T) {
	f := &fakeDB{gate: make(chan struct{}), started: make(chan struct{}, 10), missing: map[uuid.UUID]bool{}}
	b := newFake(f)
	out := make(chan answer, 20)
	first := occupy(b, f, out)
	// Ten more while the statement slots are taken: one of them twice, one
	// with no row.
	ids := make([]uuid.UUID, 10)
	for i := range ids {
		ids[i] = uuid.New()
	}
	ids[9] = ids[3]
	f.missing[ids[5]] = true
	for _, id := range ids {
		go lookup(b, context.Background(), id, out)
	}
	queued(t, b, len(ids))
	close(f.gate)
	got := map[uuid.UUID][]answer{}
	for range len(ids) + inFlight {
		a := <-out
		got[a.id] = append(got[a.id], a)
	}
	require.Len(t, f.manys, 1, "the waiters shared one statement")
	assert.ElementsMatch(t, ids, f.manys[0])
	assert.ElementsMatch(t, first, f.ones)
	for id, as := range got {
		for _, a := range as {
			if id == ids[5] {
				assert.ErrorIs(t, a.err, pgx.ErrNoRows)
				continue
			}
			require.NoError(t, a.err)
			assert.Equal(t, row{id, "v-" + id.String()}, a.v, "each waiter gets its own row")
		}
	}
	assert.Len(t, got[ids[3]], 2)
	b.mu.Lock()
	defer b.mu.Unlock()
	assert.Zero(t, b.running, "the slots are free again")
	assert.Empty(t, b.queue)
}

func TestByIDBatchesAreBounded(t *testing.T) {
	f := &fakeDB{gate: make(chan struct{}), started: make(chan struct{}, 10), missing: map[uuid.UUID]bool{}}
	b := newFake(f)
	out := make(chan answer, 200)
	occupy(b, f, out)
	n := maxBatch + 10
	for range n {
		go lookup(b, context.Background(), uuid.New(), out)
	}
	queued(t, b, n)
	close(f.gate)
	for range n + inFlight {
		require.NoError(t, (<-out).err)
	}
	require.Len(t, f.manys, 2)
	// The ten left over are one statement of ten, not single lookups.
	assert.ElementsMatch(t, []int{maxBatch, 10}, []int{len(f.manys[0]), len(f.manys[1])})
}

func TestByIDWaiterThatGivesUpLeavesTheQueue(t *testing.T) {
	f := &fakeDB{gate: make(chan struct{}), started: make(chan struct{}, 10)}
	b := newFake(f)
	out := make(chan answer, 1+inFlight)
	occupy(b, f, out)
	ctx, cancel := context.WithCancel(context.Background())
	go lookup(b, ctx, uuid.New(), out)
	queued(t, b, 1)
	cancel()
	a := <-out
	assert.ErrorIs(t, a.err, context.Canceled, "it returns without waiting for the statement")
	queued(t, b, 0)
	close(f.gate)
	for range inFlight {
		require.NoError(t, (<-out).err)
	}
	assert.Empty(t, f.manys, "nobody was left to batch")
	assert.Len(t, f.ones, inFlight)
}

func TestByIDStatementErrorReachesEveryWaiter(t *testing.T) {
	f := &fakeDB{gate: make(chan struct{}), started: make(chan struct{}, 10), manyErr: errors.New("connection reset")}
	b := newFake(f)
	out := make(chan answer, 4+inFlight)
	occupy(b, f, out)
	for range 4 {
		go lookup(b, context.Background(), uuid.New(), out)
	}
	queued(t, b, 4)
	close(f.gate)
	var ok, failed int
	for range 4 + inFlight {
		if err := (<-out).err; err == nil {
			ok++
		} else {
			assert.ErrorIs(t, err, f.manyErr)
			failed++
		}
	}
	assert.Equal(t, inFlight, ok, "the first ran their own statements")
	assert.Equal(t, 4, failed)
}

func TestByIDPanicWakesEveryWaiterAndFreesTheSlot(t *testing.T) {
	f := &fakeDB{gate: make(chan struct{}), started: make(chan struct{}, 10), panics: true}
	b := newFake(f)
	out := make(chan answer, 3+inFlight)
	panicked := make(chan any, 5)
	get := func(id uuid.UUID) {
		defer func() {
			if r := recover(); r != nil {
				panicked <- r
			}
		}()
		lookup(b, context.Background(), id, out)
	}
	occupy(b, f, out)
	for range 3 {
		go get(uuid.New())
	}
	queued(t, b, 3)
	close(f.gate)
	assert.Equal(t, "scan exploded", <-panicked, "the lead's panic goes on up")
	var ok, failed int
	for range 2 + inFlight {
		if err := (<-out).err; err == nil {
			ok++
		} else {
			assert.ErrorIs(t, err, errSharedPanicked)
			failed++
		}
	}
	assert.Equal(t, inFlight, ok)
	assert.Equal(t, 2, failed, "the lead's companions were answered")
	b.mu.Lock()
	assert.Zero(t, b.running, "every slot was handed back")
	b.mu.Unlock()
	f.mu.Lock()
	f.panics = false
	f.mu.Unlock()
	_, err := b.get(context.Background(), uuid.New())
	require.NoError(t, err)
}

func TestByIDStatementRunsUnderTheWaiterWithMostTime(t *testing.T) {
	f := &fakeDB{}
	b := newFake(f)
	type key struct{}
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	soon, cancelSoon := context.WithTimeout(context.WithValue(context.Background(), key{}, "soon"), time.Minute)
	defer cancelSoon()
	later, cancelLater := context.WithTimeout(context.WithValue(context.Background(), key{}, "later"), time.Hour)
	defer cancelLater()
	batch := []*waiter[uuid.UUID, row]{
		{ctx: gone, key: uuid.New(), done: make(chan struct{})},
		{ctx: soon, key: uuid.New(), done: make(chan struct{})},
		{ctx: later, key: uuid.New(), done: make(chan struct{})},
	}
	b.run(batch)
	require.NotNil(t, f.manyCtx)
	assert.NoError(t, f.manyCtx.Err())
	assert.Equal(t, "later", f.manyCtx.Value(key{}), "not the one that gave up, nor the one with less time")
	for _, w := range batch {
		require.NoError(t, w.err)
	}
	for _, w := range batch[1:] {
		select {
		case <-w.done:
		default:
			t.Fatal("a waiter was not woken")
		}
	}

	// A request without a deadline has the most time of all.
	endless := context.WithValue(context.Background(), key{}, "endless")
	batch = []*waiter[uuid.UUID, row]{
		{ctx: later, key: uuid.New(), done: make(chan struct{})},
		{ctx: endless, key: uuid.New(), done: make(chan struct{})},
	}
	b.run(batch)
	assert.Equal(t, "endless", f.manyCtx.Value(key{}))
}
