package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// kRow is a stand-in for a factory or gateway: its text is its size.
type kRow struct{ text string }

func rowSize(r *kRow) int { return len(r.text) }

// loads counts the reads that reached the "database" and answers each
// with what the database holds now.
type loads struct {
	n  int
	db map[uuid.UUID]string
}

func (l *loads) load(_ context.Context, id uuid.UUID) (kRow, error) {
	l.n++
	v, ok := l.db[id]
	if !ok {
		return kRow{}, errors.New("no rows")
	}
	return kRow{v}, nil
}

func TestRecentAnswersFromWhatItKeptUntilItsTime(t *testing.T) {
	r := newRecent(time.Hour, rowSize)
	id := uuid.New()
	l := &loads{db: map[uuid.UUID]string{id: "a"}}
	ctx := context.Background()
	_, ok := r.peek(id)
	assert.False(t, ok, "nothing kept before a read")
	for range 3 {
		v, err := r.get(ctx, id, l.load)
		require.NoError(t, err)
		assert.Equal(t, "a", v.text)
	}
	assert.Equal(t, 1, l.n, "the second and third reads were kept answers")
	v, ok := r.peek(id)
	assert.True(t, ok)
	assert.Equal(t, "a", v.text)

	// Past its time the row is read again.
	r.mu.Lock()
	k := r.rows[id]
	k.until = time.Now().Add(-time.Millisecond)
	r.rows[id] = k
	r.mu.Unlock()
	l.db[id] = "b"
	_, ok = r.peek(id)
	assert.False(t, ok, "a row past its time is not peeked")
	v, err := r.get(ctx, id, l.load)
	require.NoError(t, err)
	assert.Equal(t, "b", v.text)
	assert.Equal(t, 2, l.n)
}

func TestRecentKeepsNoMissNorError(t *testing.T) {
	r := newRecent(time.Hour, rowSize)
	id := uuid.New()
	l := &loads{db: map[uuid.UUID]string{}}
	for range 2 {
		_, err := r.get(context.Background(), id, l.load)
		require.Error(t, err)
	}
	assert.Equal(t, 2, l.n, "a row not found is asked for again: it may be created next")
}

func TestRecentForgetsWhatIsWritten(t *testing.T) {
	r := newRecent(time.Hour, rowSize)
	a, b := uuid.New(), uuid.New()
	l := &loads{db: map[uuid.UUID]string{a: "a1", b: "b1"}}
	ctx := context.Background()
	_, _ = r.get(ctx, a, l.load)
	_, _ = r.get(ctx, b, l.load)

	l.db[a] = "a2"
	r.forget(a)
	va, _ := r.get(ctx, a, l.load)
	vb, _ := r.get(ctx, b, l.load)
	assert.Equal(t, "a2", va.text, "a forgotten row is read again")
	assert.Equal(t, "b1", vb.text, "another row stays kept")
	assert.Equal(t, 3, l.n)

	l.db[a], l.db[b] = "a3", "b3"
	r.forgetAll()
	va, _ = r.get(ctx, a, l.load)
	vb, _ = r.get(ctx, b, l.load)
	assert.Equal(t, []string{"a3", "b3"}, []string{va.text, vb.text})
}

// A read under way while its row is written read the row as it was; it
// must not keep that for the reads that come after the write's answer.
func TestRecentDoesNotKeepAReadThatAWriteOvertook(t *testing.T) {
	r := newRecent(time.Hour, rowSize)
	id := uuid.New()
	db := "old"
	ctx := context.Background()
	v, err := r.get(ctx, id, func(context.Context, uuid.UUID) (kRow, error) {
		read := db // the read's snapshot, taken before the write commits
		db = "new" // the write commits and forgets, before the read returns
		r.forget(id)
		return kRow{read}, nil
	})
	require.NoError(t, err)
	assert.Equal(t, "old", v.text, "the read itself answers what it read")
	v, err = r.get(ctx, id, func(context.Context, uuid.UUID) (kRow, error) { return kRow{db}, nil })
	require.NoError(t, err)
	assert.Equal(t, "new", v.text, "what the overtaken read saw was not kept")
}

func TestRecentIsBounded(t *testing.T) {
	r := newRecent(time.Hour, rowSize)
	r.limit = 10 * (keptOverhead + 100)
	l := &loads{db: map[uuid.UUID]string{}}
	ctx := context.Background()

	big := uuid.New()
	l.db[big] = strings.Repeat("x", maxKept)
	_, _ = r.get(ctx, big, l.load)
	_, _ = r.get(ctx, big, l.load)
	assert.Equal(t, 2, l.n, "a row past maxKept is never kept")
	assert.Zero(t, r.bytes)

	for range 25 {
		id := uuid.New()
		l.db[id] = strings.Repeat("y", 100)
		_, _ = r.get(ctx, id, l.load)
		assert.LessOrEqual(t, r.bytes, r.limit)
		assert.LessOrEqual(t, len(r.rows), 10)
	}
	assert.Equal(t, r.bytes, len(r.rows)*(keptOverhead+100), "bytes counts what the rows hold")
}

func TestRecentSweepsRowsPastTheirTime(t *testing.T) {
	r := newRecent(10*time.Millisecond, rowSize)
	l := &loads{db: map[uuid.UUID]string{}}
	ctx := context.Background()
	for range 100 {
		id := uuid.New()
		l.db[id] = "z"
		_, _ = r.get(ctx, id, l.load)
	}
	require.Len(t, r.rows, 100)
	// The next keep after sweepEvery drops every row past its time.
	r.mu.Lock()
	r.swept = time.Now().Add(-2 * sweepEvery(r.ttl))
	for id, k := range r.rows {
		k.until = time.Now().Add(-time.Millisecond)
		r.rows[id] = k
	}
	r.mu.Unlock()
	id := uuid.New()
	l.db[id] = "w"
	_, _ = r.get(ctx, id, l.load)
	assert.Len(t, r.rows, 1)
	assert.Equal(t, keptOverhead+1, r.bytes)
}

func TestNoRecentWithoutATTL(t *testing.T) {
	r := newRecent(0, rowSize)
	require.Nil(t, r)
	id := uuid.New()
	l := &loads{db: map[uuid.UUID]string{id: "a"}}
	for range 2 {
		v, err := r.get(context.Background(), id, l.load)
		require.NoError(t, err)
		assert.Equal(t, "a", v.text)
	}
	assert.Equal(t, 2, l.n)
	_, ok := r.peek(id)
	assert.False(t, ok)
	r.forget(id) // a nil cache forgets nothing and does not panic
	r.forgetAll()
}
