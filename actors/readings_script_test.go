package actors_test

// (Found by an audit, helper 8, whose tests these are.) Exact sequences of the reading notifications
// (API.md §8), played by a scripted gateway: it logs in, lists one sensor,
// subscribes, and hands every TAKE_DYN_READING to the test, which decides
// what the gateway answers and notifies, and when.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/store"
)

const scriptSerial = 20001

// scriptPeer is a gateway whose readings the test plays by hand.
type scriptPeer struct {
	t     *testing.T
	url   string
	takes chan int64 // serials of TAKE_DYN_READING, in order
	mu    sync.Mutex
	ws    *websocket.Conn // the current socket, once subscribed
	subs  chan struct{}   // one per subscription answered
	// list, when set before the gateway logs in, is the RTN_DYN Data of
	// its sensor list (else one sensor, scriptSerial).
	list string
}

// emptyList is a gateway's sensor list that names none.
const emptyList = `{"Type":"RTN_DYN","From":"SERV","Target":"UI","Data":[]}`

// answerLogin plays a gateway's side of the login for one request it
// read (b): RTN_LOGIN to POST_LOGIN, list to GET_DYN_CONNECTED, the
// subscription's answer to POST_SUB_CHANGES. It reports whether b was
// the subscription, the login's last step.
func answerLogin(write func([]byte), b []byte, list string) (subscribed bool) {
	var req struct{ Type string }
	_ = json.Unmarshal(b, &req)
	switch req.Type {
	case "POST_LOGIN":
		write([]byte(`{"Type":"RTN_LOGIN","From":"SERV","Target":"UI","Data":{"Email":"e","Success":true}}`))
	case "GET_DYN_CONNECTED":
		write([]byte(list))
	case "POST_SUB_CHANGES":
		write([]byte(`{"Type":"RTN_DYN","From":"SERV","Target":"UI","Data":{}}`))
		return true
	}
	return false
}

func newScriptPeer(t *testing.T) *scriptPeer {
	t.Helper()
	p := &scriptPeer{t: t, takes: make(chan int64, 64), subs: make(chan struct{}, 64)}
	p.url = actorstest.ServePeer(t, func(ws *websocket.Conn) {
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				return
			}
			var req struct {
				Type string
				Data json.RawMessage
			}
			_ = json.Unmarshal(b, &req)
			if req.Type == "TAKE_DYN_READING" {
				var tr struct{ Serial int64 }
				_ = json.Unmarshal(req.Data, &tr)
				p.takes <- tr.Serial
				continue
			}
			list := fmt.Sprintf(`{"%d":{"Serial":%d,"Connected":1,"PartNum":"P","ReadRate":1000,"Samples":8,"Name":"s"}}`,
				scriptSerial, scriptSerial)
			p.mu.Lock()
			if p.list != "" {
				list = p.list
			}
			p.mu.Unlock()
			write := func(f []byte) { p.send(ws, string(f)) }
			if answerLogin(write, b, `{"Type":"RTN_DYN","From":"SERV","Target":"UI","Data":`+list+`}`) {
				p.mu.Lock()
				p.ws = ws
				p.mu.Unlock()
				p.subs <- struct{}{}
			}
		}
	})
	return p
}

func (p *scriptPeer) send(ws *websocket.Conn, frame string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	require.NoError(p.t, ws.WriteMessage(websocket.TextMessage, []byte(frame)))
}

// notify writes a frame on the subscribed socket.
func (p *scriptPeer) notify(frame string) {
	p.mu.Lock()
	ws := p.ws
	p.mu.Unlock()
	require.NotNil(p.t, ws, "subscribed")
	p.send(ws, frame)
}

// take waits for the next TAKE_DYN_READING.
func (p *scriptPeer) take() int64 {
	p.t.Helper()
	select {
	case s := <-p.takes:
		return s
	case <-time.After(30 * time.Second):
		p.t.Fatal("no TAKE_DYN_READING")
		return 0
	}
}

