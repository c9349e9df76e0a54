package actors

// (Found by an audit, helper 1, whose test this is.)

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/semaphore"
)

// What a connection's frames hold of the fleet's inbox share goes back
// as the actor handles them, and all of it when the connection is torn
// down with frames unhandled: a share that leaked at each reconnect
// would end by holding up every gateway's reader.
func TestInboxShareIsGivenBack(t *testing.T) {
	const fleet = 1 << 20
	sem := semaphore.NewWeighted(fleet)
	ctx := context.Background()
	s := newInboxShare(sem)
	const cost = 36 << 10
	n := 0
	for ; n*cost <= inboxFloor+4*cost; n++ {
		require.True(t, s.charge(ctx, cost, false))
	}
	require.True(t, s.charge(ctx, 512<<10, true), "a large frame is the intake's")
	assert.Equal(t, int64(inboxFloor/cost*cost), s.floor)
	assert.Positive(t, s.shared)
	for range n + 1 {
		s.done()
	}
	assert.Zero(t, s.floor)
	assert.Zero(t, s.shared)
	require.True(t, sem.TryAcquire(fleet), "all given back as handled")
	sem.Release(fleet)

	s = newInboxShare(sem)
	for range 2 * n {
		require.True(t, s.charge(ctx, cost, false))
	}
	s.close()
	s.done() // a frame of the torn-down connection, handled late
	assert.False(t, s.charge(ctx, cost, false), "closed")
	require.True(t, sem.TryAcquire(fleet), "all given back at the teardown")
}
