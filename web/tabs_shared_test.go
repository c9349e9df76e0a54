package web_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/api"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// The tabs of one browser share one event stream (tabs.js): gatewayd
// speaks HTTP/1.1, a browser keeps six connections per host, and a stream
// per tab left a seventh tab, or any API call, waiting for good
// (TestSeveralTabsDoNotStarveTheUI). One tab leads (a Web Lock) and holds
// /api/events; the others get its events through a BroadcastChannel.

// uiTab is a tab of the UI in a browser, which the test can close.
type uiTab struct {
	t     *testing.T
	name  string
	ctx   context.Context
	close context.CancelFunc
}

// openUITab opens url in a new tab of b's browser (one connection pool, as
// for a person); the tab's console problems count as b's.
func openUITab(t *testing.T, b *browser, name, url string) *uiTab {
	t.Helper()
	tctx, cancel := chromedp.NewContext(b.ctx)
	t.Cleanup(cancel)
	tb := &uiTab{t: t, name: name, ctx: tctx, close: cancel}
	if err := chromedp.Do(tctx); err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	msgs := chromedp.Console(tctx)
	go func() { // ends with the tab
		for m, err := range msgs {
			if err != nil {
				return
			}
			b.record(m)
		}
	}()
	if url != "" {
		tb.navigate(url)
	}
	return tb
}

func (tb *uiTab) navigate(url string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		tb.t.Fatalf("%s: open %s: %v", tb.name, url, err)
	}
}

// tabEval evaluates js (awaiting a promise) in the tab.
func tabEval[T any](tb *uiTab, js string) (T, error) {
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
}

// wait polls js in the tab until it is truthy, failing the test after d
// with what the tab shows.
func (tb *uiTab) wait(what, js string, d time.Duration) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, d+5*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(d))); err != nil {
		shown, _ := tabEval[string](tb, tabStateJS)
		tb.t.Fatalf("%s: waited %s for %s (%s): %v; the tab shows %s", tb.name, d, what, js, err, shown)
	}
}

// tabStateJS is what a tab shows of the stream: its status text and its
// part (leader, follower or own).
const tabStateJS = `(document.querySelector('#live')?.textContent || '(no header)') + ' ' +
  (document.documentElement.dataset.stream || '(no part)') + ' at ' + location.href`

const liveJS = `document.querySelector('#live')?.textContent === 'Live'`

// showsJS is true when the tab shows gateway id in state: its row in a
// list, or its own page; a tab that shows neither is not asked.
func showsJS(id, state string) string {
	return fmt.Sprintf(`(() => {
	  const row = document.querySelector('.row-name[href="#/gateways/%[1]s"]');
	  if (row) return row.parentElement.querySelector('.badge')?.textContent === '%[2]s';
	  const dl = document.querySelector('.status-facts dl');
	  return location.hash === '#/gateways/%[1]s' && dl?.dataset.state === '%[2]s';
	})()`, id, state)
}

// parts counts the tabs' parts in the shared stream.
func parts(tabs []*uiTab) map[string]int {
	n := map[string]int{}
	for _, tb := range tabs {
		p, err := tabEval[string](tb, `document.documentElement.dataset.stream || ''`)
		if err != nil {
			p = "(unreadable: " + err.Error() + ")"
		}
		n[p]++
	}
	return n
}

// leaderOf is the tab that leads, once exactly one does and the rest follow.
func leaderOf(t *testing.T, tabs []*uiTab) *uiTab {
	t.Helper()
	var leader *uiTab
	var seen map[string]int
	ok := testutil.Poll(func() bool {
		seen = parts(tabs)
		if seen["leader"] != 1 || seen["follower"] != len(tabs)-1 {
			return false
		}
		for _, tb := range tabs {
			if p, _ := tabEval[string](tb, `document.documentElement.dataset.stream`); p == "leader" {
				leader = tb
			}
		}
		return leader != nil
	}, 15*time.Second)
	require.True(t, ok, "one leader and %d followers among the tabs; they are %v", len(tabs)-1, seen)
	return leader
}