func (p *scriptPeer) answerTake() {
	p.notify(`{"Type":"RTN_DYN","From":"SERV","Target":"UI","Data":{}}`)
}
func (p *scriptPeer) started(ok bool) {
	p.notify(fmt.Sprintf(`{"Type":"NOT_DYN_READING_STARTED","From":"SERV","Target":"UI","Data":{"Serial":"%d","Success":%t}}`,
		scriptSerial, ok))
}

// samples sends a NOT_DYN_READING whose three axes are the constant v
// (8 samples): the stored summary's x mean tells whose samples they were.
func (p *scriptPeer) samples(v int) {
	axis := strings.TrimSuffix(strings.Repeat(fmt.Sprintf("%d,", v), 8), ",")
	p.notify(fmt.Sprintf(`{"Type":"NOT_DYN_READING","From":"SERV","Target":"UI","Data":{"ID":%d,"Serial":"%d","Time":"2026-12-06 10:00:00","X":"%s","Y":"%s","Z":"%s"}}`,
		v, scriptSerial, axis, axis, axis))
}

// scriptEnv is a harness with one scripted gateway, logged in, its sensor
// discovered and its socket subscribed.
type scriptEnv struct {
	h      *actorstest.Harness
	p      *scriptPeer
	g      gatewayd.Gateway
	sensor gatewayd.Sensor
}

func scriptHarness(t *testing.T, h *actorstest.Harness) *scriptEnv {
	t.Helper()
	p := newScriptPeer(t)
	g := addRawGateway(t, h, "script", p.url)
	h.WaitState(g.ID, gatewayd.StateAuthenticated, 10*time.Second)
	select {
	case <-p.subs:
	case <-time.After(30 * time.Second):
		t.Fatal("never subscribed")
	}
	e := &scriptEnv{h: h, p: p, g: g}
	eventually(t, func() bool {
		list, err := h.Store.GatewaySensors(context.Background(), g.ID)
		for _, s := range list {
			if s.Serial == scriptSerial {
				e.sensor = s
			}
		}
		return err == nil && e.sensor.Serial == scriptSerial
	}, 10*time.Second, "sensor discovered")
	return e
}

// ask stores a MANUAL reading of the sensor and hands it to the runtime.
func (e *scriptEnv) ask(t *testing.T) uuid.UUID {
	t.Helper()
	r, s, err := e.h.Store.CreateReading(context.Background(), uuid.New(), e.sensor.ID, gatewayd.TriggerManual)
	require.NoError(t, err)
	require.NoError(t, e.h.Runtime.TakeReading(context.Background(), r, s.Serial, 1000))
	return r.ID
}

// final waits until the reading is final and returns it.
func (e *scriptEnv) final(t *testing.T, id uuid.UUID) gatewayd.Reading {
	t.Helper()
	var got gatewayd.Reading
	eventually(t, func() bool {
		var err error
		got, err = e.h.Store.GetReading(context.Background(), id)
		return err == nil && got.Status.Done()
	}, 30*time.Second, "reading %s final", id)
	return got
}

// xMean is the stored x mean of a complete reading (whose samples it holds).
func xMean(t *testing.T, r gatewayd.Reading) float64 {
	t.Helper()
	var s struct{ X struct{ Mean float64 } }
	require.NoError(t, json.Unmarshal(r.Summary, &s))
	return s.X.Mean
}

// holderOf waits for the complete reading of the sensor holding samples v.
func (e *scriptEnv) holderOf(t *testing.T, v int) gatewayd.Reading {
	t.Helper()
	var holder gatewayd.Reading
	eventually(t, func() bool {
		list, _, err := e.h.Store.ListReadings(context.Background(), e.sensor.ID, store.ReadingFilter{Status: gatewayd.ReadingComplete},
			store.Page{Limit: 100})
		if err != nil {
			return false
		}
		for _, r := range list {
			if xMean(t, r) == float64(v) {
				holder = r
				return true
			}
		}
		return false
	}, 30*time.Second, "samples %d stored", v)
	return holder
}

func errText(r gatewayd.Reading) string {
	if r.Error == nil {
		return ""
	}
	return *r.Error
}

