package web_test

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/internal/testutil"
)

// (Checked by an audit, helper 4, whose tests these are.) How the pages retry during a long outage, counted in
// the page: every fetch and EventSource the page makes is recorded by a
// script installed before the page's own (CDP, not subject to the CSP).

// countJS wraps fetch and EventSource: window.__req[path+query] is the
// list of {s: start ms, e: end ms or 0}; window.__inflightMax[key] the most
// requests to one URL in flight at once; window.__es the EventSources
// opened and not closed by the page (a dropped one the browser reopens
// is the same object).
const countJS = `(() => {
  window.__req = {}; window.__inflight = {}; window.__inflightMax = {}; window.__esOpen = 0; window.__esMade = 0;
  const of = window.fetch;
  window.fetch = function (input, init) {
    const u = new URL(typeof input === 'string' ? input : input.url, location.href);
    const k = u.pathname + u.search;
    const r = {s: performance.now(), e: 0};
    (window.__req[k] = window.__req[k] || []).push(r);
    window.__inflight[k] = (window.__inflight[k] || 0) + 1;
    window.__inflightMax[k] = Math.max(window.__inflightMax[k] || 0, window.__inflight[k]);
    const done = () => { r.e = performance.now(); window.__inflight[k]--; };
    return of.apply(this, arguments).then(x => { done(); return x; }, err => { done(); throw err; });
  };
  const ES = window.EventSource;
  window.EventSource = class extends ES {
    constructor(...a) { super(...a); this.__open = true; window.__esOpen++; window.__esMade++; (window.__esList = window.__esList || new Set()).add(this); }
    close() { if (this.__open) { this.__open = false; window.__esOpen--; window.__esList.delete(this); } super.close(); }
  };
})()`

// instrument installs countJS in the tab for every document it loads.
func instrument(t *testing.T, tb *uiTab) {
	t.Helper()
	_, err := chromedp.Call(tb.ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: countJS})
	require.NoError(t, err)
}

// tries are the start times (ms, page clock) of the requests to key.
func tries(t *testing.T, tb *uiTab, key string) []float64 {
	t.Helper()
	v, err := tabEval[[]float64](tb, fmt.Sprintf(`(window.__req[%s] || []).map(r => r.s)`, js(key)))
	require.NoError(t, err, "%s: read the requests", tb.name)
	return v
}

func triesAtLeast(key string, n int) string {
	return fmt.Sprintf(`(window.__req[%s] || []).length >= %d`, js(key), n)
}

func inflightMax(t *testing.T, tb *uiTab, key string) int {
	t.Helper()
	v, err := tabEval[int](tb, fmt.Sprintf(`window.__inflightMax[%s] || 0`, js(key)))
	require.NoError(t, err)
	return v
}

// checkPace asserts tries follow the 1 s → 15 s doubling: the k-th gap is
// at least 90% of min(1 s·2^k, 15 s), and no try overlaps another.
func checkPace(t *testing.T, tb *uiTab, key string) {
	t.Helper()
	ts := tries(t, tb, key)
	var gaps []string
	for i := 1; i < len(ts); i++ {
		gaps = append(gaps, fmt.Sprintf("%.0f", ts[i]-ts[i-1]))
	}
	t.Logf("%s: %s: %d tries, gaps (ms) %s", tb.name, key, len(ts), strings.Join(gaps, " "))
	want := 1000.0
	for i := 1; i < len(ts); i++ {
		assert.GreaterOrEqual(t, ts[i]-ts[i-1], 0.9*want, "%s: %s: gap %d of %v is shorter than the backoff", tb.name, key, i, gaps)
		want = min(want*2, 15000)
	}
	assert.Equal(t, 1, inflightMax(t, tb, key), "%s: %s: requests in flight at once", tb.name, key)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	return port
}

const mainText = `document.querySelector('#main').innerText.replace(/\s+/g, ' ')`

