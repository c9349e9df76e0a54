package actors_test

// Honest traffic is not cut by the open-message bound. (Checked by an
// audit, helper 1, whose tests these are.)

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
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
	"github.com/ctcgw/gatewayd/ctc"
	"github.com/ctcgw/gatewayd/ctc/ctctest"
	"github.com/ctcgw/gatewayd/internal/testutil"
	"github.com/ctcgw/gatewayd/store"
)

// burstReadings has every gateway take one reading of its first sensor
// at once and waits until all are final; it returns those not COMPLETE.
func burstReadings(t *testing.T, h *actorstest.Harness, gws []gatewayd.Gateway, within time.Duration) []string {
	t.Helper()
	ctx := context.Background()
	type job struct {
		r gatewayd.Reading
		s store.ReadingSensor
	}
	jobs := make([]job, len(gws))
	for i, g := range gws {
		var sensor gatewayd.Sensor
		eventually(t, func() bool {
			list, err := h.Store.GatewaySensors(ctx, g.ID)
			if err != nil || len(list) == 0 {
				return false
			}
			sensor = list[0]
			return true
		}, 30*time.Second, "sensors of %s", g.GatewayID)
		r, s, err := h.Store.CreateReading(ctx, uuid.New(), sensor.ID, gatewayd.TriggerManual)
		require.NoError(t, err)
		jobs[i] = job{r, s}
	}
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			assert.NoError(t, h.Runtime.TakeReading(ctx, j.r, j.s.Serial, 25600))
		}()
	}
	wg.Wait()
	var bad []string
	deadline := time.Now().Add(within)
	for _, j := range jobs {
		var got gatewayd.Reading
		ok := testutil.Poll(func() bool {
			var err error
			got, err = h.Store.GetReading(ctx, j.r.ID)
			return err == nil && got.Status.Done()
		}, time.Until(deadline))
		switch {
		case !ok:
			bad = append(bad, fmt.Sprintf("%s not final (%s)", j.r.ID, got.Status))
		case got.Status != gatewayd.ReadingComplete:
			bad = append(bad, fmt.Sprintf("%s %s %q", j.r.ID, got.Status, errText(got)))
		}
	}
	return bad
}

func checkBurst(t *testing.T, h *actorstest.Harness, gws []gatewayd.Gateway, bad []string) {
	t.Helper()
	assert.Empty(t, bad, "honest readings failed in a burst")
	var stalled []string
	for _, g := range gws {
		if st := h.Status(g.ID); st.State != gatewayd.StateAuthenticated || strings.Contains(lastError(st), "stalled") {
			stalled = append(stalled, fmt.Sprintf("%s %s %q", g.GatewayID, st.State, lastError(st)))
		}
	}
	assert.Empty(t, stalled, "honest gateways lost their connection in a burst")
	assert.NotContains(t, h.Logs.String(), "message stalled", "an honest reading was cut as stalled")
}

// oneSensorOf is one sensor of samples per axis (readings of ~7 bytes a
// sample and axis in CSV: 16384 samples make a ~340 KB frame, which
// grows past its first 256 KiB).
func oneSensorOf(samples int) []ctc.Sensor {
	s := ctctest.DefaultSensors(1)
	s[0].Samples = samples
	return s
}

// README: "Once let in, a large message must keep coming: no data for
// GATEWAY_PONG_TIMEOUT ..., or not whole within READING_TIMEOUT (time the
// reader was held back does not count)". A burst of honest readings from
// 80 gateways over ws://, a quarter of them larger than 256 KiB, with an
// intake of 512 KiB and a pong timeout of 2 s, on a loaded box (-race): each
// reader waits its turn at the intake, then reads its frame at socket
// speed. None may be cut as stalled, none fail.
// Would catch: time a reader is held back (intake, grow) counted against
// the message, a deadline left on the socket, a stall bound that fires
// for a sender that was only waiting for TCP to drain.
func TestBurstOfReadingsIsNotCutAsStalled(t *testing.T) {
	h := newHarness(t, burstCfg(nil))
	runBurst(t, h, h.Sim, 80)
}

