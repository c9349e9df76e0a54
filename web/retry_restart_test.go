package web_test

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/ctcgw/gatewayd/internal/testutil"
)

// newListenProxy forwards the browser's connections to gatewayd; while
// down it reads each new connection's request line, notes it (what
// reached "the server"), and closes the connection: gatewayd gone, as the
// browser sees it, with every try counted.
func newListenProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	return startCutProxy(t, target, true)
}

// byPath groups the tried requests by path (query dropped), each with the
// times since start.
func (p *cutProxy) byPath(start time.Time) map[string][]float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string][]float64{}
	for _, r := range p.tried {
		f := strings.Fields(r.line)
		path := r.line
		if len(f) >= 2 {
			path = f[0] + " " + strings.SplitN(f[1], "?", 2)[0]
		}
		out[path] = append(out[path], r.at.Sub(start).Seconds())
	}
	return out
}

// gatewayd unreachable for 40 s (every connection refused at once, as
// when it is stopped) while three tabs are open: the fleet, a gateway's
// page and the organizations. What reaches the server, per path, is
// counted: each page's retries follow the 1 → 15 s backoff; the event
// stream's reconnects are logged. Back up, every tab shows what the API
// says, with no "Trying again…" left over.
// Would catch: a page that retries on a fixed short timer or on every
// stream status change, overlapping tries, a page that stays in its
// error state after gatewayd is back.
// (Checked by an audit, helper 4, whose test this is.)
func TestRetryPaceWhileGatewaydIsUnreachable(t *testing.T) {
	w := newRealWorld(t, freePort(t), "AUTH_ENABLED=false")
	a := w.addGateway("ur-a")
	w.start("")
	w.waitStates("", map[string]string{a: "AUTHENTICATED"})
	p := newListenProxy(t, fmt.Sprintf("127.0.0.1:%d", w.port))
	base := "http://" + p.ln.Addr().String()

	b := newBrowser(t)
	fleetTab := &uiTab{t: t, name: "fleet", ctx: b.ctx}
	fleetTab.navigate(base + "/")
	gwTab := openUITab(t, b, "gateway a", base+"/#/gateways/"+a)
	orgTab := openUITab(t, b, "organizations", base+"/#/organizations")
	for _, tb := range []*uiTab{fleetTab, gwTab, orgTab} {
		tb.wait("live", liveJS, 15*time.Second)
	}
	gwTab.wait("a AUTHENTICATED", showsJS(a, "AUTHENTICATED"), 15*time.Second)
	orgTab.wait("the organizations", `document.querySelectorAll('#main tbody tr').length === 2`, 15*time.Second)

	p.cut()
	start := time.Now()
	for _, tb := range []*uiTab{fleetTab, gwTab, orgTab} {
		tb.wait("not live", `document.querySelector('#live')?.textContent !== 'Live'`, 10*time.Second)
	}
	// While it is down, the gateway page and the organizations are
	// reloaded (their first load then fails): they retry.
	gwTab.do("reload the gateway page", navigateHash("#/nowhere"), navigateHash("#/gateways/"+a))
	orgTab.do("reload the organizations", navigateHash("#/nowhere"), navigateHash("#/organizations"))
	testutil.Eventually(t, func() bool {
		return len(p.byPath(start)["GET /api/gateways/"+a]) >= 6 && len(p.byPath(start)["GET /api/organizations"]) >= 6
	}, 50*time.Second, "six tries of each page")
	got := p.byPath(start)
	keys := make([]string, 0, len(got))
	for k := range got {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		var s []string
		for _, x := range got[k] {
			s = append(s, fmt.Sprintf("%.1f", x))
		}
		t.Logf("while down: %s: %d at %s", k, len(got[k]), strings.Join(s, " "))
	}
	for _, k := range []string{"GET /api/gateways/" + a, "GET /api/organizations"} {
		ts := got[k]
		want := 1.0
		for i := 1; i < len(ts); i++ {
			assert.GreaterOrEqual(t, ts[i]-ts[i-1], 0.9*want, "%s: gap %d", k, i)
			want = min(want*2, 15)
		}
	}
	elapsed := time.Since(start).Seconds()
	streams := len(got["GET /api/events"])
	t.Logf("event stream reconnects while down: %d in %.0f s", streams, elapsed)

	// Something changes meanwhile (in the database): a is disconnected.
	p.heal()
	for _, tb := range []*uiTab{fleetTab, gwTab, orgTab} {
		tb.wait("live again", liveJS, 30*time.Second)
	}
	want := apiRows(w.statuses(""))
	fleetTab.wait("the fleet as the API has it", fleetRowsJS+` === `+js(want), 20*time.Second)
	gwTab.wait("the gateway page drawn", showsJS(a, "AUTHENTICATED")+` && document.querySelector('section[aria-labelledby=gw-h] dl')`, 20*time.Second)
	orgTab.wait("the organizations drawn", `document.querySelectorAll('#main tbody tr').length === 2`, 20*time.Second)
	for _, tb := range []*uiTab{fleetTab, gwTab, orgTab} {
		text, _ := tabEval[string](tb, mainText)
		assert.NotRegexp(t, `Trying again|not available|could not|cannot be reached`, text, "%s after gatewayd is back", tb.name)
	}
}
