package actors_test

// A hostile gateway that pushes valid-looking unsolicited NOT_DYN_READING
// frames, within the flood limits, must not harm another gateway's
// readings (mission: "one gateway's fault harms only itself"; README:
// "The processors' queue (32 MiB of text) then fills only if readers
// outwait their hold").

import (
	"context"
	"fmt"
	"math/rand/v2"
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
)

const pusherSerial = 30001

// pusherPeer is a gateway that logs in, lists one sensor, subscribes and
// then pushes unsolicited NOT_DYN_READING frames at rate frames per
// second (below the flood limits) until the test ends.
type pusherPeer struct {
	url    string
	frame  []byte
	rate   int
	sent   atomic.Int64
	stop   chan struct{}
	closed sync.Once
}

// smallReadingFrame is a NOT_DYN_READING that names its Type last (any
// key order is valid JSON) and stays under 32 KiB: single-digit decimal
// samples, n per axis.
func smallReadingFrame(n int) []byte {
	axis := func() string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteByte(byte('0' + rand.IntN(10)))
		}
		return b.String()
	}
	return fmt.Appendf(nil, `{"From":"SERV","Target":"UI","Data":{"ID":1,"Serial":"%d","Time":"2026-12-06 10:00:00","X":"%s","Y":"%s","Z":"%s"},"Type":"NOT_DYN_READING"}`,
		pusherSerial, axis(), axis(), axis())
}

// oneSensorPeer serves a gateway that logs in, lists one sensor (serial,
// at rateHz with samples) and subscribes; then, on a goroutine of its
// own, it calls subscribed with a send that is safe for concurrent use
// and a channel closed when the socket ends. It returns the URL.
func oneSensorPeer(t *testing.T, serial int64, rateHz, samples int, subscribed func(send func([]byte) error, done <-chan struct{})) string {
	t.Helper()
	return actorstest.ServePeer(t, func(ws *websocket.Conn) {
		var wmu sync.Mutex
		send := func(b []byte) error {
			wmu.Lock()
			defer wmu.Unlock()
			_ = ws.SetWriteDeadline(time.Now().Add(30 * time.Second)) // a frame may be 4 MiB
			return ws.WriteMessage(websocket.TextMessage, b)
		}
		done := make(chan struct{})
		defer close(done)
		list := fmt.Sprintf(`{"Type":"RTN_DYN","From":"SERV","Target":"UI","Data":{"%d":{"Serial":%d,"Connected":1,"PartNum":"P","ReadRate":%d,"Samples":%d,"Name":"s"}}}`,
			serial, serial, rateHz, samples)
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if answerLogin(func(b []byte) { _ = send(b) }, b, list) {
				go subscribed(send, done)
			}
		}
	})
}

func newPusherPeer(t *testing.T, frame []byte, rate int) *pusherPeer {
	t.Helper()
	p := &pusherPeer{frame: frame, rate: rate, stop: make(chan struct{})}
	p.url = oneSensorPeer(t, pusherSerial, 1000, 5000, func(send func([]byte) error, done <-chan struct{}) {
		// Paced in steps of 10 ms, so the rate stays under the flood
		// meter's 200 frames/s and 8 MiB/s sustained.
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		start, n := time.Now(), int64(0)
		for {
			select {
			case <-p.stop:
				return
			case <-done:
				return
			case now := <-tick.C:
				due := int64(now.Sub(start).Seconds() * float64(p.rate))
				for ; n < due; n++ {
					if send(p.frame) != nil {
						return
					}
					p.sent.Add(1)
				}
			}
		}
	})
	// Before the server's close (cleanups run last first): the pushes end.
	t.Cleanup(func() { p.closed.Do(func() { close(p.stop) }) })
	return p
}

// honestSensor is a gateway that logs in and lists its sensors, and the
// first of them.
func honestSensor(t *testing.T, h *actorstest.Harness) (gatewayd.Gateway, gatewayd.Sensor) {
	t.Helper()
	honest, _ := h.Add("honest")
	h.WaitState(honest.ID, gatewayd.StateAuthenticated, 10*time.Second)
	var sensor gatewayd.Sensor
	eventually(t, func() bool {
		list, err := h.Store.GatewaySensors(context.Background(), honest.ID)
		if err != nil || len(list) == 0 {
			return false
		}
		sensor = list[0]
		return true
	}, 10*time.Second, "honest sensors discovered")
	return honest, sensor
}

