package actors

import (
	"github.com/asynkron/protoactor-go/actor"
	cmap "github.com/orcaman/concurrent-map"
)

// registryMaps is how many concurrent maps the process registry is split
// into (each of cmap's 32 shards is one Go map with its own lock): 32 ×
// 32 = 1,024 locks, far more than two cores contend for.
//
// Why not Proto.Actor's own 1,024 × 32: a Go map never gives back the table
// it grew, and every PID id (an actor, and every request future) lands in
// one of the 32,768 maps by its hash, so after enough spawns each of them
// holds a table of its own. After 50,000 gateways were created and deleted
// (gwload churn) that was ~12 MiB of live heap the process kept for good,
// scattered over pages the collector could not return (BENCHMARKS.md,
// 2026-12-03 third session). With 1,024 maps the same peak leaves tables
// sized for it in a thousand places instead of 32,768: the live heap after
// that churn was 8 MiB smaller.
const registryMaps = 32

// compactRegistry replaces a new actor system's process registry with one
// of registryMaps concurrent maps, moving what the system registered while
// it was built (its event stream, dead letters). It must run before
// anything is spawned: nothing else may use the registry meanwhile.
func compactRegistry(system *actor.ActorSystem) {
	old := system.ProcessRegistry.LocalPIDs
	sm := &actor.SliceMap{LocalPIDs: make([]cmap.ConcurrentMap, registryMaps)}
	for i := range sm.LocalPIDs {
		sm.LocalPIDs[i] = cmap.New()
	}
	for _, m := range old.LocalPIDs {
		m.IterCb(func(id string, p any) { sm.GetBucket(id).Set(id, p) })
	}
	system.ProcessRegistry.LocalPIDs = sm
}