func postAPI(t *testing.T, base, path string) {
	t.Helper()
	res, err := http.Post(base+"/api"+path, "", nil)
	require.NoError(t, err)
	require.NoError(t, res.Body.Close())
	require.Equal(t, http.StatusAccepted, res.StatusCode, "POST %s", path)
}

// Eight tabs of the UI in one browser (the fleet and gateway pages) all go
// live and show the gateways' states; the server holds one event stream
// for them all, every tab's API calls answer, and a change reaches every
// tab.
func TestEightTabsShareOneEventStream(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h)
	var ids []string
	for i := 0; i < 3; i++ {
		g, _ := h.Add(fmt.Sprintf("shared-%d", i))
		h.WaitState(g.ID, gatewayd.StateAuthenticated, 10*time.Second)
		ids = append(ids, g.ID.String())
	}

	b := newBrowser(t)
	routes := []string{"/", "/gateways/" + ids[0], "/", "/gateways/" + ids[1], "/", "/gateways/" + ids[0], "/organizations", "/gateways/" + ids[2]}
	var tabs []*uiTab
	for i, r := range routes {
		tb := openUITab(t, b, fmt.Sprintf("tab %d (%s)", i+1, r), base+"/#"+r)
		tb.wait("live", liveJS, 15*time.Second)
		tabs = append(tabs, tb)
	}
	for i, tb := range tabs {
		id := ids[0]
		if strings.HasPrefix(routes[i], "/gateways/") {
			id = strings.TrimPrefix(routes[i], "/gateways/")
		} else if routes[i] != "/" {
			continue // shows no gateway state
		}
		tb.wait("the gateway AUTHENTICATED", showsJS(id, "AUTHENTICATED"), 15*time.Second)
	}
	leaderOf(t, tabs)
	// One stream on the server once the gateway pages' replays are done
	// (each closes within 10 s).
	testutil.Eventually(t, func() bool { return h.Telemetry.Events.Subscribers() == 1 }, 20*time.Second,
		"one event stream for %d tabs; the server holds %d", len(tabs), h.Telemetry.Events.Subscribers())

	for _, tb := range tabs {
		answer, err := tabEval[string](tb, `Promise.race([
		  fetch('/api/health', {cache: 'no-store'}).then(r => 'answered ' + r.status),
		  new Promise(r => setTimeout(() => r('no answer in 5 s'), 5000))])`)
		require.NoError(t, err, tb.name)
		assert.Equal(t, "answered 200", answer, "GET /api/health from %s with %d tabs open", tb.name, len(tabs))
	}
	// One more tab still loads: the fleet, all of it.
	ninth := openUITab(t, b, "tab 9 (/)", base+"/")
	ninth.wait("the whole fleet", `document.querySelector('#shown')?.textContent === 'Showing 3 of 3 gateways'`, 15*time.Second)
	tabs = append(tabs, ninth)

	postAPI(t, base, "/gateways/"+ids[0]+"/disconnect")
	for _, tb := range tabs {
		tb.wait("the disconnect", `(`+showsJS(ids[0], "DISCONNECTED")+`) || !document.querySelector('.row-name[href="#/gateways/`+ids[0]+`"]') && location.hash !== '#/gateways/`+ids[0]+`'`, 15*time.Second)
	}
	assert.Empty(t, b.problems(), "console errors, exceptions or CSP violations")
}

// pausedStreams holds the event stream requests of some tabs (Chromium's
// Fetch interception, at the request stage) until let through.
type pausedStreams struct {
	t    *testing.T
	tabs []*uiTab
	ch   chan paused
}

type paused struct {
	tab *uiTab
	ev  *fetch.EventRequestPaused
}