// The same over wss://, 40 gateways: the frame meter and the quiet probe
// sit over and under TLS, whose records come whole or not at all.
func TestBurstOfReadingsOverTLSIsNotCutAsStalled(t *testing.T) {
	now := time.Now()
	pool, serverTLS := testCA(t, now.Add(-time.Hour), now.Add(time.Hour))
	sim, err := ctctest.NewTLSServer("127.0.0.1:0", serverTLS)
	require.NoError(t, err)
	t.Cleanup(sim.Close)
	h := newHarness(t, burstCfg(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	runBurst(t, h, sim, 40)
}

// burstCfg: a pong timeout of 2 s (the open message's stall bound too;
// at 1 s the pong timer itself failed gateways in the full suite on a
// loaded two-core box),
// a small intake (most readers wait their turn, and readings over 256 KiB
// wait again as they grow), a reading timeout long enough that the intake
// wait (half of it) does not decide.
func burstCfg(tc *tls.Config) actors.Config {
	cfg := actorstest.FastConfig()
	cfg.PongTimeout = 2 * time.Second
	cfg.ReadingTimeout = 30 * time.Second
	cfg.ReadingIntakeBytes = 512 << 10
	cfg.TLS = tc
	return cfg
}

func runBurst(t *testing.T, h *actorstest.Harness, sim *ctctest.Server, n int) {
	gws := make([]gatewayd.Gateway, n)
	for i := range n {
		name := fmt.Sprintf("burst-%d", i)
		samples := ctctest.DefaultSamples
		if i%4 == 0 {
			samples = 16384
		}
		email, pw := actorstest.Credentials(name)
		sg := sim.Add(name, ctctest.Config{Email: email, Password: pw, Sensors: oneSensorOf(samples)})
		gws[i] = addAt(t, h, name, sg.URL())
	}
	for _, g := range gws {
		h.WaitState(g.ID, gatewayd.StateAuthenticated, 30*time.Second)
	}
	for round := range 2 {
		start := time.Now()
		bad := burstReadings(t, h, gws, 2*time.Minute)
		t.Logf("round %d: %d readings final after %s", round, n, time.Since(start).Round(time.Millisecond))
		checkBurst(t, h, gws, bad)
	}
}

// fragmentPeer serves (over TLS when serverTLS is set) a gateway that
// logs in, lists one sensor (fragSerial, samples per axis), and answers
// each TAKE_DYN_READING with RTN_DYN, NOT_DYN_READING_STARTED and then the
// reading in fragments of chunk bytes, pause apart, a ping of its own
// between some of them. Everything is written as raw frames under one
// lock (its pongs too), so nothing interleaves.
func fragmentPeer(t *testing.T, serverTLS *tls.Config, samples, chunk int, pause time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	scheme := "ws"
	if serverTLS != nil {
		ln, scheme = tls.NewListener(ln, serverTLS), "wss"
	}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		raw := ws.NetConn()
		var mu sync.Mutex
		write := func(b []byte) error {
			mu.Lock()
			defer mu.Unlock()
			_ = raw.SetWriteDeadline(time.Now().Add(30 * time.Second))
			_, err := raw.Write(b)
			return err
		}
		text := func(b []byte) { _ = write(serverFrame(true, 1, b)) }
		ws.SetPingHandler(func(data string) error { return write(serverFrame(true, 0xA, []byte(data))) })
		var wg sync.WaitGroup
		defer wg.Wait()
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				return
			}
			var req struct{ Type string }
			_ = json.Unmarshal(b, &req)
			switch req.Type {
			case "GET_DYN_CONNECTED":
				text(fmt.Appendf(nil, `{"Type":"RTN_DYN","From":"SERV","Target":"UI","Data":{"%d":{"Serial":%d,"Connected":1,"PartNum":"P","ReadRate":25600,"Samples":%d,"Name":"s"}}}`,
					fragSerial, fragSerial, samples))
			case "TAKE_DYN_READING":
				text([]byte(`{"Type":"RTN_DYN","From":"SERV","Target":"UI","Data":{}}`))
				wg.Add(1)
				go func() {
					defer wg.Done()
					text(fmt.Appendf(nil, `{"Type":"NOT_DYN_READING_STARTED","From":"SERV","Target":"UI","Data":{"Serial":%d,"Success":true}}`, fragSerial))
					msg := fragReading(samples)
					for i, op := 0, byte(1); i < len(msg); i, op = i+chunk, 0 {
						end := min(i+chunk, len(msg))
						if write(serverFrame(end == len(msg), op, msg[i:end])) != nil {
							return
						}
						if end < len(msg) {
							time.Sleep(pause)
							if i/chunk%3 == 1 {
								_ = write(serverFrame(true, 0x9, []byte("gw")))
							}
						}
					}
				}()
			default:
				answerLogin(text, b, "")
			}
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return scheme + "://" + ln.Addr().String() + "/gw"
}

const fragSerial = 30001

// serverFrame is one unmasked frame of any length.
func serverFrame(fin bool, op byte, p []byte) []byte {
	h := []byte{op}
	if fin {
		h[0] |= 0x80
	}
	switch n := len(p); {
	case n < 126:
		h = append(h, byte(n))
	case n < 1<<16:
		h = append(h, 126, byte(n>>8), byte(n))
	default:
		h = append(h, 127)
		h = binary.BigEndian.AppendUint64(h, uint64(n))
	}
	return append(h, p...)
}

// fragReading is a NOT_DYN_READING of fragSerial, samples per axis, about
// 7 bytes a sample and axis.
func fragReading(samples int) []byte {
	var b strings.Builder
	for i := range samples {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%.3f", float64(i%97)/97)
	}
	axis := b.String()
	return fmt.Appendf(nil, `{"Type":"NOT_DYN_READING","From":"SERV","Target":"UI","Data":{"ID":1,"Serial":"%d","Time":"2026-12-06 10:00:00","X":"%s","Y":"%s","Z":"%s"}}`,
		fragSerial, axis, axis, axis)
}

// README: "no data for GATEWAY_PONG_TIMEOUT (pongs between its fragments
// do not count), or not whole within READING_TIMEOUT". A gateway over
// ws:// and one over wss:// each send a ~340 KB reading in 16 KiB
// fragments 600 ms apart (under the 1 s pong timeout; about 13 s in all,
// under the 30 s reading timeout), pinging gatewayd between some of them:
// the readings complete and the connections stay. Then each is quiet for
// 2 s (twice the pong timeout: a deadline left on the socket would end
// it) and takes a second reading the same way.
// Would catch: a stall bound that counts from the message's start, or
// that a gateway's own pings reset wrongly; a deadline left behind after
// the message.
func TestFragmentedReadingsWithPausesUnderThePongTimeout(t *testing.T) {
	now := time.Now()
	pool, serverTLS := testCA(t, now.Add(-time.Hour), now.Add(time.Hour))
	cfg := actorstest.FastConfig()
	cfg.PongTimeout = time.Second
	cfg.ReadingTimeout = 30 * time.Second
	cfg.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	h := newHarness(t, cfg)
	gws := []gatewayd.Gateway{
		addRawGateway(t, h, "frag-ws", fragmentPeer(t, nil, 16384, 16<<10, 600*time.Millisecond)),
		addRawGateway(t, h, "frag-wss", fragmentPeer(t, serverTLS, 16384, 16<<10, 600*time.Millisecond)),
	}
	for _, g := range gws {
		h.WaitState(g.ID, gatewayd.StateAuthenticated, 10*time.Second)
	}
	for round := range 2 {
		if round > 0 {
			time.Sleep(2 * time.Second) // quiet between messages (a condition cannot tell)
		}
		start := time.Now()
		bad := burstReadings(t, h, gws, time.Minute)
		t.Logf("round %d: final after %s", round, time.Since(start).Round(time.Millisecond))
		checkBurst(t, h, gws, bad)
	}
}
