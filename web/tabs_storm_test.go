package web_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// serverStates is GET /api/gateways/status as id → state, and its counts.
func serverStates(t *testing.T, base string) (map[string]string, map[string]int) {
	t.Helper()
	res, err := http.Get(base + "/api/gateways/status")
	require.NoError(t, err)
	defer res.Body.Close()
	var out struct {
		Data []struct {
			ID    string `json:"id"`
			State string `json:"state"`
		} `json:"data"`
		Counts map[string]int `json:"counts"`
	}
	require.NoError(t, json.NewDecoder(res.Body).Decode(&out))
	m := map[string]string{}
	for _, s := range out.Data {
		m[s.ID] = s.State
	}
	return m, out.Counts
}

// tabFleetJS is what a tab holds: every gateway's state and the counts it
// shows (the fleet page's count buttons), as JSON.
const tabFleetJS = `import('/ui/js/live.js').then(m => JSON.stringify({
  states: Object.fromEntries([...m.fleet.byId.values()].map(g => [g.id, g.state])),
  counts: m.fleet.counts,
  shown: Object.fromEntries([...document.querySelectorAll('.count[data-state]')].map(b => [b.dataset.state, b.querySelector('.count-n').textContent])),
}))`

type tabFleet struct {
	States map[string]string `json:"states"`
	Counts map[string]int    `json:"counts"`
	Shown  map[string]string `json:"shown"`
}

// (Checked by an audit, helper 2, whose test this is; it held.) While
// 30 gateways are crashed and reconnect again and again, the leading tab
// is closed, then its successor: the last two tabs, once the storm is
// over and the fleet has settled, hold every gateway in the state
// GET /api/gateways/status says, with counts that agree (no change lost,
// none applied twice).
func TestTabsAgreeWithTheServerAfterLeadersCloseInAStorm(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h)
	gws, _ := h.AddAuthenticated("storm", 30)

	b := newBrowser(t)
	var tabs []*uiTab
	for i := 0; i < 4; i++ {
		tb := openUITab(t, b, fmt.Sprintf("tab %d", i+1), base+"/#/")
		tb.wait("live with the fleet", liveJS+` && document.querySelector('#shown')?.textContent === 'Showing 30 of 30 gateways'`, 15*time.Second)
		tabs = append(tabs, tb)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		pace := time.NewTicker(5 * time.Millisecond) // a crash every 5 ms at most
		defer pace.Stop()
		for i := 0; ; i++ {
			g := gws[i%len(gws)]
			res, err := http.Post(base+"/api/debug/gateways/"+g.ID.String()+"/crash", "", nil)
			if err == nil {
				res.Body.Close()
			}
			select {
			case <-stop:
				return
			case <-pace.C:
			}
		}
	}()
	for round := 0; round < 2; round++ {
		leader := leaderOf(t, tabs)
		leader.close()
		var rest []*uiTab
		for _, tb := range tabs {
			if tb != leader {
				rest = append(rest, tb)
			}
		}
		tabs = rest
		for _, tb := range tabs {
			tb.wait("live again", liveJS, 20*time.Second)
		}
	}
	close(stop)
	wg.Wait()
	for _, g := range gws {
		h.WaitState(g.ID, gatewayd.StateAuthenticated, 20*time.Second)
	}
	want, wantCounts := serverStates(t, base)
	for _, tb := range tabs {
		var got tabFleet
		ok := testutil.Poll(func() bool {
			s, err := tabEval[string](tb, tabFleetJS)
			if err != nil || json.Unmarshal([]byte(s), &got) != nil {
				return false
			}
			if fmt.Sprint(got.States) != fmt.Sprint(want) || fmt.Sprint(got.Counts) != fmt.Sprint(wantCounts) {
				return false
			}
			// The counts shown are drawn at the next frame after the
			// fleet's last change: waited for, not read at once.
			for st, n := range wantCounts {
				if got.Shown[st] != fmt.Sprint(n) {
					return false
				}
			}
			return true
		}, 15*time.Second)
		if !ok {
			diff := map[string]string{}
			for id, st := range want {
				if got.States[id] != st {
					diff[id] = got.States[id] + " (server: " + st + ")"
				}
			}
			t.Errorf("%s: %d gateways differ from the server: %v; counts %v, server's %v", tb.name, len(diff), diff, got.Counts, wantCounts)
		}
		for st, n := range wantCounts {
			assert.Equal(t, fmt.Sprint(n), got.Shown[st], "%s: the %s count shown", tb.name, st)
		}
	}
	assert.Empty(t, b.problems(), "console errors, exceptions or CSP violations")
}