func holdStreams(t *testing.T, tabs []*uiTab) *pausedStreams {
	t.Helper()
	p := &pausedStreams{t: t, tabs: tabs, ch: make(chan paused, 16)}
	pattern := &fetch.RequestPattern{URLPattern: "*/api/events*", RequestStage: fetch.RequestStageRequest}
	for _, tb := range tabs {
		tb := tb
		lctx, cancel := context.WithCancel(tb.ctx)
		t.Cleanup(cancel)
		require.NoError(t, chromedp.Listen(lctx, func(ev any) {
			if e, ok := ev.(*fetch.EventRequestPaused); ok {
				select {
				case p.ch <- paused{tb, e}:
				default:
				}
			}
		}))
		_, err := chromedp.Call(tb.ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{pattern}})
		require.NoError(t, err, "intercept %s's event stream", tb.name)
	}
	return p
}

// next is the next stream request held.
func (p *pausedStreams) next(within time.Duration) paused {
	p.t.Helper()
	select {
	case r := <-p.ch:
		return r
	case <-time.After(within):
		p.t.Fatalf("no tab opened the event stream within %s", within)
		return paused{}
	}
}

// release lets r through, at url when given, and stops holding streams.
func (p *pausedStreams) release(r paused, url string) {
	p.t.Helper()
	_, err := chromedp.Call(r.tab.ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: r.ev.RequestID, URL: url})
	require.NoError(p.t, err, "let %s's stream through", r.tab.name)
	for _, tb := range p.tabs {
		_, err := chromedp.Call(tb.ctx, fetch.Disable, cdp.Empty{})
		require.NoError(p.t, err, "stop intercepting %s", tb.name)
	}
}

// When the leading tab closes another takes over within seconds, and
// every remaining tab gets the changes made after the close, also one made
// while no tab held a stream: the new leader resumes from the last event
// id (no reset, no reload). "reset": the new leader's stream is made to
// resume from an id long gone (as when the gap outgrew the server's
// buffer): the server answers `reset`, and every tab reloads. "no id":
// the tabs saw no event before (a quiet fleet), so the new leader has
// nothing to resume from: every tab reloads once its stream is open.
func TestTheNextTabLeadsWhenTheLeaderCloses(t *testing.T) {
	for _, mode := range []string{"resumes", "reset", "no id"} {
		t.Run(mode, func(t *testing.T) { leaderCloses(t, mode) })
	}
}

