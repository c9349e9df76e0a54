package actors_test

// (Found by an audit, helper 9, whose test this is.) The pong timer and the reader's hold (holdClock.pongWait).

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// API.md §1 GATEWAY_PONG_TIMEOUT: "no pong within this: the connection is
// dead, reconnect". A gateway whose WebSocket stack stopped answering
// pings (it no longer reads what gatewayd sends: commands and pings go
// unanswered) but still pushes a small reading of its own every 300 ms is
// never failed: each reading passes through admitLarge, which marks the
// reader held for a few microseconds (the intake is empty), and pongWait
// then grants a whole new PONG_TIMEOUT counted from that release. The
// pong was never behind the frame (the hold lasted microseconds), yet the
// timer re-arms for ever and the gateway stays AUTHENTICATED.
func TestPushedReadingsDoNotStretchThePongTimerForever(t *testing.T) {
	cfg := actorstest.FastConfig()
	cfg.PingInterval, cfg.PongTimeout = 200*time.Millisecond, time.Second
	h := newHarness(t, cfg)
	p := newRawPeer(t, "127.0.0.1:0", func(p *rawPeer, raw net.Conn) {
		reading := unmaskedFrame(true, 1, []byte(`{"Type":"NOT_DYN_READING","From":"SERV","Target":"UI","Data":{"ID":1,"Serial":"20001","Time":"2026-12-06 10:00:00","X":"1,2","Y":"1,2","Z":"1,2"}}`))
		tick := time.NewTicker(300 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-tick.C:
				if p.write(raw, reading) != nil {
					return
				}
			}
		}
	})
	p.answer = false // its ping answers stopped
	g := addRawGateway(t, h, "pushnopong", p.url)
	h.WaitState(g.ID, gatewayd.StateAuthenticated, 10*time.Second)

	// PONG_TIMEOUT is 1 s and a ping goes out every 200 ms: allow eight times that.
	var st gatewayd.Status
	ok := testutil.Poll(func() bool { st = h.Status(g.ID); return st.State != gatewayd.StateAuthenticated }, 8*time.Second)
	require.True(t, ok, "no pong for 8 s, yet the gateway is still %s (last_error %v, pongs answered: none)", st.State, st.LastError)
	require.NotNil(t, st.LastError)
	require.Contains(t, *st.LastError, "no pong within 1s")
}
