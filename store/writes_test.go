package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// put is a fake write: set row id to val.
type put struct {
	id  uuid.UUID
	val string
}

// fakeWrites records the statements a writer runs; manyErr fails the
// shared one, as PostgreSQL rejects one that holds rejects, and ids in
// missing have no row.
type fakeWrites struct {
	mu      sync.Mutex
	ones    []string
	manys   [][]string
	manyErr error
	rejects uuid.UUID
	missing map[uuid.UUID]bool
}

func (f *fakeWrites) writer() *coalescer[*put, row] {
	return writer(func(_ context.Context, p *put) (row, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.ones = append(f.ones, p.val)
		if p.id == f.rejects {
			return row{}, &pgconn.PgError{Code: "23505", Message: "duplicate key value"}
		}
		if f.missing[p.id] {
			return row{}, pgx.ErrNoRows
		}
		return row{p.id, p.val}, nil
	}, func(_ context.Context, ps []*put) ([]row, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		var vals []string
		var out []row
		manyErr := f.manyErr
		for _, p := range ps {
			vals = append(vals, p.val)
			if p.id == f.rejects {
				manyErr = &pgconn.PgError{Code: "23505", Message: "duplicate key value"}
			}
			if !f.missing[p.id] {
				out = append(out, row{p.id, p.val})
			}
		}
		f.manys = append(f.manys, vals)
		if manyErr != nil {
			return nil, manyErr
		}
		return out, nil
	}, func(p *put) uuid.UUID { return p.id }, func(r *row) uuid.UUID { return r.id })
}

// batch runs puts as one batch of the coalescer and returns each answer.
func (f *fakeWrites) batch(t *testing.T, ps ...*put) ([]row, []error, error) {
	t.Helper()
	return answerAll(context.Background(), f.writer(), ps)
}

// One statement for distinct rows; a second write of a row runs alone
// after it, in the order asked; a row the statement did not return is
// not found.
func TestWriterSharesDistinctRowsAndRunsRepeatsAfter(t *testing.T) {
	t.Parallel()
	a, b, gone := uuid.New(), uuid.New(), uuid.New()
	f := &fakeWrites{missing: map[uuid.UUID]bool{gone: true}}
	got, errs, err := f.batch(t, &put{a, "a1"}, &put{b, "b1"}, &put{a, "a2"}, &put{gone, "g"}, &put{a, "a3"})
	require.NoError(t, err)
	assert.Equal(t, [][]string{{"a1", "b1", "g"}}, f.manys)
	assert.Equal(t, []string{"a2", "a3"}, f.ones, "repeats alone, in order, after")
	assert.Equal(t, []error{nil, nil, nil, pgx.ErrNoRows, nil}, errs)
	assert.Equal(t, []string{"a1", "b1", "a2", "", "a3"}, []string{got[0].val, got[1].val, got[2].val, got[3].val, got[4].val})
}

// A statement PostgreSQL rejects wrote nothing: every request runs again
// alone, repeats after them, and each gets its own answer.
func TestWriterRunsARejectedStatementRequestByRequest(t *testing.T) {
	t.Parallel()
	a, b := uuid.New(), uuid.New()
	f := &fakeWrites{manyErr: &pgconn.PgError{Code: "22P02", Message: "invalid input syntax for type json"}}
	c := f.writer()
	got, errs, err := answerAll(context.Background(), c, []*put{{a, "a1"}, {b, "b1"}, {a, "a2"}})
	require.NoError(t, err)
	assert.Equal(t, []error{nil, nil, nil}, errs)
	require.Len(t, f.ones, 3)
	assert.ElementsMatch(t, []string{"a1", "b1"}, f.ones[:2], "the shared ones alone, side by side")
	assert.Equal(t, "a2", f.ones[2], "the repeat after them")
	assert.Equal(t, "a2", got[2].val)
	assert.EqualValues(t, 1, c.retried.Load())
}

// A statement that failed otherwise (the connection, the deadline) may
// have committed: it is not run again, and every request gets its error.
func TestWriterDoesNotRunAgainWhatMayHaveCommitted(t *testing.T) {
	t.Parallel()
	lost := errors.New("connection reset by peer")
	f := &fakeWrites{manyErr: lost}
	c := f.writer()
	_, _, err := answerAll(context.Background(), c, []*put{{uuid.New(), "a"}, {uuid.New(), "b"}})
	assert.ErrorIs(t, err, lost)
	assert.Empty(t, f.ones)
	assert.Zero(t, c.retried.Load())
	assert.True(t, slices.Equal([]string{"a", "b"}, f.manys[0]))
}

// A rejected batch's requests run alone side by side, a few at a time:
// one statement each, as before, but not one commit after the other (the
// last of a batch of 34 behind one bad request waited past its 5 s into a
// 503 under load); run by halves, a mostly bad batch cost twice the
// statements (found by an audit, helper 14).
func TestWriterRunsARejectedBatchAloneSideBySide(t *testing.T) {
	t.Parallel()
	bad := uuid.New()
	f := &fakeWrites{rejects: bad}
	ps := make([]*put, 32)
	for i := range ps {
		ps[i] = &put{uuid.New(), fmt.Sprintf("p%d", i)}
	}
	ps[21].id = bad
	got, errs, err := f.batch(t, ps...)
	require.NoError(t, err)
	for i, e := range errs {
		if i == 21 {
			assert.Error(t, e, "the bad one gets its own error")
		} else if assert.NoError(t, e, "request %d", i) {
			assert.Equal(t, ps[i].val, got[i].val)
		}
	}
	assert.Len(t, f.manys, 1, "one shared statement")
	assert.Len(t, f.ones, 32, "then every request alone, once")
}
