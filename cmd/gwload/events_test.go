package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/ctc/ctctest"
)

// Both storms end with every gateway back; the watched one with every
// subscriber holding every event of the storm, in order, resumed after
// any overflow without a reset.
func TestEventsScenarioAtSmallSize(t *testing.T) {
	t.Parallel()
	o, out, progress := smallOptions(t)
	o.subscribers, o.scrapes, o.stormPairs = 5, 20, 2
	// A failure count resets after one healthy ping interval; a short one
	// keeps the wait between the storms short.
	o.pingInterval = 300 * time.Millisecond
	// A tiny client buffer makes the drop's burst overflow some streams:
	// they must resume from the ring with Last-Event-ID and lose nothing.
	o.eventsClientBuffer = 8
	figures := runSmall(t, o, out, progress, "events")
	requireFigures(t, figures, "metrics_scrape_p99", "metrics_body", "events_storm_ratio", "events_storm_0subs_time")
	assert.Equal(t, 50.0, figures["events_storm_gateways"])
	assert.Equal(t, 2.0, figures["events_storm_pairs"])
	assert.Equal(t, 5.0, figures["events_storm_5subs_subscribers_complete"])
	assert.Equal(t, 0.0, figures["events_storm_5subs_subscribers_out_of_order"])
	assert.Equal(t, 0.0, figures["events_storm_5subs_reset_frames"])
	assert.Equal(t, figures["events_storm_5subs_overflow_frames"], figures["events_storm_5subs_resumes"])
	t.Logf("%v overflows, each resumed", figures["events_storm_5subs_overflow_frames"])
	// A drop is at least AUTHENTICATED → BACKOFF → … → AUTHENTICATED.
	assert.GreaterOrEqual(t, figures["events_storm_5subs_events_per_subscriber_min"], 2*50.0)
	assert.Equal(t, figures["events_storm_5subs_state_changes"], figures["events_storm_5subs_events_per_subscriber_min"])
}

// Every variant answers every request (the scenario fails on any error)
// and both ratios are printed.
func TestOverheadScenarioAtSmallSize(t *testing.T) {
	t.Parallel()
	o, out, progress := smallOptions(t)
	o.overheadRounds = 1
	figures := runSmall(t, o, out, progress, "overhead")
	requireFigures(t, figures, "overhead_metrics_on_vs_off", "overhead_auth_on_vs_off", "overhead_default_rate_median",
		"overhead_metrics_off_rate_median", "overhead_auth_off_rate_median")
}

// The watched storm fails when a subscriber missed events (BENCHMARKS.md,
// #15: "a reset, or a gap, fails it"). Here a fake gatewayd publishes 10
// events during the storm (its counters say so) and ends the one
// subscriber's stream after 4 of them, without event: overflow (as
// gatewayd does to a stream whose write deadline passed, whose token was
// revoked, or at a stop). The wait for the stragglers skips a stream
// that ended and the tally finds 0 of 1 subscribers complete; the storm
// used to return its time with no error all the same, so `gwload events`
// exited 0 and printed events_storm_ratio from a storm whose subscriber
// had gone.
// (Found by an audit, helper 6.)
func TestWatchedStormFailsWhenASubscriberMissedEvents(t *testing.T) {
	sim, err := ctctest.NewServer("127.0.0.1:0")
	require.NoError(t, err)
	defer sim.Close()

	var scrapes atomic.Int64
	e, r, out := fakeGatewayd(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/health":
			_, _ = io.WriteString(w, `{"gateways":{"total":0,"authenticated":0}}`)
		case "/metrics":
			n := 0
			if scrapes.Add(1) > 1 { // the scrape after the storm
				n = 10
			}
			fmt.Fprintf(w, "gatewayd_events_published_total %d\ngatewayd_gateway_state_changes_total %d\n", n, n)
		case "/api/events":
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, ": open\n\n")
			w.(http.Flusher).Flush()
			for id := 1; id <= 4; id++ {
				fmt.Fprintf(w, "id: %d\nevent: gateway.state\ndata: {}\n\n", id)
			}
			// The stream ends here: 6 of the storm's 10 events never come.
		default:
			http.NotFound(w, r)
		}
	})
	e.sim = sim
	_, err = stormWatched(context.Background(), e, r, 1)
	assert.Contains(t, out.String(), "events_storm_1subs_subscribers_complete 0 count")
	assert.ErrorContains(t, err, "only 0 of 1 subscribers got all 10 events",
		"the only subscriber got 4 of the storm's 10 events, yet the watched storm is a success")
}