func leaderCloses(t *testing.T, mode string) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h)
	a, _ := h.Add("takeover-a")
	bgw, _ := h.Add("takeover-b")
	h.WaitState(a.ID, gatewayd.StateAuthenticated, 10*time.Second)
	h.WaitState(bgw.ID, gatewayd.StateAuthenticated, 10*time.Second)
	aID, bID := a.ID.String(), bgw.ID.String()

	aState := "AUTHENTICATED"
	if mode == "no id" { // a is disconnected before the tabs open: they see no event
		postAPI(t, base, "/gateways/"+aID+"/disconnect")
		h.WaitState(a.ID, gatewayd.StateDisconnected, 10*time.Second)
		aState = "DISCONNECTED"
	}

	b := newBrowser(t)
	var tabs []*uiTab
	for i := 0; i < 4; i++ {
		// ?perf counts resets (gwdPerf.resyncs).
		tb := openUITab(t, b, fmt.Sprintf("tab %d", i+1), base+"/?perf#/")
		tb.wait("live with both gateways", liveJS+` && `+showsJS(aID, aState)+` && `+showsJS(bID, "AUTHENTICATED"), 15*time.Second)
		tabs = append(tabs, tb)
	}
	leader := leaderOf(t, tabs)
	if mode != "no id" {
		// A change every tab sees: each now knows an event id.
		postAPI(t, base, "/gateways/"+aID+"/disconnect")
		for _, tb := range tabs {
			tb.wait("a disconnected", showsJS(aID, "DISCONNECTED"), 15*time.Second)
		}
	}

	var rest []*uiTab
	for _, tb := range tabs {
		if tb != leader {
			rest = append(rest, tb)
		}
	}
	held := holdStreams(t, rest)
	leader.close()
	r := held.next(15 * time.Second)
	if mode == "no id" {
		assert.NotContains(t, r.ev.Request.URL, "last_event_id=", "%s saw no event id", r.tab.name)
	} else {
		assert.Contains(t, r.ev.Request.URL, "last_event_id=", "%s takes over from the last event id seen", r.tab.name)
	}
	// No tab holds a stream now: they say so, and a change made now…
	for _, tb := range rest {
		tb.wait("not live", `document.querySelector('#live')?.textContent === 'Reconnecting…'`, 10*time.Second)
	}
	postAPI(t, base, "/gateways/"+aID+"/connect")
	h.WaitState(a.ID, gatewayd.StateAuthenticated, 10*time.Second)
	url := ""
	if mode == "reset" {
		url = regexp.MustCompile(`last_event_id=\d+`).ReplaceAllString(r.ev.Request.URL, "last_event_id=1")
	}
	held.release(r, url)
	// …reaches every tab once the new leader's stream is open.
	for _, tb := range rest {
		tb.wait("live, with a's reconnect", liveJS+` && `+showsJS(aID, "AUTHENTICATED"), 15*time.Second)
	}
	assert.Same(t, r.tab, leaderOf(t, rest), "the tab whose stream opened leads")
	// And so does a change made after.
	postAPI(t, base, "/gateways/"+bID+"/disconnect")
	for _, tb := range rest {
		tb.wait("b's disconnect", showsJS(bID, "DISCONNECTED"), 15*time.Second)
	}
	for _, tb := range rest {
		resyncs, err := tabEval[int](tb, `window.gwdPerf.resyncs`)
		require.NoError(t, err)
		if mode != "resumes" {
			assert.Positive(t, resyncs, "%s reloaded after the leader's reset", tb.name)
		} else {
			assert.Zero(t, resyncs, "%s resumed without a reset", tb.name)
		}
	}
	testutil.Eventually(t, func() bool { return h.Telemetry.Events.Subscribers() == 1 }, 10*time.Second,
		"one event stream for %d tabs; the server holds %d", len(rest), h.Telemetry.Events.Subscribers())
	assert.Empty(t, b.problems(), "console errors, exceptions or CSP violations")
}

