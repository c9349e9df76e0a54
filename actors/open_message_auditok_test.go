package actors_test

// Audit of the open-message bound (helper 1): honest traffic is not cut.

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
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
// 60 gateways over ws://, a quarter of them larger than 256 KiB, with an
// intake of 1 MiB and a pong timeout of 1 s, on a loaded box (-race): each
// reader waits its turn at the intake, then reads its frame at socket
// speed. None may be cut as stalled, none fail.
// Would catch: time a reader is held back (intake, grow) counted against
// the message, a deadline left on the socket, a stall bound that fires
// for a sender that was only waiting for TCP to drain.
func TestAuditOKBurstOfReadingsIsNotCutAsStalled(t *testing.T) {
	h := newHarness(t, burstCfg(nil))
	runBurst(t, h, h.Sim, 100)
}

// The same over wss://, 40 gateways: the frame meter and the quiet probe
// sit over and under TLS, whose records come whole or not at all.
func TestAuditOKBurstOfReadingsOverTLSIsNotCutAsStalled(t *testing.T) {
	now := time.Now()
	pool, serverTLS := testCA(t, now.Add(-time.Hour), now.Add(time.Hour))
	sim, err := ctctest.NewTLSServer("127.0.0.1:0", serverTLS)
	require.NoError(t, err)
	t.Cleanup(sim.Close)
	h := newHarness(t, burstCfg(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	runBurst(t, h, sim, 40)
}

// burstCfg: a pong timeout of 1 s (the open message's stall bound too),
// a small intake (most readers wait their turn, and readings over 256 KiB
// wait again as they grow), a reading timeout long enough that the intake
// wait (half of it) does not decide.
func burstCfg(tc *tls.Config) actors.Config {
	cfg := actorstest.FastConfig()
	cfg.PongTimeout = time.Second
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
