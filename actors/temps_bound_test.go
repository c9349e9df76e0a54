package actors_test

// (Found by an audit, helper 1, whose test this is.)

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors"
	"github.com/ctcgw/gatewayd/actors/actorstest"
)

// newSerialsPeer is a gateway that, at each of its first bursts
// subscriptions, sends burst temperatures of serials it never named
// before, under the flood limits' burst, and closes the socket, to send
// the next burst on the next connection. subs counts the subscriptions:
// gatewayd asks for one once it has handled the login's answer, which
// comes after every frame of the connections before.
func newSerialsPeer(t *testing.T, first int64, burst, bursts int, subs *atomic.Int64) string {
	next := first
	list := fmt.Sprintf(`{"Type":"RTN_DYN","From":"SERV","Target":"UI","Data":{"%d":{"Serial":%d,"Connected":1,"PartNum":"P","ReadRate":1000,"Samples":5000,"Name":"s"}}}`,
		first, first)
	return actorstest.ServePeer(t, func(ws *websocket.Conn) {
		write := func(b []byte) { _ = ws.WriteMessage(websocket.TextMessage, b) }
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if !answerLogin(write, b, list) {
				continue
			}
			if subs.Add(1) > int64(bursts) {
				continue
			}
			for range burst {
				next++
				if ws.WriteMessage(websocket.TextMessage,
					fmt.Appendf(nil, `{"Type":"NOT_DYN_TEMP","From":"SERV","Target":"UI","Data":{"Serial":"%d","Temp":21.5}}`, next)) != nil {
					return
				}
			}
			_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, ""), time.Now().Add(time.Second))
			return
		}
	})
}

// The flood limits are per connection, and a gateway may reconnect: one
// that sent a burst of new serials' temperatures at each connection
// added ~1,900 pending temperatures each time, and while the database
// took longer to write them than they came (100 such gateways under the
// flood limits: 233,000 waiting after 10 s, the database storing ~15,000
// a second, and growing) nothing bounded them: a gateway's serials
// waiting were bounded at 4,096 only while the writes failed. Now always:
// a gateway keeps at most 4,096 live sensors stored, so no more of its
// serials can be new ones worth waiting for; a known serial's report
// still replaces what waits, and an honest gateway's temperatures are
// stored.
func TestReconnectingBurstsOfNewSerialsAreBounded(t *testing.T) {
	const n, burst = 5, 1900
	cfg := actorstest.FastConfig()
	// A flush that does not come while the test runs stands in for a
	// database that takes longer to write a flush than the next takes to
	// come in; FlushWriter flushes by hand.
	cfg.SensorFlushInterval = time.Hour
	h := actorstest.New(t, tmpl, cfg)
	honest, sg := h.Add("honest")
	h.WaitState(honest.ID, gatewayd.StateAuthenticated, 10*time.Second)
	var serial int64
	eventually(t, func() bool {
		actors.FlushWriter(h.Runtime)
		list, err := h.Store.GatewaySensors(context.Background(), honest.ID)
		if err != nil || len(list) == 0 {
			return false
		}
		serial = list[0].Serial
		return true
	}, 10*time.Second, "honest sensors stored")

	// Three connections' bursts each: 5,700 new serials a gateway,
	// handled once each has subscribed a fourth time.
	subs := make([]*atomic.Int64, n)
	for i := range n {
		subs[i] = new(atomic.Int64)
		addRawGateway(t, h, fmt.Sprintf("bursts-%d", i), newSerialsPeer(t, int64(i+1)*1_000_000_000, burst, 3, subs[i]))
	}
	eventually(t, func() bool {
		for _, s := range subs {
			if s.Load() < 4 {
				return false
			}
		}
		return true
	}, 30*time.Second, "bursts sent and handled")
	pending := actors.PendingTemperatures(h.Runtime)
	t.Logf("%d gateways sent %d new serials each; %d temperatures wait", n, 3*burst, pending)
	assert.LessOrEqual(t, pending, n*4096+16, "a gateway's serials waiting are bounded")

	require.Equal(t, 1, sg.PushTemperature(serial, 33.5))
	eventually(t, func() bool {
		actors.FlushWriter(h.Runtime)
		list, err := h.Store.GatewaySensors(context.Background(), honest.ID)
		for _, s := range list {
			if err == nil && s.Serial == serial && s.LastTemperatureC != nil && *s.LastTemperatureC == 33.5 {
				return true
			}
		}
		return false
	}, 10*time.Second, "the honest temperature is stored")
}
