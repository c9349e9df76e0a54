package api_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/actors"
	"github.com/ctcgw/gatewayd/ctc/ctctest"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// storedWithX waits for the sensor's COMPLETE reading whose x axis peaks
// at hz, and returns it.
func storedWithX(t *testing.T, e *liveEnv, sensor string, hz float64) map[string]any {
	t.Helper()
	var holder map[string]any
	testutil.Eventually(t, func() bool {
		for _, v := range e.do("GET", "/api/sensors/"+sensor+"/readings?status=COMPLETE&limit=100", nil).json(t)["data"].([]any) {
			m := v.(map[string]any)
			f := m["summary"].(map[string]any)["x"].(map[string]any)["dominant_frequency_hz"].(float64)
			if f > hz-10 && f < hz+10 {
				holder = m
				return true
			}
		}
		return false
	}, 30*time.Second, "the samples of the tone at %g Hz stored", hz)
	return holder
}

// (Found by an audit, helper 2, whose tests these are.) API.md §8: an acquisition is TAKE_DYN_READING, its
// RTN_DYN, then NOT_DYN_READING_STARTED, then NOT_DYN_READING "for that
// serial within READING_TIMEOUT". A reading that timed out is FAILED; the
// samples the gateway sends for it afterwards are not the next reading's.
//
// Reading A of a sensor times out waiting for its samples (they come 5 s
// after its start, READING_TIMEOUT is 1 s). Reading B of the same sensor
// is then asked for; the gateway answers TAKE_DYN_READING at once but
// confirms B's start only 8 s later. A's late samples arrive while B waits
// for its NOT_DYN_READING_STARTED, and are taken as B's: B is COMPLETE
// with A's samples, before the gateway even said B started, and B's own
// samples are then stored as a reading nobody asked for (trigger GATEWAY).
func TestLateSamplesAreNotTheNextReadings(t *testing.T) {
	e, _, sg, sensors := readingEnv(t, func(c *actors.Config) {
		c.ReadingStartTimeout, c.ReadingTimeout = 30*time.Second, time.Second
	})
	const serial = 10001
	sensor := sensors[serial]["id"].(string)

	sg.UpdateFaults(func(f *ctctest.Faults) { f.CaptureDelay = 5 * time.Second })
	a := e.take(sensor)
	require.Equal(t, "FAILED", a["status"])
	require.Equal(t, "no NOT_DYN_READING within 1s", a["error"])

	sg.UpdateFaults(func(f *ctctest.Faults) { f.CaptureDelay, f.StartDelay = 0, 8*time.Second })
	delivered := sg.Stats().ReadingsDelivered
	r := e.do("POST", "/api/sensors/"+sensor+"/readings", nil)
	require.Equal(t, 202, r.status, string(r.body))
	b := r.json(t)["id"].(string)

	// A's samples, late, measured the sensor's usual signal; from now on
	// the sensor measures another one, which is what B's samples carry.
	testutil.Eventually(t, func() bool { return sg.Stats().ReadingsDelivered > delivered }, 15*time.Second,
		"A's late samples sent")
	sigB := ctctest.Signal{X: ctctest.Tone{Amplitude: 0.5, FrequencyHz: 400}, Y: ctctest.Tone{Amplitude: 0.3, FrequencyHz: 800},
		Z: ctctest.Tone{Amplitude: 0.2, FrequencyHz: 200}, Offset: [3]float64{0, 0, 1}, Noise: 0.005, Seed: 7}
	sg.SetSignal(serial, sigB)
	sigA := ctctest.SignalFor(ctctest.DefaultSensors(1)[0])

	// Wait until B's samples (sigB's tones) are stored, wherever they went.
	holder := storedWithX(t, e, sensor, sigB.X.FrequencyHz)
	assert.Equal(t, b, holder["id"], "B's own samples went to reading %v (trigger %v), not to B", holder["id"], holder["trigger"])

	rd := e.waitReading(b)
	require.Equal(t, "COMPLETE", rd["status"], "%v", rd["error"])
	x := rd["summary"].(map[string]any)["x"].(map[string]any)["dominant_frequency_hz"].(float64)
	assert.InDelta(t, sigB.X.FrequencyHz, x, 25600.0/8192, "B holds its own samples, not A's late ones (x at %g Hz; A's tone is %g Hz)",
		x, sigA.X.FrequencyHz)
}

// The same with a late NOT_DYN_READING_STARTED: reading
// A of a sensor fails because the gateway did not confirm its start within
// READING_START_TIMEOUT (2 s; the gateway confirms it after 3 s and sends
// its samples at once). Reading B of the same sensor, asked for right
// after, is answered at once and waits for its own start, which the
// gateway confirms only after 6 s. A's late start is taken for B's, and
// A's samples, which follow it, for B's samples.
func TestLateStartIsNotTheNextReadings(t *testing.T) {
	e, _, sg, sensors := readingEnv(t, func(c *actors.Config) {
		c.ReadingStartTimeout, c.ReadingTimeout = 2*time.Second, 30*time.Second
	})
	const serial = 10001
	sensor := sensors[serial]["id"].(string)

	sg.UpdateFaults(func(f *ctctest.Faults) { f.StartDelay = 3 * time.Second })
	a := e.take(sensor)
	require.Equal(t, "FAILED", a["status"])
	require.Equal(t, "no NOT_DYN_READING_STARTED within 2s", a["error"])

	sg.UpdateFaults(func(f *ctctest.Faults) { f.StartDelay = 6 * time.Second })
	delivered := sg.Stats().ReadingsDelivered
	r := e.do("POST", "/api/sensors/"+sensor+"/readings", nil)
	require.Equal(t, 202, r.status, string(r.body))
	b := r.json(t)["id"].(string)

	testutil.Eventually(t, func() bool { return sg.Stats().ReadingsDelivered > delivered }, 15*time.Second,
		"A's late samples sent")
	sigB := ctctest.Signal{X: ctctest.Tone{Amplitude: 0.5, FrequencyHz: 400}, Y: ctctest.Tone{Amplitude: 0.3, FrequencyHz: 800},
		Z: ctctest.Tone{Amplitude: 0.2, FrequencyHz: 200}, Offset: [3]float64{0, 0, 1}, Noise: 0.005, Seed: 7}
	sg.SetSignal(serial, sigB)

	rd := e.waitReading(b)
	if rd["status"] == "COMPLETE" {
		x := rd["summary"].(map[string]any)["x"].(map[string]any)["dominant_frequency_hz"].(float64)
		assert.InDelta(t, sigB.X.FrequencyHz, x, 25600.0/8192,
			"B holds A's samples (x at %g Hz), started by A's late NOT_DYN_READING_STARTED", x)
	}
	// B's own samples are B's, not a reading the gateway pushed unasked.
	holder := storedWithX(t, e, sensor, sigB.X.FrequencyHz)
	assert.Equal(t, b, holder["id"], "B's own samples went to reading %v (trigger %v), not to B", holder["id"], holder["trigger"])
}
