package api_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/ctc/ctctest"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// (Checked by an audit, helper 8, whose tests these are.) Many clients connect, disconnect and PUT one gateway's desired_state
// (and its name) at once. Whatever order they land in, once every answer
// is in the store and the runtime agree on the desired state, the state
// follows it (DISCONNECTED, or back to AUTHENTICATED), and a restart of
// the runtime restores the same wish (API.md §4: the desired state is
// data, and an operator's disconnect outlives a restart).
func TestDesiredStateStormEndsWhereTheStoreSays(t *testing.T) {
	e := newLiveEnv(t, actorstest.FastConfig())
	id, _ := e.add("storm")
	e.waitState(id, "AUTHENTICATED")
	for round := range 3 {
		var wg sync.WaitGroup
		for c := range 8 {
			wg.Go(func() {
				for i := range 6 {
					var r response
					switch rand.IntN(4) {
					case 0:
						r = e.do("POST", "/api/gateways/"+id+"/connect", nil)
						assert.Equal(t, 202, r.status, "%s", r.body)
					case 1:
						r = e.do("POST", "/api/gateways/"+id+"/disconnect", nil)
						assert.Equal(t, 202, r.status, "%s", r.body)
					case 2:
						d := []string{"CONNECTED", "DISCONNECTED"}[rand.IntN(2)]
						r = e.do("PUT", "/api/gateways/"+id, map[string]any{"desired_state": d})
						assert.Equal(t, 200, r.status, "%s", r.body)
					default:
						r = e.do("PUT", "/api/gateways/"+id, map[string]any{"name": fmt.Sprintf("storm %d-%d-%d", round, c, i)})
						assert.Equal(t, 200, r.status, "%s", r.body)
					}
				}
			})
		}
		wg.Wait()
		stored := e.do("GET", "/api/gateways/"+id, nil).json(t)
		st := e.status(id)
		require.Equal(t, stored["desired_state"], st["desired_state"], "round %d: store and runtime agree", round)
		require.Equal(t, stored["name"], st["name"], "round %d: the status shows the stored name", round)
		want := "AUTHENTICATED"
		if stored["desired_state"] == "DISCONNECTED" {
			want = "DISCONNECTED"
		}
		e.waitState(id, want)

		e.restart()
		st = e.waitState(id, want)
		assert.Equal(t, stored["desired_state"], st["desired_state"], "round %d: a restart restores the stored wish", round)
	}
}

// A factory deleted while one of its gateways' create is between its
// commit and its message to the runtime: the cascade names the gateway,
// and waits for the create to tell the runtime before it stops the
// gateway (so gateway.created comes before gateway.deleted, and a late
// start cannot bring it back): no actor, no socket, 404 for its status
// and its connect.
func TestFactoryDeleteRacingCreateKeepsTheDelete(t *testing.T) {
	t.Parallel()
	var sg *ctctest.Gateway
	e, rt, target, created := heldCreate(t, "cascade", func(h *actorstest.Harness) (string, string, string) {
		pw := secret("pw-cascade-Hh3")
		sg = h.Sim.Add("cascade", ctctest.Config{Email: "c@example.com", Password: pw})
		return sg.URL(), "c@example.com", pw
	})
	factory := target.FactoryID.String()
	id := target.ID.String()
	deleted := rt.meanwhile(t, e, target.ID, func() response { return e.do("DELETE", "/api/factories/"+factory, nil) })
	require.Equal(t, 204, deleted.status)
	require.Equal(t, 201, (<-created).status)
	assert.Equal(t, 404, e.do("GET", "/api/gateways/"+id+"/status", nil).status)
	assert.Equal(t, 404, e.do("POST", "/api/gateways/"+id+"/connect", nil).status)
	assert.Equal(t, 404, e.do("GET", "/api/gateways/"+id, nil).status)
	list := e.do("GET", "/api/gateways/status", nil).json(t)
	assert.Empty(t, list["data"], "no status for the deleted gateway")
	// The create told the runtime first, so its actor may have dialled
	// before the delete stopped it; nothing stays open.
	testutil.Eventually(t, func() bool { return sg.Stats().Open == 0 }, 10*time.Second, "no socket left open")
}
