package actors

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/internal/config"
	"github.com/ctcgw/gatewayd/store"
)

// fixedSource is a fake store for supervisor logic that needs no database.
type fixedSource struct{ conns []store.Connection }

func (f fixedSource) ActiveConnections(context.Context) ([]store.Connection, error) {
	return f.conns, nil
}
func (fixedSource) MarkSeen(context.Context, map[uuid.UUID]time.Time) error { return nil }

// A store read made before an API removal must not resurrect the gateway.
func TestStaleReadDoesNotResurrectARemovedGateway(t *testing.T) {
	conn := store.Connection{ID: uuid.New(), FactoryID: uuid.New(), URL: "ws://127.0.0.1:9/none", Email: "e", Password: "p"}
	cfg := config.Gateway{ConnectTimeout: 100 * time.Millisecond, AuthTimeout: 100 * time.Millisecond, CommandTimeout: time.Second,
		BackoffInitial: time.Hour, BackoffMax: time.Hour, BackoffMultiplier: 2, PingInterval: time.Minute, PongTimeout: time.Minute,
		DialConcurrency: 4, RestartLimit: 3, RestartWindow: time.Minute}
	rt := Start(cfg, fixedSource{conns: []store.Connection{conn}}, zerolog.Nop(), Options{ReconcileInterval: time.Hour})
	t.Cleanup(func() { _ = rt.Shutdown(context.Background()) })
	require.Eventually(t, rt.Ready, 2*time.Second, 5*time.Millisecond)
	_, err := rt.Status(context.Background(), conn.ID)
	require.NoError(t, err)

	staleRead := time.Now()
	rt.GatewaysRemoved([]uuid.UUID{conn.ID})
	rt.d.root.Send(rt.supervisor, &converge{conns: []store.Connection{conn}, readAt: staleRead})
	_, err = rt.Status(context.Background(), conn.ID)
	require.True(t, errors.Is(err, ErrNotFound), "resurrected: %v", err)

	// A read made after the removal that still has it (another process
	// restored it) is obeyed.
	rt.d.root.Send(rt.supervisor, &converge{conns: []store.Connection{conn}, readAt: time.Now()})
	require.Eventually(t, func() bool {
		_, err := rt.Status(context.Background(), conn.ID)
		return err == nil
	}, 2*time.Second, 5*time.Millisecond)
}
