package actors_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/events"
)

// openMessagePeer is a gateway that, on its first connection, logs in
// and then begins a reading of about 3 MiB that it never finishes: its
// fragments stop before the final one, and it goes on answering pings.
// Later connections only log in. ended is closed when the first
// connection ends.
type openMessagePeer struct {
	url   string
	conns atomic.Int32
	sent  chan struct{} // closed once the fragments are written
	ended chan struct{}
}

func newOpenMessagePeer(t *testing.T) *openMessagePeer {
	t.Helper()
	p := &openMessagePeer{sent: make(chan struct{}), ended: make(chan struct{})}
	p.url = actorstest.ServePeer(t, func(ws *websocket.Conn) {
		first := p.conns.Add(1) == 1
		var wmu sync.Mutex // answers and fragments from two goroutines
		write := func(b []byte) {
			wmu.Lock()
			defer wmu.Unlock()
			_ = ws.WriteMessage(websocket.TextMessage, b)
		}
		var fragments sync.WaitGroup
		defer fragments.Wait()
		for {
			// Reading also answers the runtime's pings.
			_, b, err := ws.ReadMessage()
			if err != nil {
				if first {
					close(p.ended)
				}
				return
			}
			if answerLogin(write, b, emptyList) && first {
				fragments.Add(1)
				go func() {
					defer fragments.Done()
					wmu.Lock()
					defer wmu.Unlock()
					w, err := ws.NextWriter(websocket.TextMessage)
					if err != nil {
						return
					}
					// Never closed: the message stays open. Fragments of
					// the write buffer's size go out as it fills.
					_, _ = w.Write([]byte(`{"Type":"NOT_DYN_READING","Data":{"X":"` + strings.Repeat("0", 3<<20)))
					close(p.sent)
				}()
			}
		}
	})
	return p
}

// Two gateways each begin a large reading and never finish it, going on
// answering pings: together they hold the whole reading intake (8 MiB).
// A third gateway's reading must still be read promptly: each open
// message is cut off once its data stops for the pong timeout, and its
// connection ends. Before, such a message held its reservation as long
// as the connection lived, and every other reading waited half the
// reading timeout at the intake (here 90 s) before it was read anyway.
func TestAnOpenMessageDoesNotHoldTheIntake(t *testing.T) {
	cfg := actorstest.FastConfig()
	cfg.PongTimeout = 3 * time.Second
	cfg.ReadingTimeout = 3 * time.Minute // an intake wait of 90 s
	h := newHarness(t, cfg)
	honest, sensor := honestSensor(t, h)

	peers := []*openMessagePeer{newOpenMessagePeer(t), newOpenMessagePeer(t)}
	var subs []*events.Subscription
	for i, p := range peers {
		g := addRawGateway(t, h, "open"+string(rune('a'+i)), p.url)
		sub := h.Telemetry.Events.Subscribe(events.Filter{GatewayID: &g.ID}, 0, 1024)
		t.Cleanup(sub.Close)
		subs = append(subs, sub)
	}
	for _, p := range peers {
		select {
		case <-p.sent:
		case <-time.After(30 * time.Second):
			t.Fatal("the open messages were not written")
		}
	}
	// Read as far as they go: the intake is full.
	eventually(t, func() bool { return actors.IntakeHeld(h.Runtime) >= 7<<20 }, 30*time.Second, "the open messages fill the intake")
	t.Logf("intake holds %d bytes", actors.IntakeHeld(h.Runtime))

	r, s, err := h.Store.CreateReading(context.Background(), uuid.New(), sensor.ID, gatewayd.TriggerManual)
	require.NoError(t, err)
	asked := time.Now()
	require.NoError(t, h.Runtime.TakeReading(context.Background(), r, s.Serial, 25600))
	var got gatewayd.Reading
	eventually(t, func() bool {
		got, err = h.Store.GetReading(context.Background(), r.ID)
		return err == nil && got.Status.Done()
	}, 45*time.Second, "the honest reading is final well before the intake wait (90 s) ends")
	t.Logf("honest reading %s after %s", got.Status, time.Since(asked).Round(time.Millisecond))
	assert.Equal(t, gatewayd.ReadingComplete, got.Status, errText(got))

	for i, p := range peers {
		select {
		case <-p.ended:
		case <-time.After(30 * time.Second):
			t.Fatalf("open message %d: its connection did not end", i)
		}
	}
	for i, sub := range subs {
		// The gateway went to BACKOFF saying why.
		var errs []string
		eventually(t, func() bool {
			for e := sub.Next(); e != nil; e = sub.Next() {
				var d struct {
					To        string
					LastError *string `json:"last_error"`
				}
				require.NoError(t, json.Unmarshal(e.Data, &d))
				if d.To == string(gatewayd.StateBackoff) && d.LastError != nil {
					errs = append(errs, *d.LastError)
				}
			}
			return len(errs) > 0
		}, 10*time.Second, "open message %d: BACKOFF", i)
		assert.Contains(t, errs[0], "connection lost: message stalled: no data for 3s", "open message %d", i)
	}
	assert.Equal(t, gatewayd.StateAuthenticated, h.Status(honest.ID).State)
	eventually(t, func() bool { return actors.IntakeHeld(h.Runtime) == 0 }, 30*time.Second, "the open messages' bytes given back")
}
