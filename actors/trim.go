package actors

import (
	"context"
	"runtime/debug"
	"time"
)

// Returning memory after a mass removal.
//
// When thousands of gateways are deleted at once their actors become
// garbage, but the Go runtime gives the pages back only after a
// collection lowers its heap goal, and an idle process may not collect
// for two minutes (the runtime's forced-GC period); then the scavenger
// returns the pages gradually. Measured (churn, BENCHMARKS.md): without
// this, RSS stayed near the create storm's peak for the whole two
// minutes after the delete. So a removal of at least trimMin gateways
// asks for one debug.FreeOSMemory (a full collection that returns every
// free page), trimDelay after the last of their actors has stopped (the
// supervisor asks once its stopper is idle), so a burst of removals costs
// one collection. (It was asked 3 s after the removal, when 50,000 actors
// told to stop at once might still be stopping, and their memory was not
// yet garbage; BENCHMARKS.md, 2026-12-05 third session.)
const (
	trimMin   = 1000
	trimDelay = 3 * time.Second
)

// trimLoop runs FreeOSMemory trimDelay after the last request, until ctx
// ends.
func (r *Runtime) trimLoop(ctx context.Context) {
	defer r.loops.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.trim:
		}
		t := time.NewTimer(trimDelay)
	wait:
		for {
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-r.trim:
				t.Reset(trimDelay)
			case <-t.C:
				break wait
			}
		}
		debug.FreeOSMemory()
		r.n.trims.Add(1)
	}
}
