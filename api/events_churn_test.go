package api_test

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/common/expfmt"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/api"
	"github.com/ctcgw/gatewayd/ctc/ctctest"
	"github.com/ctcgw/gatewayd/events"
	"github.com/ctcgw/gatewayd/metrics"
	"github.com/ctcgw/gatewayd/telemetry"
)

// (Checked by an audit, helper 5, whose tests these are.)

// stateGauges reads gatewayd_gateways{state} from /metrics.
func stateGauges(t *testing.T, e *liveEnv) map[string]float64 {
	t.Helper()
	r := e.do("GET", "/metrics", nil)
	require.Equal(t, 200, r.status)
	var p expfmt.TextParser
	families, err := p.TextToMetricFamilies(strings.NewReader(string(r.body)))
	require.NoError(t, err)
	g := map[string]float64{}
	for _, m := range families["gatewayd_gateways"].GetMetric() {
		g[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
	}
	return g
}

// Concurrent churn through the API and the simulator (crashes past the
// restart limit, connects, disconnects, refusals, drops, deletes,
// password and name PUTs) leaves gatewayd_gateways{state} equal to the
// status list's counts, deleted gateways counted nowhere. (Audit, helper
// 5: held.)
func TestStateGaugesMatchTheStatusListAfterChurn(t *testing.T) {
	cfg := actorstest.FastConfig()
	cfg.RestartWindow = 2 * time.Second
	e := newLiveEnv(t, cfg)
	const n = 12
	ids := make([]string, n)
	sims := make([]*ctctest.Gateway, n)
	for i := range n {
		ids[i], sims[i] = e.add(fmt.Sprintf("churn-%02d", i))
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 60 {
				i := rand.IntN(n)
				id := ids[i]
				switch rand.IntN(8) {
				case 0:
					e.do("POST", "/api/debug/gateways/"+id+"/crash", nil)
				case 1:
					e.do("POST", "/api/gateways/"+id+"/disconnect", nil)
				case 2:
					e.do("POST", "/api/gateways/"+id+"/connect", nil)
				case 3:
					sims[i].SetFaults(ctctest.Faults{RefuseLogins: rand.IntN(2) == 0})
					sims[i].Drop(websocket.CloseGoingAway)
				case 4:
					sims[i].Drop(websocket.CloseGoingAway)
				case 5:
					if rand.IntN(3) == 0 {
						e.do("DELETE", "/api/gateways/"+id, nil)
					}
				case 6:
					e.do("PUT", "/api/gateways/"+id, map[string]any{"password": fmt.Sprintf("pw-%d", rand.IntN(1000))})
				case 7:
					e.do("PUT", "/api/gateways/"+id, map[string]any{"name": fmt.Sprintf("n-%d", rand.IntN(1000))})
				}
			}
		}()
	}
	wg.Wait()
	var last string
	require.Eventually(t, func() bool {
		counts := e.do("GET", "/api/gateways/status", nil).json(t)["counts"].(map[string]any)
		g := stateGauges(t, e)
		last = fmt.Sprintf("counts %v, gauges %v", counts, g)
		for s, c := range counts {
			if g[s] != c.(float64) {
				return false
			}
		}
		return true
	}, 10*time.Second, 50*time.Millisecond, "the gauges never matched the status list: %s", last)
}

// A subscriber that stops reading is cut off with event: overflow as
// the last frame of its stream, after every event it was sent, in order
// and without a gap; resuming with the last id it got continues with the
// next one, no reset. (Audit, helper 5: held.)
func TestOverflowedStreamEndsWithOverflowAndResumesWithoutLoss(t *testing.T) {
	tel := &telemetry.Observer{Metrics: metrics.New(), Events: events.NewBrokerAfter(100_000, 5000), Log: zerolog.Nop()}
	e := newEnv(t, api.Options{Telemetry: tel, EventsClientBuffer: 16, EventsWriteTimeout: time.Minute})
	base := serveOn(t, e.app, tel.Events)
	broker := tel.Events
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.(*net.TCPConn).SetReadBuffer(4096))
	_, err = conn.Write([]byte("GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return broker.Subscribers() == 1 }, 5*time.Second, 5*time.Millisecond)
	filler := []byte(`{"pad":"` + strings.Repeat("x", 4<<10) + `"}`)
	var first uint64
	for i := 0; broker.Subscribers() == 1; i++ {
		require.Less(t, i, 100_000, "never cut off")
		id, err := broker.Publish(events.Event{Type: "test.filler", Data: filler})
		require.NoError(t, err)
		if first == 0 {
			first = id
		}
	}
	require.EqualValues(t, 1, broker.Overflows())

	require.NoError(t, conn.SetReadDeadline(time.Now().Add(20*time.Second)))
	br := bufio.NewReader(conn)
	for { // the head
		l, err := br.ReadString('\n')
		require.NoError(t, err)
		if l == "\r\n" {
			break
		}
	}
	type frame struct {
		id    uint64
		event string
	}
	var frames []frame
	var cur frame
	sc := bufio.NewScanner(io.Reader(br))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		switch line := sc.Text(); {
		case line == "":
			if cur.event != "" {
				frames = append(frames, cur)
			}
			cur = frame{}
		case strings.HasPrefix(line, "id: "):
			cur.id, _ = strconv.ParseUint(line[4:], 10, 64)
		case strings.HasPrefix(line, "event: "):
			cur.event = line[7:]
		}
	}
	require.NoError(t, sc.Err(), "the stream ended by the server closing it")
	require.GreaterOrEqual(t, len(frames), 2)
	assert.Equal(t, "overflow", frames[len(frames)-1].event, "the last frame")
	for i, f := range frames[:len(frames)-1] {
		require.Equal(t, first+uint64(i), f.id, "frame %d: in order, none lost", i)
	}
	last := frames[len(frames)-2].id
	again, stop := subscribe(t, base, "", "Last-Event-ID", strconv.FormatUint(last, 10))
	defer stop()
	got := next(t, again, func(sse) bool { return true }, "the first event after the overflow")
	assert.Equal(t, last+1, got.ID, "resumed right after the last event received, no reset")
}
