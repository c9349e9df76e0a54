package web_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/events"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// cutProxy forwards TCP connections to target; cut closes every open one
// and refuses new ones (accepted and closed at once) until heal: a
// network blip between a browser and gatewayd.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]struct{}
	// record: while down, a new connection's first line is read and
	// noted in tried (what reached "the server") before it is closed
	// (newListenProxy); else it is closed at once.
	record bool
	tried  []triedReq
}

type triedReq struct {
	at   time.Time
	line string
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	return startCutProxy(t, target, false)
}

func startCutProxy(t *testing.T, target string, record bool) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}, record: record}
	go p.serve()
	t.Cleanup(func() {
		_ = ln.Close()
		p.cut()
	})
	return p
}

func (p *cutProxy) url() string { return "http://" + p.ln.Addr().String() }

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down && p.record {
			p.mu.Unlock()
			go func() {
				_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
				line, _ := bufio.NewReader(c).ReadString('\n')
				_ = c.Close()
				if line = strings.TrimSpace(line); line != "" {
					p.mu.Lock()
					p.tried = append(p.tried, triedReq{time.Now(), line})
					p.mu.Unlock()
				}
			}()
			continue
		}
		if p.down {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		p.conns[c] = struct{}{}
		p.conns[up] = struct{}{}
		p.mu.Unlock()
		go func() { _, _ = io.Copy(up, c); _ = up.Close(); _ = c.Close() }()
		go func() { _, _ = io.Copy(c, up); _ = up.Close(); _ = c.Close() }()
	}
}

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
}

func (p *cutProxy) heal() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// disconnectDuringABlip cuts the browser off (p), waits for the page to
// see it, disconnects gateway id through the API (base, past the proxy),
// runs meanwhile, and heals the proxy.
func disconnectDuringABlip(t *testing.T, h *actorstest.Harness, b *browser, p *cutProxy, base, id string, meanwhile func()) {
	t.Helper()
	p.cut()
	b.wait("the page sees the blip", `document.querySelector('#live')?.textContent !== 'Live'`)
	res, err := http.Post(base+"/api/gateways/"+id+"/disconnect", "", nil)
	require.NoError(t, err)
	require.NoError(t, res.Body.Close())
	require.Equal(t, http.StatusAccepted, res.StatusCode)
	h.WaitState(uuid.MustParse(id), gatewayd.StateDisconnected, 10*time.Second)
	meanwhile()
	p.heal()
}

// API.md §9: the UI "shows the fleet's states live (through /api/events,
// without reloading)". The fleet's stream is opened live-only (no
// last_event_id) and learns an id to resume from only from an event it
// listens to: on a quiet fleet it has none. A network blip then dropped
// it, and it came back live-only again (EventSource had no Last-Event-ID
// to send either): whatever happened during the blip was neither replayed
// nor answered with a reset, and a gateway disconnected during a short
// blip showed AUTHENTICATED on the fleet for good, under a header that
// said "Live". (Found by an audit, helper 6, whose test this is.)
func TestFleetSeesChangesDuringABlip(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h)
	g, _ := h.Add("quiet")
	h.WaitState(g.ID, gatewayd.StateAuthenticated, 10*time.Second)
	p := newCutProxy(t, strings.TrimPrefix(base, "http://"))

	b := newBrowser(t)
	b.do("the fleet", chromedp.Navigate(p.url()+"/"))
	badge := `document.querySelector('.row-name[href="#/gateways/` + g.ID.String() + `"]')?.parentElement.querySelector('.badge')?.textContent`
	b.wait("the gateway, authenticated", badge+` === 'AUTHENTICATED'`)
	b.wait("the stream live", `document.querySelector('#live')?.textContent === 'Live'`)

	disconnectDuringABlip(t, h, b, p, base, g.ID.String(), func() {})

	b.wait("the stream live again", `document.querySelector('#live')?.textContent === 'Live'`, 30*time.Second)
	var shown string
	testutil.Poll(func() bool { shown = eval[string](b, badge); return shown == "DISCONNECTED" }, 10*time.Second) // a miss is told below
	assert.Equal(t, "DISCONNECTED", shown, "the fleet's badge of a gateway disconnected during a blip, 10 s after the stream came back")
	assert.Equal(t, "0", eval[string](b, `document.querySelector('.count[data-state=AUTHENTICATED] .count-n').textContent`),
		"the AUTHENTICATED count")
}

// API.md §9: the UI "shows the fleet's states live
// (through /api/events, without reloading), a gateway's status"; and
// `Last-Event-ID` "resumes from the last EVENTS_BUFFER events (an older id
// gets `event: reset` first)" — a reset means "what the client knew is
// stale: it must reload" (live.js). The fleet reloaded on reset; a
// gateway's page did not: its reset handler only cleared the history, so
// a change that the ring no longer held when the page's stream came back
// was never shown. After a network blip during which the gateway was
// disconnected and the fleet was busy (10,001 sensor events: minutes of
// temperatures from a large fleet, or one reconnect storm), the header
// said "Live" again but the gateway's page went on saying AUTHENTICATED,
// for good. (Found by an audit, helper 6, whose test this is.)
func TestGatewayPageReloadsAfterReset(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h)
	g, _ := h.Add("blip")
	other, _ := h.Add("busy")
	h.WaitState(g.ID, gatewayd.StateAuthenticated, 10*time.Second)
	h.WaitState(other.ID, gatewayd.StateAuthenticated, 10*time.Second)
	p := newCutProxy(t, strings.TrimPrefix(base, "http://"))

	b := newBrowser(t)
	b.do("the gateway's page", chromedp.Navigate(p.url()+"/#/gateways/"+g.ID.String()))
	state := `document.querySelector('.status-facts dl')?.dataset.state`
	b.wait("its status", state+` === 'AUTHENTICATED'`)
	b.wait("its facts and sensors drawn", `document.querySelector('section[aria-labelledby=gw-h] dl') && document.querySelector('section[aria-labelledby=sens-h] table')`)
	// Its recent changes are replayed from the ring.
	b.wait("its history", `document.querySelector('.history li')`)
	b.wait("the stream live", `document.querySelector('#live')?.textContent === 'Live'`)

	// Meanwhile, on the server: an operator disconnects the gateway, and
	// the rest of the fleet goes on publishing (more than the ring holds).
	disconnectDuringABlip(t, h, b, p, base, g.ID.String(), func() {
		ref := []gatewayd.SensorRef{{ID: other.ID, GatewayID: other.ID, FactoryID: other.FactoryID}}
		for i := 0; i <= events.DefaultRingSize; i++ {
			h.Telemetry.SensorsChanged(ref)
		}
	})

	b.wait("the stream live again", `document.querySelector('#live')?.textContent === 'Live'`, 30*time.Second)
	var shown string
	testutil.Poll(func() bool { shown = eval[string](b, state); return shown == "DISCONNECTED" }, 10*time.Second) // a miss is told below
	badge := eval[string](b, `document.querySelector('.page-head .badge')?.textContent || ''`)
	assert.Equal(t, "DISCONNECTED", shown, "the gateway page's status, 10 s after its stream came back (page badge %q)", badge)
}
