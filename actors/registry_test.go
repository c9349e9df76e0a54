package actors

import (
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// registered counts the registry's entries.
func registered(system *actor.ActorSystem) int {
	n := 0
	for _, m := range system.ProcessRegistry.LocalPIDs.LocalPIDs {
		n += m.Count()
	}
	return n
}

// The compacted registry keeps what the system registered while it was
// built, and serves spawns, requests and stops as before.
func TestCompactRegistryKeepsTheSystemWorking(t *testing.T) {
	system := actor.NewActorSystem()
	before := registered(system)
	compactRegistry(system)
	require.Len(t, system.ProcessRegistry.LocalPIDs.LocalPIDs, registryMaps)
	assert.Equal(t, before, registered(system), "entries moved")
	for _, id := range []string{"eventstream", "deadletter"} {
		_, ok := system.ProcessRegistry.GetLocal(id)
		assert.True(t, ok, id)
	}

	echo := actor.PropsFromFunc(func(c actor.Context) {
		if s, ok := c.Message().(string); ok {
			c.Respond(s + "!")
		}
	})
	pids := make([]*actor.PID, 2000)
	for i := range pids {
		pids[i] = system.Root.Spawn(echo)
	}
	assert.Equal(t, before+len(pids), registered(system))
	for _, pid := range pids[:100] {
		got, err := system.Root.RequestFuture(pid, "hi", time.Second).Result()
		require.NoError(t, err)
		assert.Equal(t, "hi!", got)
	}
	for _, pid := range pids {
		require.NoError(t, system.Root.StopFuture(pid).Wait())
	}
	assert.Equal(t, before, registered(system), "stopped actors and answered futures leave the registry")
}

// Start compacts the registry of the system it builds.
func TestStartCompactsTheRegistry(t *testing.T) {
	rt := Start(Config{ReconcileInterval: time.Hour}, fixedSource{}, zerolog.Nop())
	t.Cleanup(func() { _ = rt.Shutdown(t.Context()) })
	assert.Len(t, rt.system.ProcessRegistry.LocalPIDs.LocalPIDs, registryMaps)
	_, ok := rt.system.ProcessRegistry.GetLocal("supervisor")
	assert.True(t, ok)
}
