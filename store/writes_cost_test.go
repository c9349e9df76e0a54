package store

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// (Found by an audit, helper 14, whose test this is.) 3324918 runs a rejected shared write again by
// halves. That costs fewer statements than request by request only while
// few requests of the batch are bad: every rejected part of two or more is
// one more statement, and when most requests are bad (a client retrying a
// batch of creates whose gateway_ids all exist now, each answered 409)
// every part of the bisection tree is rejected: 2n−1 statements, against
// n+1 for the request-by-request retry it replaced. The lead runs them all
// in turn, and every request of the batch waits for the last one: the
// very latency (a batch past the request's 5 s into 503s) the change was
// made to cut.
func TestWriterRejectedBatchCostsNoMoreThanRequestByRequest(t *testing.T) {
	t.Parallel()
	const n = 32
	rejects := map[uuid.UUID]bool{}
	var mu sync.Mutex
	statements := 0
	dup := func() error { return &pgconn.PgError{Code: "23505", Message: "duplicate key value"} }
	c := writer(func(_ context.Context, p *put) (row, error) {
		mu.Lock()
		defer mu.Unlock()
		statements++
		if rejects[p.id] {
			return row{}, dup()
		}
		return row{p.id, p.val}, nil
	}, func(_ context.Context, ps []*put) ([]row, error) {
		mu.Lock()
		defer mu.Unlock()
		statements++
		var out []row
		for _, p := range ps {
			if rejects[p.id] {
				return nil, dup()
			}
			out = append(out, row{p.id, p.val})
		}
		return out, nil
	}, func(p *put) uuid.UUID { return p.id }, func(r *row) uuid.UUID { return r.id })

	ps := make([]*put, n)
	for i := range ps {
		ps[i] = &put{uuid.New(), fmt.Sprintf("p%d", i)}
		rejects[ps[i].id] = true // every one of them already exists
	}
	_, errs, err := answerAll(context.Background(), c, ps)
	require.NoError(t, err)
	for i, e := range errs {
		assert.Error(t, e, "request %d gets its own conflict", i)
	}
	assert.LessOrEqual(t, statements, n+1,
		"a batch of %d rejected requests: one shared statement and one per request before 3324918; now %d (%d rejected shared statements)",
		n, statements, c.retried.Load())
}
