package actors

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
)

// fixedSource is a fake store for supervisor logic that needs no database.
type fixedSource struct{ targets []gatewayd.Target }

func (f fixedSource) Targets(context.Context) ([]gatewayd.Target, error) {
	return f.targets, nil
}
func (fixedSource) MarkSeen(context.Context, map[uuid.UUID]time.Time) error { return nil }
func (fixedSource) MergeDiscoveries(context.Context, []gatewayd.Discovery) ([]gatewayd.SensorRef, error) {
	return nil, nil
}
func (fixedSource) RecordTemperatures(context.Context, []gatewayd.Temperature) ([]gatewayd.SensorRef, error) {
	return nil, nil
}
func (fixedSource) SaveReadings(context.Context, []gatewayd.ReadingUpdate) ([]gatewayd.ReadingRef, error) {
	return nil, nil
}
func (fixedSource) SensorReadRate(context.Context, uuid.UUID, int64) (float64, error) { return 0, nil }

// A store read made before an API removal must not resurrect the gateway.
func TestStaleReadDoesNotResurrectARemovedGateway(t *testing.T) {
	t.Parallel()
	conn := gatewayd.Target{ID: uuid.New(), FactoryID: uuid.New(), Desired: gatewayd.DesiredConnected,
		Credentials: gatewayd.Credentials{URL: "ws://127.0.0.1:9/none", Email: "e", Password: "p"}}
	rt := startQuietRuntime(t, fixedSource{targets: []gatewayd.Target{conn}})
	_, err := rt.Status(context.Background(), conn.ID)
	require.NoError(t, err)

	staleRead := time.Now()
	rt.GatewaysRemoved([]uuid.UUID{conn.ID})
	rt.d.root.Send(rt.supervisor, &converge{targets: []gatewayd.Target{conn}, readAt: staleRead})
	_, err = rt.Status(context.Background(), conn.ID)
	require.True(t, errors.Is(err, gatewayd.ErrNotFound), "resurrected: %v", err)

	// Nor does a request that wrote before the delete committed and told
	// the runtime after it (a connect or a PUT racing the DELETE).
	rt.GatewayStarted(conn)
	_, err = rt.Status(context.Background(), conn.ID)
	require.True(t, errors.Is(err, gatewayd.ErrNotFound), "resurrected by a late upsert: %v", err)

	// Nor a gateway the runtime had not heard of when it was removed: a
	// factory's deletion names a gateway whose create has not told the
	// runtime yet.
	unheard := conn
	unheard.ID = uuid.New()
	rt.GatewaysRemoved([]uuid.UUID{unheard.ID})
	rt.GatewayStarted(unheard)
	_, err = rt.Status(context.Background(), unheard.ID)
	require.True(t, errors.Is(err, gatewayd.ErrNotFound), "started after its removal: %v", err)

	// A read made after the removal that still has it (another process
	// restored it) is obeyed.
	rt.d.root.Send(rt.supervisor, &converge{targets: []gatewayd.Target{conn}, readAt: time.Now()})
	require.Eventually(t, func() bool {
		_, err := rt.Status(context.Background(), conn.ID)
		return err == nil
	}, 10*time.Second, 5*time.Millisecond)
}
