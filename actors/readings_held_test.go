package actors_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/ctc/ctctest"
)

// (Found by an audit, helper 2, whose test this is.) API.md §8: a reading is FAILED when no NOT_DYN_READING
// for its serial comes "within READING_TIMEOUT" of its start. Here the
// gateway sends the samples 3 s after the start, within READING_TIMEOUT
// (4 s), while other gateways' readings fill the reading intake (README: a
// burst of readings waits in the sockets). The reader holds the frame up
// to half of READING_TIMEOUT (2 s), counted from when the frame arrived,
// not from the reading's start: the reading's timer runs out meanwhile and
// the reading is FAILED ("no NOT_DYN_READING within 4s") although the
// gateway delivered it in time; its samples, read a second later, are then
// stored as a reading nobody asked for. The pong timer knows about the
// hold (holdClock.pongWait); the reading timer does not.
func TestHeldReaderDoesNotFailAReadingDeliveredInTime(t *testing.T) {
	h, sg, r := heldReadingSetup(t, "heldreading", 3*time.Second)

	// A burst of other gateways' readings on their way to the database.
	drain := actors.FillIntake(h.Runtime, 1<<30)
	defer drain()
	eventually(t, func() bool { return sg.Stats().ReadingsDelivered == 1 }, 10*time.Second, "the samples sent, 3 s after the start")

	completeInTime(t, h, r)
}

// The reading timer waits out one hold of the reading intake (86d6df8),
// but the frame a hold lets go is not yet in the actor: it still waits
// for a decoding slot (crunch), which the same burst of readings keeps
// busy (the processors analyse them there). Samples sent 3.7 s after the
// start (READING_TIMEOUT 4 s) are held by the full intake for its whole
// wait (2 s), then wait for a slot; the timer, extended to the deadline
// plus one hold, runs out 0.3 s after the release and FAILS the reading
// "no NOT_DYN_READING within 4s" although the gateway sent it in time.
func TestReleasedFrameWaitingToDecodeDoesNotFailItsReading(t *testing.T) {
	h, sg, r := heldReadingSetup(t, "crunchreading", 3700*time.Millisecond)

	// A burst of other gateways' readings: the intake is full and the
	// decoding slots are busy.
	drain := actors.FillIntake(h.Runtime, 1<<30)
	defer drain()
	release := actors.HoldCrunch(h.Runtime)
	released := false
	defer func() {
		if !released {
			release()
		}
	}()
	eventually(t, func() bool { return sg.Stats().ReadingsDelivered == 1 }, 10*time.Second, "the samples sent, 3.7 s after the start")
	// The slots stay busy for 3 s more (the intake's hold is 2 s of it).
	time.Sleep(3 * time.Second)
	release()
	released = true

	completeInTime(t, h, r)
}

// heldReadingSetup starts a harness (READING_TIMEOUT 4 s) whose gateway's
// sensor 10001 delivers its samples capture after their start, and asks
// it for a reading.
func heldReadingSetup(t *testing.T, name string, capture time.Duration) (*actorstest.Harness, *ctctest.Gateway, gatewayd.Reading) {
	t.Helper()
	cfg := actorstest.FastConfig()
	cfg.ReadingStartTimeout, cfg.ReadingTimeout = 10*time.Second, 4*time.Second
	h := newHarness(t, cfg)
	g, sg := h.Add(name)
	h.WaitState(g.ID, gatewayd.StateAuthenticated, 10*time.Second)
	var sensor gatewayd.Sensor
	eventually(t, func() bool {
		list, err := h.Store.GatewaySensors(t.Context(), g.ID)
		for _, s := range list {
			if s.Serial == 10001 {
				sensor = s
			}
		}
		return err == nil && sensor.Serial == 10001
	}, 10*time.Second, "sensors discovered")
	eventually(t, func() bool { return sg.PushTemperature(10001, 20) == 1 }, 10*time.Second, "subscribed")

	sg.UpdateFaults(func(f *ctctest.Faults) { f.CaptureDelay = capture })
	r, s, err := h.Store.CreateReading(t.Context(), uuid.New(), sensor.ID, gatewayd.TriggerManual)
	require.NoError(t, err)
	require.NoError(t, h.Runtime.TakeReading(t.Context(), r, s.Serial, 25600))
	return h, sg, r
}

// completeInTime waits until the reading is final: COMPLETE, as the
// gateway sent its samples within READING_TIMEOUT.
func completeInTime(t *testing.T, h *actorstest.Harness, r gatewayd.Reading) {
	t.Helper()
	var got gatewayd.Reading
	eventually(t, func() bool {
		var err error
		got, err = h.Store.GetReading(t.Context(), r.ID)
		return err == nil && got.Status.Done()
	}, 20*time.Second, "the reading final")
	assert.Equal(t, gatewayd.ReadingComplete, got.Status, "the gateway sent the samples within READING_TIMEOUT; error %q", errText(got))
}
