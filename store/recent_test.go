package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/internal/testutil"
	"github.com/ctcgw/gatewayd/store"
)

// While readers keep the factory and the gateway in the cache, every
// write, once answered, is what the next GET returns: renames, a desired
// state, a last-seen time, and the deletes that cascade.
func TestKeptReadsSeeEveryAnsweredWrite(t *testing.T) {
	s, _, fx, g := withGateway(t, "kept-1")
	ctx := context.Background()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, _ = s.GetGateway(ctx, g.ID)
				_, _ = s.GetFactory(ctx, fx.factory.ID)
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()

	for i := range 50 {
		name := fmt.Sprintf("name %d", i)
		_, err := s.UpdateGateway(ctx, g.ID, store.GatewayPatch{Name: store.Some(name)})
		require.NoError(t, err)
		_, err = s.UpdateFactory(ctx, fx.factory.ID, store.FactoryPatch{Name: store.Some(name)})
		require.NoError(t, err)
		gg, err := s.GetGateway(ctx, g.ID)
		require.NoError(t, err)
		ff, err := s.GetFactory(ctx, fx.factory.ID)
		require.NoError(t, err)
		require.Equal(t, name, gg.Name, "round %d", i)
		require.Equal(t, name, ff.Name, "round %d", i)
	}

	for _, d := range []gatewayd.DesiredState{gatewayd.DesiredDisconnected, gatewayd.DesiredConnected, gatewayd.DesiredDisconnected} {
		_, _, err := s.SetDesiredState(ctx, g.ID, d)
		require.NoError(t, err)
		gg, err := s.GetGateway(ctx, g.ID)
		require.NoError(t, err)
		assert.Equal(t, d, gg.DesiredState)
	}

	seen := time.Now().Add(time.Minute).Truncate(time.Microsecond)
	require.NoError(t, s.MarkSeen(ctx, map[uuid.UUID]time.Time{g.ID: seen}))
	gg, err := s.GetGateway(ctx, g.ID)
	require.NoError(t, err)
	require.NotNil(t, gg.LastSeenAt)
	assert.True(t, seen.Equal(*gg.LastSeenAt), "last_seen_at %v, want %v", gg.LastSeenAt, seen)

	// The factory's delete takes its gateways with it.
	_, err = s.DeleteFactory(ctx, fx.factory.ID)
	require.NoError(t, err)
	_, err = s.GetGateway(ctx, g.ID)
	assert.ErrorIs(t, err, gatewayd.ErrNotFound)
	_, err = s.GetFactory(ctx, fx.factory.ID)
	assert.ErrorIs(t, err, gatewayd.ErrNotFound)
}

// An organization's delete cascades to factories and gateways that were
// kept.
func TestKeptReadsForgetAnOrganizationsCascade(t *testing.T) {
	s, _, fx, g := withGateway(t, "kept-2")
	ctx := context.Background()
	_, err := s.GetGateway(ctx, g.ID)
	require.NoError(t, err)
	_, err = s.GetFactory(ctx, fx.factory.ID)
	require.NoError(t, err)
	_, err = s.DeleteOrganization(ctx, fx.org.ID)
	require.NoError(t, err)
	_, err = s.GetGateway(ctx, g.ID)
	assert.ErrorIs(t, err, gatewayd.ErrNotFound)
	_, err = s.GetFactory(ctx, fx.factory.ID)
	assert.ErrorIs(t, err, gatewayd.ErrNotFound)
}

// A write made behind the store's back (SQL by hand) is seen once the
// kept row's time is up, and a store that keeps nothing sees it at once.
func TestKeptReadsSeeAForeignWriteAfterTheirTime(t *testing.T) {
	_, pool, _, g := withGateway(t, "kept-3")
	ctx := context.Background()
	sealer, err := store.NewSealer(testutil.Key)
	require.NoError(t, err)
	short := store.New(pool, sealer, store.ReadsKeptFor(200*time.Millisecond))
	plain := store.New(pool, sealer)

	_, err = short.GetGateway(ctx, g.ID)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `UPDATE gateways SET name = 'by hand' WHERE id = $1`, g.ID)
	require.NoError(t, err)
	got, err := plain.GetGateway(ctx, g.ID)
	require.NoError(t, err)
	assert.Equal(t, "by hand", got.Name)

	testutil.Poll(func() bool {
		got, err = short.GetGateway(ctx, g.ID)
		return err == nil && got.Name == "by hand"
	}, 10*time.Second)
	require.NoError(t, err)
	assert.Equal(t, "by hand", got.Name)
}