// One gateway pushes unsolicited readings below every flood limit (180
// frames/s of ~30 KB, each naming its Type after its Data, so the reader
// takes it as a small frame), and another gateway's manual readings must
// still complete. The reader let such a small reading past the reading
// intake: it filled the processors' queue, and the other gateway's
// readings failed "processing overloaded": one gateway's traffic harmed
// another's readings. (Found by an audit, helper 1, whose test this is.)
func TestUnsolicitedReadingsOfOneGatewayDoNotFailAnothersReadings(t *testing.T) {
	cfg := actorstest.FastConfig()
	h := newHarness(t, cfg)

	honest, sensor := honestSensor(t, h)

	frame := smallReadingFrame(5300)
	require.Less(t, len(frame), 32<<10, "the frame stays a small one")
	p := newPusherPeer(t, frame, 180)
	hostile := addRawGateway(t, h, "pusher", p.url)
	h.WaitState(hostile.ID, gatewayd.StateAuthenticated, 10*time.Second)
	// Let the pushes run for a while before the honest readings are asked.
	// (Or the intake full with them, the hostile gateway's reader waiting
	// at it: on a busy box the pusher's socket backs up before 600.)
	eventually(t, func() bool { return p.sent.Load() >= 600 || actors.IntakeWaiting(h.Runtime) > 0 }, 60*time.Second,
		"pushes under way")
	t.Logf("pushed %d; intake holds %d bytes", p.sent.Load(), actors.IntakeHeld(h.Runtime))

	const n = 2
	var bad []string
	for i := range n {
		r, s, err := h.Store.CreateReading(context.Background(), uuid.New(), sensor.ID, gatewayd.TriggerManual)
		require.NoError(t, err)
		asked := time.Now()
		require.NoError(t, h.Runtime.TakeReading(context.Background(), r, s.Serial, 25600))
		var got gatewayd.Reading
		stopLog := make(chan struct{})
		var logDone sync.WaitGroup
		logDone.Add(1)
		// Stopped before the test can end, also when the wait below fails.
		t.Cleanup(func() {
			select {
			case <-stopLog:
			default:
				close(stopLog)
			}
			logDone.Wait()
		})
		go func() {
			defer logDone.Done()
			for {
				select {
				case <-stopLog:
					return
				case <-time.After(2 * time.Second):
				}
				cur, _ := h.Store.GetReading(context.Background(), r.ID)
				t.Logf("  +%s: pushed %d, intake %d bytes, %d waiting; honest reading %s", time.Since(asked).Round(time.Second), p.sent.Load(),
					actors.IntakeHeld(h.Runtime), actors.IntakeWaiting(h.Runtime), cur.Status)
			}
		}()
		eventually(t, func() bool {
			got, err = h.Store.GetReading(context.Background(), r.ID)
			return err == nil && got.Status.Done()
		}, 2*(cfg.CommandTimeout+cfg.ReadingStartTimeout+2*cfg.ReadingTimeout), "honest reading %d final", i)
		close(stopLog)
		logDone.Wait()
		t.Logf("honest reading %d: %s %q after %s (pushed %d, intake %d bytes)", i, got.Status, errText(got),
			time.Since(asked).Round(time.Millisecond), p.sent.Load(), actors.IntakeHeld(h.Runtime))
		if got.Status != gatewayd.ReadingComplete {
			bad = append(bad, fmt.Sprintf("#%d %s %q", i, got.Status, errText(got)))
		}
	}
	assert.Empty(t, bad, "the honest gateway's readings failed because another gateway pushed readings")
	assert.Equal(t, gatewayd.StateAuthenticated, h.Status(honest.ID).State)
	t.Logf("hostile state %s", h.Status(hostile.ID).State)
	// The hostile gateway is disconnected (what it sent unread is
	// dropped) and what it had let in is stored before the runtime shuts
	// down: the harness gives the shutdown 10 s, and the processors took
	// most of that to finish a full intake (8 MiB) of pushed readings under
	// -race on two cores.
	p.closed.Do(func() { close(p.stop) })
	_, _, err := h.Store.SetDesiredState(context.Background(), hostile.ID, gatewayd.DesiredDisconnected)
	require.NoError(t, err)
	_, err = h.Runtime.Disconnect(context.Background(), hostile.ID)
	require.NoError(t, err)
	eventually(t, func() bool { return actors.IntakeHeld(h.Runtime) == 0 }, time.Minute, "pushed readings stored")
}
