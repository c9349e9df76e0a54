package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// Both storms end with every gateway back; the watched one with every
// subscriber holding every event of the storm, in order, resumed after
// any overflow without a reset.
func TestEventsScenarioAtSmallSize(t *testing.T) {
	t.Parallel()
	o, out, progress := smallOptions(t)
	o.subscribers, o.scrapes = 5, 20
	// A failure count resets after one healthy ping interval; a short one
	// keeps the wait between the storms short.
	o.pingInterval = 300 * time.Millisecond
	// A tiny client buffer makes the drop's burst overflow some streams:
	// they must resume from the ring with Last-Event-ID and lose nothing.
	o.eventsClientBuffer = 8
	figures := runSmall(t, o, out, progress, "events")
	requireFigures(t, figures, "metrics_scrape_p99", "metrics_body", "events_storm_ratio", "events_storm_0subs_time")
	assert.Equal(t, 50.0, figures["events_storm_gateways"])
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
