package actors_test

// (Found by an audit, helper 12, whose test this is.) a supervisor restart (forgetAll, then a new
// supervisor) forgets the tombstones of deleted gateways, so a store read
// made before a deletion and delivered after the restart brings the
// deleted gateway back: its actor dials it again.

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/ctc/ctctest"
	"github.com/ctcgw/gatewayd/internal/testutil"
	"github.com/ctcgw/gatewayd/store"
)

// gatedSource is the store, whose Targets can be held after the read (a
// slow reconciliation read, in flight while other things happen).
type gatedSource struct {
	*store.Store
	hold    atomic.Bool
	read    chan struct{} // a held read has its rows
	release chan struct{}
	reads   atomic.Int32
}

func (g *gatedSource) Targets(ctx context.Context) ([]gatewayd.Target, error) {
	ts, err := g.Store.Targets(ctx)
	if g.hold.Load() {
		g.read <- struct{}{}
		<-g.release
	}
	g.reads.Add(1)
	return ts, err
}

// stateLog records the observer's GatewayState calls.
type stateLog struct {
	actors.Observer
	mu  sync.Mutex
	log []gatewayd.Status
}

func (o *stateLog) GatewayState(from gatewayd.State, st gatewayd.Status) {
	o.mu.Lock()
	o.log = append(o.log, st)
	o.mu.Unlock()
	o.Observer.GatewayState(from, st)
}

func (o *stateLog) since(n int, id uuid.UUID) []gatewayd.State {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []gatewayd.State
	for _, st := range o.log[n:] {
		if st.ID == id {
			out = append(out, st.State)
		}
	}
	return out
}

func (o *stateLog) len() int { o.mu.Lock(); defer o.mu.Unlock(); return len(o.log) }

// API.md §4: "DELETE /:id → 204, the actor closes its WebSocket (close
// code 1000) and is removed." The supervisor keeps a tombstone of each
// removed gateway so that a reconciliation read made before the deletion
// does not start it again (converge: "removed after this read was
// made"). When the supervisor itself crashes, forgetAll and the new
// supervisor start from empty maps: the tombstones are gone, and the read
// that was in flight (sent to the supervisor's mailbox before or during
// the restart) starts the deleted gateway again: a new actor dials it and
// logs in, until the next read removes it.
func TestDeletedGatewayStaysDeletedAcrossSupervisorRestart(t *testing.T) {
	t.Parallel()
	pool, _ := tmpl.Pool(t)
	sealer, err := store.NewSealer(testutil.Key)
	require.NoError(t, err)
	st := store.New(pool, sealer)
	ctx := context.Background()
	org, err := st.CreateOrganization(ctx, "Org", nil)
	require.NoError(t, err)
	f, err := st.CreateFactory(ctx, store.NewFactory{OrganizationID: org.ID, Name: "F"})
	require.NoError(t, err)
	sim, err := ctctest.NewServer("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(sim.Close)
	email, pw := actorstest.Credentials("zombie")
	sg := sim.Add("zombie", ctctest.Config{Email: email, Password: pw})
	g, err := st.CreateGateway(ctx, store.NewGateway{FactoryID: f.ID, GatewayID: "zombie", Name: "zombie", URL: sg.URL(), Email: email, Password: pw})
	require.NoError(t, err)

	src := &gatedSource{Store: st, read: make(chan struct{}), release: make(chan struct{})}
	obs := &stateLog{Observer: nopObs{}}
	cfg := actorstest.FastConfig()
	cfg.Observer = obs
	rt := actors.Start(cfg, src, zerolog.Nop())
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, rt.Shutdown(sctx))
	})
	eventually(t, func() bool {
		s, err := rt.Status(ctx, g.ID)
		return err == nil && s.State == gatewayd.StateAuthenticated
	}, 20*time.Second, "authenticated")

	// A reconciliation read with the gateway in it, held.
	src.hold.Store(true)
	rt.Reconcile()
	<-src.read
	// The gateway is deleted, as the API does it.
	_, err = st.DeleteGateway(ctx, g.ID)
	require.NoError(t, err)
	rt.GatewaysRemoved([]uuid.UUID{g.ID}, nil)
	eventually(t, func() bool {
		_, err := rt.Status(ctx, g.ID)
		return errors.Is(err, gatewayd.ErrNotFound) && sg.Stats().Open == 0
	}, 10*time.Second, "removed and its socket closed")
	accepted := sg.Stats().Accepted
	mark := obs.len()

	// The supervisor crashes (any bug in it), then the held read arrives.
	actors.PanicSupervisor(rt)
	src.hold.Store(false)
	close(src.release)
	// Two more reads: by the second, the first's converge (the restart's
	// fresh read) has been sent; a status question queues behind it.
	n := src.reads.Load()
	rt.Reconcile()
	eventually(t, func() bool { return src.reads.Load() >= n+2 }, 10*time.Second, "reads after the restart")
	_, _ = rt.Statuses(ctx, nil)

	assert.Empty(t, obs.since(mark, g.ID), "a deleted gateway gets no state again (it was started anew)")
	assert.Equal(t, accepted, sg.Stats().Accepted, "a deleted gateway is never dialed again")
}

type nopObs struct{}

func (nopObs) GatewayState(gatewayd.State, gatewayd.Status) {}
func (nopObs) Dialed(error, time.Duration)                  {}
func (nopObs) LoginAnswered(string)                         {}
func (nopObs) ActorRestarted()                              {}
func (nopObs) FloodCutOff()                                 {}
func (nopObs) SensorsChanged([]gatewayd.SensorRef)          {}
func (nopObs) ReadingsDone([]gatewayd.ReadingRef)           {}
