package web_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// API.md §9: "A web UI at `/` … shows the fleet's states live … a
// gateway's status and recent changes"; app.js: "every view is a real
// link that can be bookmarked, opened in a new tab". An operator who
// opened three gateways in three tabs of one browser and then the fleet in
// a fourth got a page that never loaded: each gateway page held two event
// streams (the shared one and its own, filtered), the server speaks
// HTTP/1.1 only, and a browser keeps at most six connections per host, so
// six never-ending streams left no connection for anything else — not the
// page's files, not an API call. A gateway page now holds the shared
// stream only (its own replays the history and closes): four gateway tabs
// and the fleet in a fifth leave a connection free. (Found by an audit,
// helper 6, whose test this is, with three tabs.)
func TestSeveralTabsDoNotStarveTheUI(t *testing.T) {
	const gatewayTabs = 4
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h)
	var ids []string
	for i := 0; i < gatewayTabs; i++ {
		g, _ := h.Add(fmt.Sprintf("tab-%d", i))
		h.WaitState(g.ID, gatewayd.StateAuthenticated, 10*time.Second)
		ids = append(ids, g.ID.String())
	}

	b := newBrowser(t)
	// Tab 1 is the browser's first; tabs 2 and 3 are new tabs in the same
	// browser (one connection pool, as for a person).
	b.do("gateway page in tab 1", chromedp.Navigate(base+"/#/gateways/"+ids[0]))
	b.wait("its status", `document.querySelector('.status-facts dl')?.dataset.state === 'AUTHENTICATED'`)
	for i := 1; i < len(ids); i++ {
		tctx := newTab(t, b)
		ctx, c2 := context.WithTimeout(tctx, 20*time.Second)
		// Open, with the shared stream (the header says Live) and its
		// history replayed.
		if err := chromedp.Do(ctx, chromedp.Navigate(base+"/#/gateways/"+ids[i]),
			chromedp.Poll[chromedp.Void](`document.querySelector('#live')?.textContent === 'Live' && document.querySelector('.history li')`,
				chromedp.WithPollingTimeout(15*time.Second))); err != nil {
			c2()
			b.fail("gateway page in tab %d: %v", i+1, err)
		}
		c2()
	}

	// Tab 1, loaded, asks the API something small (what any click does).
	answer := eval[string](b, `Promise.race([
	  fetch('/api/health', {cache: 'no-store'}).then(r => 'answered ' + r.status),
	  new Promise(r => setTimeout(() => r('no answer in 5 s'), 5000))])`)
	assert.Equal(t, "answered 200", answer, "GET /api/health from tab 1 with %d gateway pages open", gatewayTabs)

	// One more tab: the fleet. It should show the gateways.
	tctx := newTab(t, b)
	// Navigate waits for the load event, which may never come: 5 s, then
	// look at what the tab shows.
	ctx, c4 := context.WithTimeout(tctx, 5*time.Second)
	defer c4()
	_ = chromedp.Do(ctx, chromedp.Navigate(base+"/"))
	want := fmt.Sprintf("Showing %d of %d gateways", gatewayTabs, gatewayTabs)
	var shown string
	testutil.Poll(func() bool { // a miss is told below
		ectx, ce := context.WithTimeout(tctx, 2*time.Second)
		defer ce()
		v, err := chromedp.Run(ectx, chromedp.Evaluate[string](`document.querySelector('#shown')?.textContent || (document.readyState + ' ' + location.href + ': ' + (document.querySelector('main')?.textContent || '(no page)'))`))
		if err != nil {
			shown = "(the page cannot be read: " + err.Error() + ")"
			return false
		}
		shown = v
		return shown == want
	}, 15*time.Second)
	assert.Equal(t, want, shown,
		"the fleet in another tab, 15 s after opening it, with %d gateway pages open in other tabs", gatewayTabs)
}

// newTab opens another tab in b's browser (one connection pool, as for a
// person), closed at cleanup.
func newTab(t *testing.T, b *browser) context.Context {
	t.Helper()
	tctx, cancel := chromedp.NewContext(b.ctx)
	t.Cleanup(cancel)
	if err := chromedp.Do(tctx); err != nil { // opens the tab, with tctx's lifetime
		t.Fatalf("open a tab: %v", err)
	}
	return tctx
}
