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
// Reading A of a sensor times out waiting for its samples (they come 6 s
// after its start, READING_TIMEOUT is 3 s). Reading B of the same sensor
// is then asked for; the gateway answers TAKE_DYN_READING at once but
// confirms B's start only 8 s later. A's late samples arrive while B waits
// for its NOT_DYN_READING_STARTED, and are taken as B's: B is COMPLETE
// with A's samples, before the gateway even said B started, and B's own
// samples are then stored as a reading nobody asked for (trigger GATEWAY).
func TestLateSamplesAreNotTheNextReadings(t *testing.T) {
	e, _, sg, sensors := readingEnv(t, func(c *actors.Config) {
		// 3 s for B's samples after its start: 1 s was passed on a loaded
		// box (a CI run), and B failed for want of its own samples.
		c.ReadingStartTimeout, c.ReadingTimeout = 30*time.Second, 3*time.Second
	})
	const serial = 10001
	sensor := sensors[serial]["id"].(string)

	sg.UpdateFaults(func(f *ctctest.Faults) { f.CaptureDelay = 6 * time.Second })
	sigB := signalAfterA(sg, serial)
	a := e.take(sensor)
	require.Equal(t, "FAILED", a["status"])
	require.Equal(t, "no NOT_DYN_READING within 3s", a["error"])

	sg.UpdateFaults(func(f *ctctest.Faults) { f.CaptureDelay, f.StartDelay = 0, 8*time.Second })
	b := askWhileLate(t, e, sg, sensor)
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

// The same with a late NOT_DYN_READING_STARTED: reading A fails because
// the gateway did not confirm its start within READING_START_TIMEOUT (4 s;
// the gateway confirms it after 7 s and sends its samples at once).
// Reading B of the same sensor, asked for right after, was answered at
// once and took A's late start for its own, and A's samples with it. Now
// B's TAKE_DYN_READING goes out only once A's samples have come (no
// reading of a sensor starts while a failed one may still notify), and B
// holds its own.
func TestLateStartIsNotTheNextReadings(t *testing.T) {
	e, _, sg, sensors := readingEnv(t, func(c *actors.Config) {
		c.ReadingStartTimeout, c.ReadingTimeout = 4*time.Second, 30*time.Second
	})
	const serial = 10001
	sensor := sensors[serial]["id"].(string)

	// 3 s past the start timeout: with 1 s (5 s), a loaded CI box once
	// handled the TAKE's answer late enough that the start came in time.
	sg.UpdateFaults(func(f *ctctest.Faults) { f.StartDelay = 7 * time.Second })
	sigB := signalAfterA(sg, serial)
	a := e.take(sensor)
	require.Equal(t, "FAILED", a["status"])
	require.Equal(t, "no NOT_DYN_READING_STARTED within 4s", a["error"])

	// B's, within the timeout (the signal is B's already: signalAfterA).
	sg.UpdateFaults(func(f *ctctest.Faults) { f.StartDelay = 2500 * time.Millisecond })
	b := askWhileLate(t, e, sg, sensor)

	rd := e.waitReading(b)
	require.Equal(t, "COMPLETE", rd["status"], "%v", rd["error"])
	x := rd["summary"].(map[string]any)["x"].(map[string]any)["dominant_frequency_hz"].(float64)
	assert.InDelta(t, sigB.X.FrequencyHz, x, 25600.0/8192,
		"B holds A's samples (x at %g Hz), started by A's late NOT_DYN_READING_STARTED", x)
	// B's own samples are B's, not a reading the gateway pushed unasked.
	holder := storedWithX(t, e, sensor, sigB.X.FrequencyHz)
	assert.Equal(t, b, holder["id"], "B's own samples went to reading %v (trigger %v), not to B", holder["id"], holder["trigger"])
}

// (Found by an audit, helper 8, whose test this is.) API.md §8: an acquisition is TAKE_DYN_READING, its
// RTN_DYN, then NOT_DYN_READING_STARTED (none within READING_START_TIMEOUT
// → FAILED), then NOT_DYN_READING within READING_TIMEOUT. "No reading
// stays unfinished forever."
//
// Reading A of a sensor times out waiting for its start, and the gateway
// never sends that start (the capture is lost: the simulator's StartDelay
// of an hour). The gateway is healthy again: every later reading of the
// sensor is started and delivered at once, well within both timeouts.
// With 86d6df8 the actor owed A one start and one set of samples and
// took B's genuine start as A's late one, B's samples as A's (stored as a
// GATEWAY reading); B timed out in turn and owed the same again: every
// reading of the sensor failed (a scheduled sensor never recovered). Now
// B waits until A's notes can no longer come, then completes.
func TestLostStartDoesNotFailEveryLaterReading(t *testing.T) {
	e, _, sg, sensors := readingEnv(t, func(c *actors.Config) {
		c.ReadingStartTimeout, c.ReadingTimeout = time.Second, 5*time.Second
	})
	sensor := sensors[10001]["id"].(string)

	sg.UpdateFaults(func(f *ctctest.Faults) { f.StartDelay = time.Hour }) // A's start never comes
	a := e.take(sensor)
	require.Equal(t, "FAILED", a["status"])
	require.Equal(t, "no NOT_DYN_READING_STARTED within 1s", a["error"])

	sg.UpdateFaults(func(f *ctctest.Faults) { f.StartDelay = 0 })
	for _, name := range []string{"B", "C"} {
		delivered := sg.Stats().ReadingsDelivered
		rd := e.take(sensor)
		testutil.Eventually(t, func() bool { return sg.Stats().ReadingsDelivered > delivered }, 10*time.Second,
			"%s's samples sent", name)
		assert.Equal(t, "COMPLETE", rd["status"], "reading %s: started and delivered at once, but %v", name, rd["error"])
	}
	// Nothing the gateway pushed unasked: every set of samples was asked for.
	r := e.do("GET", "/api/sensors/"+sensor+"/readings?limit=100", nil)
	require.Equal(t, 200, r.status, string(r.body))
	for _, v := range r.json(t)["data"].([]any) {
		m := v.(map[string]any)
		assert.NotEqual(t, "GATEWAY", m["trigger"], "reading %v (%v) stored as pushed unasked", m["id"], m["status"])
	}
}

// askWhileLate asks for reading B of the sensor while an earlier one (A)
// that failed is still to deliver, and waits for A's late samples (the
// signal is B's from then on: signalAfterA).
func askWhileLate(t *testing.T, e *liveEnv, sg *ctctest.Gateway, sensor string) (b string) {
	t.Helper()
	delivered := sg.Stats().ReadingsDelivered
	r := e.do("POST", "/api/sensors/"+sensor+"/readings", nil)
	require.Equal(t, 202, r.status, string(r.body))
	testutil.Eventually(t, func() bool { return sg.Stats().ReadingsDelivered > delivered }, 15*time.Second,
		"A's late samples sent")
	return r.json(t)["id"].(string)
}

// signalAfterA switches the sensor's signal to B's tones as soon as the
// next reading's samples (A's, asked for next) are built, before they are
// sent: B's, asked for after, are made after. The test switched it once it
// saw A's delivered, racing B's acquisition (2.5 s), and a loaded box (CI
// with one more test binary) lost that race: B carried A's tone, and no
// reading ever carried B's (helper 5).
func signalAfterA(sg *ctctest.Gateway, serial int64) ctctest.Signal {
	sigB := ctctest.Signal{X: ctctest.Tone{Amplitude: 0.5, FrequencyHz: 400}, Y: ctctest.Tone{Amplitude: 0.3, FrequencyHz: 800},
		Z: ctctest.Tone{Amplitude: 0.2, FrequencyHz: 200}, Offset: [3]float64{0, 0, 1}, Noise: 0.005, Seed: 7}
	sg.SetSignalAfterNextReading(serial, sigB)
	return sigB
}
