package actors

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
)

// The stopper tells at most maxStopping actors to stop at once, stops the
// rest as those end, and forgets an actor that ends on its own while it
// waits (else its slot would never come back).
func TestStopperPacesStops(t *testing.T) {
	t.Parallel()
	system := actor.NewActorSystem()
	t.Cleanup(func() { system.Shutdown() })
	const n = 3 * maxStopping
	var stopping, terminated atomic.Int64
	release := make(chan struct{})
	type boom struct{}
	child := actor.PropsFromFunc(func(c actor.Context) {
		switch c.Message().(type) {
		case *actor.Stopping:
			stopping.Add(1)
			<-release // a slow stop: the close of a peer that reads nothing
		case boom:
			panic("boom")
		}
	})
	type spawnAll struct{ pids chan []*actor.PID }
	type stopAll struct{}
	type idle struct{ ans chan bool }
	var st stopper
	var kids []*actor.PID
	parent := system.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		switch m := c.Message().(type) {
		case spawnAll:
			for range n {
				kids = append(kids, c.Spawn(child))
			}
			m.pids <- kids
		case stopAll:
			for _, k := range kids {
				st.add(c, k)
			}
		case *actor.Terminated:
			terminated.Add(1)
			st.terminated(c, m.Who)
		case idle:
			m.ans <- st.idle()
		}
	}, actor.WithSupervisor(actor.NewOneForOneStrategy(0, 0, func(any) actor.Directive { return actor.StopDirective }))))
	pids := make(chan []*actor.PID, 1)
	system.Root.Send(parent, spawnAll{pids})
	last := (<-pids)[n-1]
	isIdle := func() bool {
		ans := make(chan bool, 1)
		system.Root.Send(parent, idle{ans})
		return <-ans
	}
	require.True(t, isIdle())

	system.Root.Send(parent, stopAll{})
	require.Eventually(t, func() bool { return stopping.Load() == maxStopping }, 10*time.Second, time.Millisecond)
	require.Never(t, func() bool { return stopping.Load() > maxStopping }, 200*time.Millisecond, 5*time.Millisecond,
		"more than %d stopping at once", maxStopping)
	assert.False(t, isIdle())

	// The last child, still waiting its turn, crashes and is stopped by
	// its parent's strategy.
	system.Root.Send(last, boom{})
	require.Eventually(t, func() bool { return stopping.Load() == maxStopping+1 }, 10*time.Second, time.Millisecond)

	close(release)
	require.Eventually(t, func() bool { return terminated.Load() == n }, 20*time.Second, time.Millisecond)
	assert.EqualValues(t, n, stopping.Load(), "every child stopped once")
	assert.True(t, isIdle(), "a slot is still taken or a child still waits")
}

// A gateway removed and added again while its old actor still waits its
// turn to stop gets a new actor once the old one has ended, with the new
// settings. Only a store read made after the removal brings a removed
// gateway back (its row restored by hand, say): the API's upserts do not.
func TestGatewayAddedAgainWhileItsOldActorWaitsToStop(t *testing.T) {
	t.Parallel()
	rt := startQuietRuntime(t, fixedSource{})
	ids := startGateways(rt, 2*maxStopping, gatewayd.DesiredDisconnected)
	last := ids[len(ids)-1]
	require.Eventually(t, func() bool {
		st, err := rt.Status(context.Background(), last)
		return err == nil && st.State == gatewayd.StateDisconnected
	}, 10*time.Second, 5*time.Millisecond)

	// One message after the other: the last one's old actor is behind
	// maxStopping others when it is added again.
	rt.GatewaysRemoved(ids, nil)
	again := gatewayd.Target{ID: last, FactoryID: uuid.New(), GatewayID: "again", Name: "added again",
		Desired:     gatewayd.DesiredDisconnected,
		Credentials: gatewayd.Credentials{URL: "ws://127.0.0.1:9/none", Email: "e@example.com", Password: "p"}}
	_, err := rt.Status(context.Background(), last) // after the removal, in the same mailbox
	require.ErrorIs(t, err, gatewayd.ErrNotFound)
	rt.d.root.Send(rt.supervisor, &converge{targets: []gatewayd.Target{again}, readAt: time.Now()})
	require.Eventually(t, func() bool {
		st, err := rt.Status(context.Background(), last)
		return err == nil && st.State == gatewayd.StateDisconnected && st.Name == "added again"
	}, 20*time.Second, 5*time.Millisecond)
	total, _ := rt.Counts()
	assert.EqualValues(t, 1, total)
	// Its actor answers (the status above may come from the record while
	// the spawn waits): a crash restarts it.
	require.Eventually(t, func() bool { return rt.Crash(context.Background(), last) == nil }, 20*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool {
		st, err := rt.Status(context.Background(), last)
		return err == nil && st.Restarts == 1 && st.State == gatewayd.StateDisconnected
	}, 10*time.Second, 5*time.Millisecond)
}

// A Terminated from an earlier incarnation of a gateway (same name,
// another PID) leaves the record's running actor alone. Before, it
// marked the gateway FAILED ("stopped unexpectedly") while its actor ran.
func TestTerminatedOfAnEarlierIncarnationIsIgnored(t *testing.T) {
	t.Parallel()
	rt := startQuietRuntime(t, fixedSource{})
	id := startGateways(rt, 1, gatewayd.DesiredDisconnected)[0]
	require.Eventually(t, func() bool {
		st, err := rt.Status(context.Background(), id)
		return err == nil && st.State == gatewayd.StateDisconnected
	}, 10*time.Second, 5*time.Millisecond)

	earlier := actor.NewPID(rt.supervisor.Address, rt.supervisor.Id+"/"+id.String())
	rt.d.root.Send(rt.supervisor, &actor.Terminated{Who: earlier})
	// The crash goes through the same mailbox after the Terminated: it
	// finds a running actor only if the Terminated was ignored.
	require.NoError(t, rt.Crash(context.Background(), id))
	require.Eventually(t, func() bool {
		st, err := rt.Status(context.Background(), id)
		return err == nil && st.Restarts == 1
	}, 10*time.Second, 5*time.Millisecond)
	st, err := rt.Status(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, gatewayd.StateDisconnected, st.State)
	assert.Nil(t, st.LastError)
}
