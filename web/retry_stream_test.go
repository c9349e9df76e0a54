package web_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/ctcgw/gatewayd/internal/testutil"
)

// (Found by an audit, helper 4, whose test this is.) While gatewayd cannot be reached (stopped, a network
// cut), the pages' tries back off from 1 s to 15 s (live.js again); the
// shared event stream was left to EventSource's own reconnection, every
// 3 s for as long as the outage lasts (a browser's default; gatewayd sends
// no retry:), so every browser open on gatewayd knocked every 3 s, and
// only a stream the server refused (401, 503) backed off. An operator
// expects the stream to back off as the pages do.
// Would catch: a stream that reconnects at a fixed pace during a long
// outage.
func TestEventStreamBacksOffWhileGatewaydIsUnreachable(t *testing.T) {
	w := newRealWorld(t, freePort(t), "AUTH_ENABLED=false")
	a := w.addGateway("sb-a")
	w.start("")
	w.waitStates("", map[string]string{a: "AUTHENTICATED"})
	p := newListenProxy(t, fmt.Sprintf("127.0.0.1:%d", w.port))

	b := newBrowser(t)
	tab := &uiTab{t: t, name: "fleet", ctx: b.ctx}
	tab.navigate("http://" + p.ln.Addr().String() + "/")
	tab.wait("live", liveJS, 15*time.Second)
	tab.wait("the fleet", showsJS(a, "AUTHENTICATED"), 15*time.Second)

	p.cut()
	start := time.Now()
	streams := func() []float64 {
		p.mu.Lock()
		defer p.mu.Unlock()
		var out []float64
		for _, r := range p.tried {
			if strings.Contains(r.line, "/api/events") && !strings.Contains(r.line, "gateway_id") {
				out = append(out, r.at.Sub(start).Seconds())
			}
		}
		return out
	}
	// 35 s of outage, told by the page's own clock.
	at, _ := tabEval[float64](tab, `performance.now()`)
	tab.wait("35 s", fmt.Sprintf(`performance.now() > %f`, at+35000), 45*time.Second)
	ts := streams()
	var s []string
	for _, x := range ts {
		s = append(s, fmt.Sprintf("%.1f", x))
	}
	t.Logf("stream reconnects in 35 s: %d at %s", len(ts), strings.Join(s, " "))
	// Backing off from 1 s (or the browser's 3 s) to 15 s: at most 7.
	assert.LessOrEqual(t, len(ts), 7, "event stream reconnects during 35 s of outage: %s", strings.Join(s, " "))

	p.heal()
	tab.wait("live again", liveJS, 20*time.Second)
	testutil.Eventually(t, func() bool { ok, _ := tabEval[bool](tab, showsJS(a, "AUTHENTICATED")); return ok }, 10*time.Second, "the fleet again")
}