// Tabs share a stream only with tabs that hold the same token (it lives in
// sessionStorage, one per tab): a tab whose token is revoked gets nothing
// more through a tab whose token still holds, and the names the tabs meet
// under do not carry the token.
func TestTabsShareTheStreamOnlyWithTheirToken(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h, func(o *api.Options) { o.AuthEnabled = true })
	ctx := context.Background()
	x, secretX, err := h.Store.CreateToken(ctx, "tab x", gatewayd.RoleViewer, nil)
	require.NoError(t, err)
	_, secretY, err := h.Store.CreateToken(ctx, "tab y", gatewayd.RoleOperator, nil)
	require.NoError(t, err)
	g, _ := h.Add("tokens")
	h.WaitState(g.ID, gatewayd.StateAuthenticated, 10*time.Second)
	id := g.ID.String()

	b := newBrowser(t)
	withToken := func(name, secret string) *uiTab {
		tb := openUITab(t, b, name, base+"/api/health") // the origin, for its sessionStorage
		_, err := tabEval[bool](tb, `sessionStorage.setItem('gatewayd.token', `+js(secret)+`) ?? true`)
		require.NoError(t, err)
		tb.navigate(base + "/")
		tb.wait("live, a signed in", liveJS+` && `+showsJS(id, "AUTHENTICATED"), 15*time.Second)
		return tb
	}
	x1, y1, x2, y2 := withToken("x 1", secretX), withToken("y 1", secretY), withToken("x 2", secretX), withToken("y 2", secretY)
	all := []*uiTab{x1, y1, x2, y2}
	for tb, want := range map[*uiTab]string{x1: "leader", y1: "leader", x2: "follower", y2: "follower"} {
		got, err := tabEval[string](tb, `document.documentElement.dataset.stream`)
		require.NoError(t, err)
		assert.Equal(t, want, got, tb.name)
	}
	testutil.Eventually(t, func() bool { return h.Telemetry.Events.Subscribers() == 2 }, 10*time.Second,
		"one event stream per token; the server holds %d", h.Telemetry.Events.Subscribers())
	names, err := tabEval[string](x1, `navigator.locks.query().then(q => [...q.held, ...q.pending].map(l => l.name).join(' '))`)
	require.NoError(t, err)
	assert.NotContains(t, names, secretX)
	assert.NotContains(t, names, secretY)
	assert.Len(t, uniq(strings.Fields(names)), 2, "one lock per token: %s", names)

	// X revoked: its stream ends (API.md §10) and its tabs ask for a token;
	// Y's tabs stay live and get the next change, X's do not.
	_, err = h.Store.RevokeToken(ctx, x.ID)
	require.NoError(t, err)
	for _, tb := range []*uiTab{x1, x2} {
		tb.wait("the sign-in dialog", `document.querySelector('#signin')?.open`, 20*time.Second)
	}
	disconnectAsY := func() {
		req, err := http.NewRequest(http.MethodPost, base+"/api/gateways/"+id+"/disconnect", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+secretY)
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		require.NoError(t, res.Body.Close())
		require.Equal(t, http.StatusAccepted, res.StatusCode)
	}
	disconnectAsY()
	h.WaitState(g.ID, gatewayd.StateDisconnected, 10*time.Second)
	for _, tb := range []*uiTab{y1, y2} {
		tb.wait("live, with the disconnect", liveJS+` && `+showsJS(id, "DISCONNECTED"), 15*time.Second)
	}
	// Y's tabs have shown it; the events came to the browser then, so X's
	// would have them by now too. Give them a second more all the same.
	ok := testutil.Poll(func() bool {
		for _, tb := range []*uiTab{x1, x2} {
			if v, _ := tabEval[bool](tb, showsJS(id, "DISCONNECTED")); v {
				return true
			}
		}
		return false
	}, time.Second)
	assert.False(t, ok, "a tab whose token was revoked got an event through another token's tab")
	for _, tb := range all {
		s, _ := tabEval[string](tb, tabStateJS)
		t.Logf("%s: %s", tb.name, s)
	}
	assert.Empty(t, b.problems(), "console errors, exceptions or CSP violations")
}

// Where the browser offers no Web Locks (an insecure context: http to a
// host other than localhost) each tab keeps a stream of its own, as
// before tabs shared one.
func TestTabsWithoutWebLocksKeepAStreamEach(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h)
	g, _ := h.Add("no-locks")
	h.WaitState(g.ID, gatewayd.StateAuthenticated, 10*time.Second)
	id := g.ID.String()

	b := newBrowser(t)
	var tabs []*uiTab
	for i := 0; i < 2; i++ {
		tb := openUITab(t, b, fmt.Sprintf("tab %d", i+1), "")
		_, err := chromedp.Call(tb.ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
			Source: `Object.defineProperty(Navigator.prototype, 'locks', {get: () => undefined, configurable: true});`})
		require.NoError(t, err)
		tb.navigate(base + "/")
		tb.wait("live, on its own stream", liveJS+` && document.documentElement.dataset.stream === 'own' && `+showsJS(id, "AUTHENTICATED"), 15*time.Second)
		tabs = append(tabs, tb)
	}
	testutil.Eventually(t, func() bool { return h.Telemetry.Events.Subscribers() == 2 }, 10*time.Second,
		"a stream per tab; the server holds %d", h.Telemetry.Events.Subscribers())
	postAPI(t, base, "/gateways/"+id+"/disconnect")
	for _, tb := range tabs {
		tb.wait("the disconnect", showsJS(id, "DISCONNECTED"), 15*time.Second)
	}
	assert.Empty(t, b.problems(), "console errors, exceptions or CSP violations")
}

func uniq(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