// A long database outage (its proxy cut; PostgreSQL stays up): the
// gateway's page, a factory's page, the organizations list and the fleet's
// factory filter each retry at 1, 2, 4, 8, 15 s, one request at a time;
// once the database is back, each page is drawn as it should be: no
// "Trying again…", no error, no row twice. A page left (navigated away
// from) retries no more.
// Would catch: a retry per stream status change or per failure path (two
// timers), an overlapping retry, a backoff that never grows, a page that
// keeps the "not available" banner or adds its rows twice after recovery,
// a retry loop left running by a page navigated away from.
func TestPagesRetryAtBackoffPaceDuringAnOutage(t *testing.T) {
	w, p, a, admin := dbDownWorld(t, freePort(t))
	b := newBrowser(t)
	first := &uiTab{t: t, name: "gateway page", ctx: b.ctx}
	instrument(t, first)
	first.navigate(w.base + "/")
	signInTab(first, admin)
	first.wait("live", liveJS, 15*time.Second)
	first.wait("the fleet", `document.querySelectorAll('.row-name').length === 1`, 15*time.Second)

	p.cut()
	w.waitDatabase("unreachable")

	type pg struct {
		name, route, key string
		tab              *uiTab
	}
	pages := []*pg{
		{name: "gateway page", route: "#/gateways/" + a, key: "/api/gateways/" + a, tab: first},
		{name: "factory page", route: "#/factories/" + w.fid, key: "/api/factories/" + w.fid},
		{name: "organizations", route: "#/organizations", key: "/api/organizations?limit=20&offset=0"},
		{name: "fleet", route: "#/", key: "/api/factories?limit=100&offset=0"},
	}
	for _, x := range pages[1:] {
		x.tab = openUITab(t, b, x.name, "")
		instrument(t, x.tab)
		x.tab.navigate(w.base + "/" + x.route)
		signInTab(x.tab, admin) // the token is per tab; this process has confirmed it
		x.tab.wait("live", liveJS, 15*time.Second)
	}
	first.do("the gateway's page", navigateHash(pages[0].route))
	// Six tries: 0, 1, 3, 7, 15, 30 s.
	for _, x := range pages {
		if ok := testutil.Poll(func() bool { n := len(tries(t, x.tab, x.key)); return n >= 6 }, 45*time.Second); !ok {
			keys, _ := tabEval[string](x.tab, `JSON.stringify(Object.fromEntries(Object.entries(window.__req).map(([k, v]) => [k, v.map(r => Math.round(r.s))])))`)
			t.Fatalf("%s: six tries of %s: the page made %s", x.name, x.key, keys)
		}
		x.tab.wait("six tries", triesAtLeast(x.key, 6), 45*time.Second)
	}
	for _, x := range pages {
		checkPace(t, x.tab, x.key)
		text, _ := tabEval[string](x.tab, mainText)
		if x.name != "fleet" {
			assert.Contains(t, text, "Trying again", "%s during the outage", x.name)
		}
	}

	p.heal()
	w.waitDatabase("ok")
	// Drawn as they should be, without a reload (within the 15 s wait).
	pages[0].tab.wait("the gateway page drawn", showsJS(a, "AUTHENTICATED")+` && document.querySelector('section[aria-labelledby=gw-h] dl')`, 25*time.Second)
	pages[1].tab.wait("the factory page drawn", `document.querySelectorAll('section[aria-labelledby=gw-h] tbody tr').length === 1`, 25*time.Second)
	if !testutil.Poll(func() bool {
		n, _ := tabEval[int](pages[2].tab, `document.querySelectorAll('#main tbody tr').length`)
		return n == 2 // Audit 12 and the migrations' Default Organization
	}, 25*time.Second) {
		text, _ := tabEval[string](pages[2].tab, mainText)
		keys, _ := tabEval[string](pages[2].tab, `JSON.stringify(Object.fromEntries(Object.entries(window.__req).map(([k, v]) => [k, v.map(r => Math.round(r.s))])))`)
		now, _ := tabEval[float64](pages[2].tab, `performance.now()`)
		t.Fatalf("organizations not drawn: %q; requests %s; now %.0f", text, keys, now)
	}
	pages[3].tab.wait("the factory filter filled", `[...document.querySelectorAll('#f-factory option')].filter(o => o.value).length >= 1`, 25*time.Second)
	for _, x := range pages {
		text, _ := tabEval[string](x.tab, mainText)
		assert.NotRegexp(t, `Trying again|not available|unavailable|could not`, text, "%s after recovery", x.name)
	}
	opts, _ := tabEval[int](pages[3].tab, `[...document.querySelectorAll('#f-factory option')].filter(o => o.value).length`)
	assert.Equal(t, 1, opts, "factory filter options after recovery")
	toasts, _ := tabEval[string](pages[0].tab, `[...document.querySelectorAll('#toasts .toast')].map(t => t.textContent).join(' | ')`)
	t.Logf("gateway page's toasts after recovery: %q", toasts)

	// Navigated away: no more tries. The gateway page fails twice (0, 1 s;
	// the next is due at 3 s), is left for a page of nothing; meanwhile the
	// factory page's fourth try (7 s) shows the time has passed.
	p.cut()
	w.waitDatabase("unreachable")
	gwTab, facTab := pages[0].tab, pages[1].tab
	facTab.do("away", navigateHash("#/nowhere"))
	gwTab.do("away", navigateHash("#/nowhere"))
	n0 := len(tries(t, gwTab, pages[0].key))
	f0 := len(tries(t, facTab, pages[1].key))
	facTab.do("the factory page", navigateHash(pages[1].route))
	gwTab.do("the gateway's page", navigateHash(pages[0].route))
	gwTab.wait("two tries", triesAtLeast(pages[0].key, n0+2), 10*time.Second)
	gwTab.do("away", navigateHash("#/nowhere"))
	left, _ := tabEval[float64](gwTab, `performance.now()`)
	n1 := len(tries(t, gwTab, pages[0].key))
	facTab.wait("the factory page's fourth try", triesAtLeast(pages[1].key, f0+4), 20*time.Second)
	gwTab.wait("some seconds past", fmt.Sprintf(`performance.now() > %f`, left+5000), 10*time.Second)
	assert.Equal(t, n1, len(tries(t, gwTab, pages[0].key)), "tries of a page navigated away from")
	p.heal()
	w.waitDatabase("ok")
	for _, x := range pages {
		n, _ := tabEval[int](x.tab, `window.__esOpen`)
		made, _ := tabEval[int](x.tab, `window.__esMade`)
		t.Logf("%s: EventSources open %d, made %d", x.name, n, made)
	}
	t.Logf("console problems: %d (503s of the retries)", len(b.problems()))
}
