package actors_test

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors"
	"github.com/ctcgw/gatewayd/actors/actorstest"
)

// typeFirstReading is a small pushed reading that names its Type first,
// as gateways write it (so the reader knows it by its head).
func typeFirstReading(serial int64) []byte {
	axis := strings.TrimSuffix(strings.Repeat("1,2,", 4), ",")
	return fmt.Appendf(nil, `{"Type":"NOT_DYN_READING","From":"SERV","Target":"UI","Data":{"ID":1,"Serial":"%d","Time":"2026-12-06 10:00:00","X":"%s","Y":"%s","Z":"%s"}}`,
		serial, axis, axis, axis)
}

// honestQueuedPeer is a gateway that, on each of its first pings, writes
// n readings (already on their way, say) and only then the pong: its
// pongs come behind frames the intake holds.
func honestQueuedPeer(t *testing.T, n int, pingsWithReadings int64) (url string, pongs *atomic.Int64) {
	pongs = new(atomic.Int64)
	var pings atomic.Int64
	url = actorstest.ServePeer(t, func(ws *websocket.Conn) {
		var mu sync.Mutex
		send := func(typ int, b []byte) error {
			mu.Lock()
			defer mu.Unlock()
			_ = ws.SetWriteDeadline(time.Now().Add(30 * time.Second))
			return ws.WriteMessage(typ, b)
		}
		subscribed := atomic.Bool{}
		ws.SetPingHandler(func(data string) error {
			if subscribed.Load() && pings.Add(1) <= pingsWithReadings {
				for range n {
					if err := send(websocket.TextMessage, typeFirstReading(20001)); err != nil {
						return err
					}
				}
			}
			err := send(websocket.PongMessage, []byte(data))
			pongs.Add(1)
			return err
		})
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				return
			}
			list := `{"Type":"RTN_DYN","From":"SERV","Target":"UI","Data":{"20001":{"Serial":20001,"Connected":1,"PartNum":"P","ReadRate":1000,"Samples":8,"Name":"s"}}}`
			if answerLogin(func(m []byte) { _ = send(websocket.TextMessage, m) }, b, list) {
				subscribed.Store(true)
			}
		}
	})
	return url, pongs
}

// An honest gateway whose pong is queued behind three readings, each of
// which the full intake holds for its intakeWait (1 s, as long as the
// pong timeout): its pong arrives ~3 s after the ping, all of it
// gatewayd's hold. It must not be failed "no pong". Would catch: a pong
// timer that counts gatewayd's holds against the gateway (a false
// timeout that drops an honest connection under load). (Checked by an
// audit, helper 2, whose test this is.)
func TestPongQueuedBehindHeldReadingsIsNotATimeout(t *testing.T) {
	cfg := actorstest.FastConfig()
	cfg.PingInterval, cfg.PongTimeout = 200*time.Millisecond, time.Second
	cfg.ReadingTimeout = 2 * time.Second // intakeWait 1 s
	h := newHarness(t, cfg)
	url, pongs := honestQueuedPeer(t, 3, 3)
	g := addRawGateway(t, h, "honestq", url)
	h.WaitState(g.ID, gatewayd.StateAuthenticated, 10*time.Second)
	drain := actors.FillIntake(h.Runtime, 1<<30)
	// Three pings with three readings before their pongs: ~9 s of
	// holds; then ordinary pongs for a while.
	eventually(t, func() bool { return pongs.Load() >= 3 }, 10*time.Second, "pings answered behind readings")
	eventually(t, func() bool { return actors.IntakeWaiting(h.Runtime) == 0 && pongs.Load() >= 20 }, 30*time.Second, "the queued readings read")
	drain()
	st := h.Status(g.ID)
	require.Equal(t, gatewayd.StateAuthenticated, st.State, "last_error %v", st.LastError)
	require.Zero(t, st.ReconnectAttempts, "last_error %v", st.LastError)
}
