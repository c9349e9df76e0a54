package web_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// scriptProblems are the console problems that are not the browser's
// notes about failed requests (expected while the network is cut).
func scriptProblems(b *browser) []string {
	var out []string
	for _, p := range b.problems() {
		if !strings.Contains(p, "(network)") {
			out = append(out, p)
		}
	}
	return out
}

// Two tabs navigate rapidly between every kind of page (the fleet,
// gateway pages with their replay streams, a sensor, lists, a factory)
// while the network between the browser and gatewayd is cut and healed
// again and again. Afterwards: one event stream on the server for the
// browser (once the gateway pages' replays have ended), one EventSource
// left open across both tabs, no script error, and both tabs show what
// the API says.
// Would catch: a replay or retry stream left open by a page navigated
// away from, a second shared stream (leader election broken by rejoins),
// an exception in a scope's end, rows duplicated by a retry.
// (Checked by an audit, helper 4, whose test this is.)
func TestRapidNavigationDuringBlipsLeavesOneStream(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h)
	g1, sensors := addWithSensors(t, h, "nav-1", 1)
	g2, _ := addWithSensors(t, h, "nav-2", 1)
	h.WaitState(g1.ID, gatewayd.StateAuthenticated, 10*time.Second)
	h.WaitState(g2.ID, gatewayd.StateAuthenticated, 10*time.Second)
	p := newCutProxy(t, strings.TrimPrefix(base, "http://"))

	b := newBrowser(t)
	one := &uiTab{t: t, name: "tab 1", ctx: b.ctx}
	instrument(t, one)
	one.navigate(p.url() + "/")
	two := openUITab(t, b, "tab 2", "")
	instrument(t, two)
	two.navigate(p.url() + "/#/gateways/" + g2.ID.String())
	tabs := []*uiTab{one, two}
	for _, tb := range tabs {
		tb.wait("live", liveJS, 15*time.Second)
	}
	routes := []string{"#/gateways/" + g1.ID.String(), "#/sensors/" + sensors[0].ID.String(), "#/", "#/organizations",
		"#/gateways/" + g2.ID.String(), "#/factories/" + h.Factory.String(), "#/gateways", "#/sensors", "#/"}
	for round := 0; round < 5; round++ {
		if round%2 == 0 {
			p.cut()
		}
		for i, r := range routes {
			tb := tabs[(i+round)%2]
			tb.do("navigate "+r, navigateHash(r))
		}
		if round%2 == 0 {
			for _, tb := range tabs {
				tb.wait("the cut seen", `document.querySelector('#live')?.textContent !== 'Live'`, 10*time.Second)
			}
			p.heal()
		}
	}
	one.do("the fleet", navigateHash("#/"))
	two.do("gateway 1", navigateHash("#/gateways/"+g1.ID.String()))
	for _, tb := range tabs {
		tb.wait("live again", liveJS, 30*time.Second)
	}
	// The gateway page's replay ends within 10 s.
	testutil.Eventually(t, func() bool { return h.Telemetry.Events.Subscribers() == 1 }, 20*time.Second,
		"one event stream for the browser; the server holds %d", h.Telemetry.Events.Subscribers())
	const esOpen = `[...(window.__esList || [])].map(e => e.url.replace(/access_token=[^&]*/, '') + ' ' + e.readyState).join('; ')`
	var openList []string
	ok := testutil.Poll(func() bool {
		openList = nil
		n := 0
		for _, tb := range tabs {
			k, _ := tabEval[int](tb, `window.__esOpen`)
			l, _ := tabEval[string](tb, esOpen)
			openList = append(openList, tb.name+": "+l)
			n += k
		}
		return n == 1
	}, 20*time.Second)
	assert.True(t, ok, "one EventSource open in the browser's two tabs, 20 s after; open: %v; the server holds %d", openList, h.Telemetry.Events.Subscribers())
	open := 0
	for _, tb := range tabs {
		n, err := tabEval[int](tb, `window.__esOpen`)
		assert.NoError(t, err)
		made, _ := tabEval[int](tb, `window.__esMade`)
		t.Logf("%s: EventSources open %d, made %d", tb.name, n, made)
		open += n
	}
	assert.Equal(t, 1, open, "EventSources open in the browser's two tabs")
	want := apiRows(statusesOf(t, base))
	one.wait("the fleet as the API has it", fleetRowsJS+` === `+js(want), 15*time.Second)
	two.wait("gateway 1 drawn", showsJS(g1.ID.String(), "AUTHENTICATED")+` && document.querySelector('section[aria-labelledby=gw-h] dl')`, 15*time.Second)
	assert.Empty(t, scriptProblems(b), "console problems other than failed requests")
}

// A page of something that does not exist (404) says so once and does not
// ask again: no "Trying again…", one request, however long it stays open.
// Would catch: a 4xx treated as transient (retried forever at 15 s).
// (Checked by an audit, helper 4, whose test this is.)
func TestMissingThingsAreNotRetried(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h)
	b := newBrowser(t)
	tab := &uiTab{t: t, name: "tab", ctx: b.ctx}
	instrument(t, tab)
	tab.navigate(base + "/")
	tab.wait("live", liveJS, 15*time.Second)
	for _, kind := range []string{"gateways", "sensors", "factories", "organizations", "equipment"} {
		id := uuid.NewString()
		key := "/api/" + kind + "/" + id
		tab.do(kind, navigateHash("#/"+kind+"/"+id))
		tab.wait(kind+": not available", `/not available/i.test(document.querySelector('#main h1')?.textContent || '')`, 10*time.Second)
		at, _ := tabEval[float64](tab, `performance.now()`)
		// Past the first two retries' times (1 s, then 2 s later).
		tab.wait("4 s", fmt.Sprintf(`performance.now() > %f`, at+4000), 10*time.Second)
		assert.Len(t, tries(t, tab, key), 1, "%s: requests for a missing one", kind)
		text, _ := tabEval[string](tab, mainText)
		assert.NotContains(t, text, "Trying again", kind)
	}
}

// statusesOf is GET base/api/gateways/status (access control off).
func statusesOf(t *testing.T, base string) statusList {
	t.Helper()
	res, err := http.Get(base + "/api/gateways/status")
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, 200, res.StatusCode)
	var l statusList
	require.NoError(t, json.NewDecoder(res.Body).Decode(&l))
	return l
}