// A gateway that skips NOT_DYN_READING_STARTED (onReading: "a gateway may
// skip NOT_DYN_READING_STARTED") loses one capture: reading A is FAILED
// after READING_START_TIMEOUT. B and C of the same sensor are then
// answered and delivered at once, but each is taken for the previous
// one's late samples (stored as GATEWAY readings) and fails in turn: no
// genuine start ever comes to clear what is owed, so the sensor's
// readings fail for as long as they follow each other within
// READING_START_TIMEOUT + READING_TIMEOUT.
func TestSkipStartGatewayRecoversAfterALostCapture(t *testing.T) {
	cfg := actorstest.FastConfig()
	cfg.ReadingStartTimeout, cfg.ReadingTimeout = time.Second, 5*time.Second
	e := scriptHarness(t, newHarness(t, cfg))

	a := e.ask(t)
	require.EqualValues(t, scriptSerial, e.p.take())
	e.p.answerTake() // and nothing more: the capture is lost
	ra := e.final(t, a)
	require.Equal(t, gatewayd.ReadingFailed, ra.Status)
	require.Equal(t, "no NOT_DYN_READING_STARTED within 1s", errText(ra))

	for i, name := range []string{"B", "C"} {
		id := e.ask(t)
		require.EqualValues(t, scriptSerial, e.p.take())
		e.p.answerTake()
		e.p.samples(2 + i) // at once, without a start
		got := e.final(t, id)
		if assert.Equal(t, gatewayd.ReadingComplete, got.Status, "reading %s: delivered at once, but %q", name, errText(got)) {
			assert.Equal(t, float64(2+i), xMean(t, got), "reading %s holds its own samples", name)
		}
		holder := e.holderOf(t, 2+i)
		assert.Equal(t, id, holder.ID, "%s's samples went to reading %s (trigger %s)", name, holder.ID, holder.Trigger)
	}
}

// 86d6df8 made a timed-out acquisition's late notifications its own when
// it timed out waiting for its start or samples, but not when it timed
// out one stage earlier, waiting for the answer to TAKE_DYN_READING. A
// slow gateway answers A's TAKE_DYN_READING after GATEWAY_COMMAND_TIMEOUT
// (A is FAILED "no answer to TAKE_DYN_READING within 1s") and goes on
// with A's capture: A's start and samples come after B's TAKE_DYN_READING
// (same sensor) was answered, and B takes them as its own: B is COMPLETE
// with A's samples, and B's own samples are stored as a reading the
// gateway pushed unasked.
func TestLateAnsweredTakeIsNotTheNextReadings(t *testing.T) {
	cfg := actorstest.FastConfig()
	cfg.CommandTimeout = time.Second
	e := scriptHarness(t, newHarness(t, cfg))

	a := e.ask(t)
	b := e.ask(t) // queued behind A
	require.EqualValues(t, scriptSerial, e.p.take())
	ra := e.final(t, a) // A's TAKE_DYN_READING is not answered in time
	require.Equal(t, gatewayd.ReadingFailed, ra.Status)
	require.Equal(t, "no answer to TAKE_DYN_READING within 1s", errText(ra))

	e.p.answerTake() // A's late answer: B's request goes out only after it
	require.EqualValues(t, scriptSerial, e.p.take())
	e.p.answerTake() // B's
	e.p.started(true)
	e.p.samples(1) // A's capture, which the gateway went on with
	e.p.started(true)
	e.p.samples(2) // B's

	rb := e.final(t, b)
	require.Equal(t, gatewayd.ReadingComplete, rb.Status, errText(rb))
	assert.Equal(t, 2.0, xMean(t, rb), "B holds A's late samples")
	holder := e.holderOf(t, 2)
	assert.Equal(t, b, holder.ID, "B's samples went to reading %s (trigger %s)", holder.ID, holder.Trigger)
}

