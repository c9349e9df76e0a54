package web_test

import (
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"

	"github.com/ctcgw/gatewayd/actors/actorstest"
)

// README Web UI: "Readable at 1280×800 and at 375 px". b143864 gave every
// td overflow-wrap: anywhere (for a 255-character name). In an auto-layout
// table that also lowers each cell's min-content width to one character,
// so at 375 px the tables (which sit in a .table-wrap that scrolls
// sideways) are squeezed to the screen instead: short words, times and
// numbers nobody chose to be long are broken mid-word.
// (Found by an audit, helper 10, whose test this is.)
func TestPhoneTablesBreakNoShortWord(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h)
	g, _ := addWithSensors(t, h, "phone-words", 3)

	b := newBrowser(t)
	b.do("a phone", chromedp.EmulateViewport(375, 740, chromedp.EmulateMobile))
	b.do("open the UI", chromedp.Navigate(base+"/#/"))
	b.wait("the fleet", `document.querySelector('.row-name')`)
	// broken lists the words (no white space, at most 24 characters) of
	// table cells that the browser laid out on more than one line.
	const broken = `(() => {
	  const out = [];
	  for (const td of document.querySelectorAll('main td')) {
	    const walker = document.createTreeWalker(td, NodeFilter.SHOW_TEXT);
	    for (let n; (n = walker.nextNode());) {
	      const re = /\S+/g;
	      for (let m; (m = re.exec(n.data));) {
	        if (m[0].length > 24 || /[-‐/]/.test(m[0])) continue;
	        const r = document.createRange();
	        r.setStart(n, m.index); r.setEnd(n, m.index + m[0].length);
	        const tops = new Set([...r.getClientRects()].filter(x => x.width > 0).map(x => Math.round(x.top)));
	        if (tops.size > 1) out.push(m[0]);
	      }
	    }
	  }
	  return out.slice(0, 12).join(' | ');
	})()`
	found := map[string]string{}
	for _, p := range []struct{ hash, ready string }{
		{"#/gateways", `document.querySelector('main table tbody tr')`},
		{"#/sensors", `document.querySelector('main table tbody tr a[data-gateway-name]')`},
		{"#/gateways/" + g.ID.String(), `document.querySelector('main table tbody tr')`},
	} {
		b.do("open "+p.hash, chromedp.Evaluate[chromedp.Void](`location.hash = `+js(p.hash)))
		b.wait(p.hash, p.ready)
		if s := eval[string](b, broken); s != "" {
			found[p.hash] = s
		}
	}
	b.shot("phone-words", true)
	assert.Empty(t, found, "short words of table cells broken across lines at 375 px")
}
