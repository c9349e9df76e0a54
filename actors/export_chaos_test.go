package actors

import (
	"strings"

	"github.com/ctcgw/gatewayd"
)

// CrashThenUpdate puts a crash drill and then a gateway update into the
// supervisor's mailbox back to back, as a crash (any panic of the actor)
// and an API PUT landing a moment apart (found by an audit, helper 3).
func CrashThenUpdate(r *Runtime, t gatewayd.Target) {
	c := &crashGateway{id: t.ID}
	c.answers()
	r.d.root.Send(r.supervisor, c)
	r.d.root.Send(r.supervisor, &upsertGateway{target: t})
}

// LiveGatewayActors counts the gateway actors registered in the actor
// system's process registry (ids under the supervisor), by id.
func LiveGatewayActors(r *Runtime) map[string]int {
	out := map[string]int{}
	for _, m := range r.system.ProcessRegistry.LocalPIDs.LocalPIDs {
		m.IterCb(func(id string, _ any) {
			if rest, ok := strings.CutPrefix(id, "supervisor/"); ok {
				out[rest]++
			}
		})
	}
	return out
}