// A reading that failed waiting for its start owes its start and samples
// for READING_START_TIMEOUT + READING_TIMEOUT; a late start, taken as its
// own, gives its samples a READING_TIMEOUT from then, even past that (an
// audit, helper 8, found them expiring and given to the next reading).
// Meanwhile no reading of the sensor starts: B, asked for 3 s after A
// failed, goes out once A's samples have come.
func TestLateStartGivesItsSamplesAReadingTimeout(t *testing.T) {
	cfg := actorstest.FastConfig()
	cfg.ReadingStartTimeout, cfg.ReadingTimeout = 6*time.Second, 2*time.Second
	e := scriptHarness(t, newHarness(t, cfg))

	a := e.ask(t)
	require.EqualValues(t, scriptSerial, e.p.take())
	e.p.answerTake()
	ra := e.final(t, a)
	t0 := time.Now() // A timed out (a little before this): A owes until about t0+8s
	require.Equal(t, "no NOT_DYN_READING_STARTED within 6s", errText(ra))

	time.Sleep(time.Until(t0.Add(3 * time.Second)))
	b := e.ask(t)
	select {
	case <-e.p.takes:
		t.Fatal("B's TAKE_DYN_READING went out while A's start and samples may still come")
	case <-time.After(time.Until(t0.Add(7 * time.Second))):
	}
	e.p.started(true) // A's, late
	time.Sleep(time.Until(t0.Add(8500 * time.Millisecond)))
	e.p.samples(1) // A's, 1.5 s after its start, past what A owed at first

	require.EqualValues(t, scriptSerial, e.p.take(), "B's, once A's samples came")
	e.p.answerTake()
	e.p.started(true)
	e.p.samples(2) // B's

	rb := e.final(t, b)
	require.Equal(t, gatewayd.ReadingComplete, rb.Status, errText(rb))
	assert.Equal(t, 2.0, xMean(t, rb), "B holds A's late samples")
	holder := e.holderOf(t, 1)
	assert.Equal(t, gatewayd.TriggerGateway, holder.Trigger, "A's late samples kept, as a reading the gateway pushed")
}

// A pushed reading of a serial the list named without a read rate is of
// a listed sensor: no sighting. It was taken for a serial the list did
// not name (the actor knew serials by their rates), recorded a sighting
// for each such reading, and the sighting marked connected a sensor the
// list said was not (found by an audit, helper 11).
func TestPushedReadingOfASensorListedWithoutARateIsNoSighting(t *testing.T) {
	h := newHarness(t, actorstest.FastConfig())
	p := newScriptPeer(t)
	p.list = fmt.Sprintf(`{"%d":{"Serial":%d,"Connected":0,"PartNum":"P","Samples":8,"Name":"norate"}}`, scriptSerial, scriptSerial)
	g := addRawGateway(t, h, "norate", p.url)
	h.WaitState(g.ID, gatewayd.StateAuthenticated, 10*time.Second)
	select {
	case <-p.subs:
	case <-time.After(30 * time.Second):
		t.Fatal("never subscribed")
	}
	var listed gatewayd.Sensor
	eventually(t, func() bool {
		list, err := h.Store.GatewaySensors(context.Background(), g.ID)
		if err == nil && len(list) == 1 {
			listed = list[0]
		}
		return listed.Serial == scriptSerial
	}, 10*time.Second, "the listed sensor stored")
	require.False(t, listed.Connected, "listed Connected 0")

	p.samples(3) // pushed: nobody asked
	var pushed gatewayd.Reading
	eventually(t, func() bool {
		rs, _, err := h.Store.ListReadings(context.Background(), listed.ID, store.ReadingFilter{}, store.Page{Limit: 10})
		if err == nil && len(rs) == 1 {
			pushed = rs[0]
		}
		return pushed.Status.Done()
	}, 10*time.Second, "the pushed reading stored")
	require.Equal(t, gatewayd.TriggerGateway, pushed.Trigger)
	// Whatever the actor handed the writer before the reading (a
	// sighting would be) is written now.
	actors.FlushWriter(h.Runtime)
	after, err := h.Store.GatewaySensors(context.Background(), g.ID)
	require.NoError(t, err)
	require.Len(t, after, 1)
	assert.False(t, after[0].Connected, "a pushed reading of a listed sensor is no sighting: the list said not connected")
	assert.True(t, after[0].LastSeenAt.Equal(listed.LastSeenAt), "last_seen_at untouched: %s, then %s", listed.LastSeenAt, after[0].LastSeenAt)
}
