package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/store"
)

// (Found by an audit, helper 14, whose test this is.) The same on PostgreSQL: a client creates 32
// gateways, times out, and sends the same batch again; every gateway_id
// exists now. The shared INSERT is rejected, and so is every half of it
// down to pairs: 31 rejected statements, then 32 alone (63), where the
// request-by-request retry ran 1 + 32.
func TestRetriedBatchOfDuplicatesCostsTwiceTheStatements(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	fx := setup(t, s)
	const n = 32
	reqs := make([]store.NewGateway, n)
	for i := range reqs {
		reqs[i] = newGateway(fx.factory.ID, fmt.Sprintf("DUP-%d", i))
	}
	_, errs, err := store.CreateGatewaysAtOnce(ctx, s, reqs...)
	require.NoError(t, err)
	for _, e := range errs {
		require.NoError(t, e)
	}

	_, retried0 := store.SharedWrites(s)
	_, errs, err = store.CreateGatewaysAtOnce(ctx, s, reqs...)
	require.NoError(t, err)
	for i, e := range errs {
		assert.ErrorIs(t, store.Classify(e), gatewayd.ErrConflict, "request %d", i)
	}
	_, retried := store.SharedWrites(s)
	statements := int(retried-retried0) + n // rejected shared statements, then each request alone
	assert.LessOrEqual(t, statements, n+1, "statements for a rejected batch of %d: %d rejected shared ones and %d alone", n, retried-retried0, n)
}
