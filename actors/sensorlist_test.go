package actors_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	goruntime "runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors/actorstest"
)

// bigListPeer answers every GET_DYN_CONNECTED with n sensors of serials
// never listed before (a gateway whose sensor list changes at each ask),
// closing the connection after each of its first rounds-1 answers.
type bigListPeer struct {
	url    string
	rounds int
	asked  atomic.Int64
}

func newBigListPeer(t *testing.T, n, rounds int) *bigListPeer {
	t.Helper()
	p := &bigListPeer{rounds: rounds}
	p.url = actorstest.ServePeer(t, func(ws *websocket.Conn) {
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				return
			}
			var req struct{ Type string }
			_ = json.Unmarshal(b, &req)
			switch req.Type {
			case "POST_LOGIN":
				_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"Type":"RTN_LOGIN","From":"SERV","Target":"UI","Data":{"Email":"e","Success":true}}`))
			case "GET_DYN_CONNECTED":
				k := p.asked.Add(1)
				var buf bytes.Buffer
				buf.WriteString(`{"Type":"RTN_DYN","From":"SERV","Target":"UI","Data":{`)
				base := k * 1_000_000
				for i := range int64(n) {
					if i > 0 {
						buf.WriteByte(',')
					}
					fmt.Fprintf(&buf, `"%d":{}`, base+i)
				}
				buf.WriteString(`}}`)
				_ = ws.WriteMessage(websocket.TextMessage, buf.Bytes())
				if k < int64(p.rounds) {
					// A new connection, and with it a new discovery.
					_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(time.Second))
					return
				}
			case "POST_SUB_CHANGES":
				_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"Type":"RTN_DYN","From":"SERV","Target":"UI","Data":{}}`))
			}
		}
	})
	return p
}

// A gateway answers GET_DYN_CONNECTED with ~315,000 sensors (4 MiB of
// `"serial":{}` entries, under the frame limit; a new list at each of its
// three logins), and another gateway's readings must still be stored
// within their timeouts (mission: "one gateway's fault harms only
// itself"). The list held up the writer that stores every gateway's
// readings: one MergeDiscoveries statement of the whole list ran on the
// writer's only goroutine for ~30 s (past 30 s it was cancelled and tried
// again), and another gateway's reading, acquired in milliseconds, stayed
// RUNNING in the database for as long, beyond every timeout that reading
// has. (Found by an audit, helper 1, whose test this is.)
func TestHugeSensorListOfOneGatewayDoesNotHoldUpAnothersReadings(t *testing.T) {
	cfg := actorstest.FastConfig()
	h := newHarness(t, cfg)
	// The hostile's actor parses a list of ~315,000 entries for seconds
	// (under -race on a loaded CI box, for longer than the test runs),
	// and the runtime's shutdown at the end waits for it: its own actor's
	// time, which SHUTDOWN_TIMEOUT bounds in a process.
	h.ShutdownWait = 2 * time.Minute
	_, sensor := honestSensor(t, h)

	var peak atomic.Uint64
	stopHeap := make(chan struct{})
	defer close(stopHeap)
	go func() {
		for {
			var ms goruntime.MemStats
			goruntime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-stopHeap:
				return
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()

	p := newBigListPeer(t, 315_000, 3)
	hostile := addRawGateway(t, h, "biglist", p.url)
	h.WaitState(hostile.ID, gatewayd.StateAuthenticated, 10*time.Second)
	eventually(t, func() bool { return p.asked.Load() >= 1 }, 10*time.Second, "asked")

	// Every honest reading's outcome is in the database within the
	// timeouts its stages have.
	bound := cfg.CommandTimeout + cfg.ReadingStartTimeout + cfg.ReadingTimeout
	start := time.Now()
	var worst time.Duration
	// 15 s: the whole list's merge took over 20 s, each time.
	for i := 0; time.Since(start) < 15*time.Second; i++ {
		r, s, err := h.Store.CreateReading(context.Background(), uuid.New(), sensor.ID, gatewayd.TriggerManual)
		require.NoError(t, err)
		asked := time.Now()
		require.NoError(t, h.Runtime.TakeReading(context.Background(), r, s.Serial, 25600))
		var got gatewayd.Reading
		eventually(t, func() bool {
			got, err = h.Store.GetReading(context.Background(), r.ID)
			return err == nil && got.Status.Done()
		}, 120*time.Second, "honest reading %d final", i)
		took := time.Since(asked)
		worst = max(worst, took)
		if took > time.Second {
			t.Logf("+%s honest reading %d: %s %q final in the database after %s; hostile asked %d times", time.Since(start).Round(time.Millisecond),
				i, got.Status, errText(got), took.Round(time.Millisecond), p.asked.Load())
		}
	}
	t.Logf("peak heap %d MiB", peak.Load()>>20)
	assert.LessOrEqual(t, worst, bound, "an honest reading stayed unfinished in the database past its timeouts while another gateway's sensor list was merged")
}

// A gateway lists 3,000 serials never listed before at each of its three
// logins: its stored sensors stop at gatewayd.MaxGatewaySensors (they
// grew by every list, without end), the writer says so and does not try
// the refused serials again, and another gateway's sensors are stored.
func TestNewSerialsAtEveryDiscoveryStopAtTheGatewaysLimit(t *testing.T) {
	cfg := actorstest.FastConfig()
	h := newHarness(t, cfg)
	p := newBigListPeer(t, 3000, 3)
	hostile := addRawGateway(t, h, "newserials", p.url)
	count := func() int {
		list, err := h.Store.GatewaySensors(context.Background(), hostile.ID)
		require.NoError(t, err)
		return len(list)
	}
	eventually(t, func() bool { return p.asked.Load() >= 3 && count() == gatewayd.MaxGatewaySensors }, 30*time.Second,
		"three lists asked and the limit stored")
	// The third list comes after the limit was reached; an honest gateway
	// discovered after it all is stored (30 s: a loaded box merges the
	// hostile's lists, asked again at every refresh, slowly).
	honest, _ := h.Add("honest")
	h.WaitState(honest.ID, gatewayd.StateAuthenticated, 30*time.Second)
	eventually(t, func() bool {
		list, err := h.Store.GatewaySensors(context.Background(), honest.ID)
		return err == nil && len(list) > 0
	}, 30*time.Second, "honest sensors discovered")
	assert.Equal(t, gatewayd.MaxGatewaySensors, count())
	logs := h.Logs.String()
	assert.Contains(t, logs, "new sensors past its limit were not stored")
	assert.Contains(t, logs, hostile.ID.String())
	assert.NotContains(t, logs, "batched write failed", "a list over the limit is not a failed write to try again")
}