// sseStream is n events in gatewayd's framing, ids from first, every
// third a gateway.created and the rest gateway.state, with data lines the
// size of a real gateway.state.
func sseStream(first uint64, n int) []byte {
	var b bytes.Buffer
	b.WriteString(": keep-alive\n\n")
	for i := range n {
		typ := "gateway.state"
		if i%3 == 2 {
			typ = "gateway.created"
		}
		fmt.Fprintf(&b, "id: %d\nevent: %s\ndata: {\"id\":\"8a1f6c1e-8f7b-4c53-9a4e-%012d\",\"factory_id\":\"0b2c0d93-6a54-4a2f-8e3b-5f0f5d1c2a77\","+
			"\"gateway_id\":\"GW-%05d\",\"name\":\"Gateway %d\",\"from\":\"CONNECTING\",\"to\":\"AUTHENTICATING\","+
			"\"at\":\"2026-12-06T01:18:41.123Z\",\"last_error\":null}\n\n", first+uint64(i), typ, i, i, i)
	}
	return b.Bytes()
}

func TestTallyCountsAStreamInOrder(t *testing.T) {
	var s sseSub
	opened := 0
	overflowed := s.tally(bytes.NewReader(sseStream(7, 300)), func(error) { opened++ })
	assert.False(t, overflowed)
	assert.Equal(t, 1, opened)
	assert.Equal(t, int64(300), s.events.Load())
	assert.Equal(t, int64(200), s.states.Load())
	assert.Equal(t, uint64(7), s.firstID.Load())
	assert.Equal(t, uint64(306), s.lastID.Load())
	assert.Zero(t, s.gaps.Load())
	assert.Zero(t, s.disorder.Load())
	assert.Equal(t, int64(len(sseStream(7, 300))), s.bytes.Load())
}

func TestTallyNoticesGapsDisorderAndTheEnd(t *testing.T) {
	var s sseSub
	stream := append(sseStream(1, 5), sseStream(7, 2)...) // 6 is missing
	stream = append(stream, sseStream(3, 1)...)           // a step back
	stream = append(stream, "event: overflow\ndata: {}\n\n"...)
	overflowed := s.tally(bytes.NewReader(stream), func(error) {})
	assert.True(t, overflowed)
	assert.Equal(t, int64(1), s.gaps.Load())
	assert.Equal(t, int64(1), s.disorder.Load())
	assert.Equal(t, int64(1), s.overflows.Load())
	assert.Equal(t, int64(7), s.events.Load(), "the step back is not counted")
	assert.Equal(t, uint64(8), s.lastID.Load())

	// After a reset the replay repeats old ids: not a disorder.
	var r sseSub
	stream = append(sseStream(1, 3), "event: reset\ndata: {}\n\n"...)
	stream = append(stream, sseStream(2, 4)...)
	r.tally(bytes.NewReader(stream), func(error) {})
	assert.Equal(t, int64(1), r.resets.Load())
	assert.Zero(t, r.disorder.Load())
	assert.Equal(t, int64(5), r.events.Load())
	assert.Equal(t, uint64(5), r.lastID.Load())
}

// BenchmarkTally is one subscriber's reading of a storm's events (the
// watched storm runs 100 of them beside the simulator on the same cores).
func BenchmarkTally(b *testing.B) {
	stream := sseStream(1, 30000)
	b.SetBytes(int64(len(stream)))
	for b.Loop() {
		var s sseSub
		s.tally(bytes.NewReader(stream), func(error) {})
		if s.events.Load() != 30000 {
			b.Fatal(s.events.Load())
		}
	}
}
