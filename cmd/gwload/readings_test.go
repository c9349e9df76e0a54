package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// The burst at small size: every manual reading requested is stored
// COMPLETE, none FAILED.
func TestReadingsBurstAtSmallSize(t *testing.T) {
	t.Parallel()
	o, out, progress := smallOptions(t)
	o.readingGateways, o.readingBurst, o.readingSchedule = 20, true, 0
	figures := runSmall(t, o, out, progress, "readings")
	requireFigures(t, figures, "burst_stored_rate", "burst_beyond_capture_p99", "burst_status_p99_over_idle",
		"burst_peak_rss_over_idle", "burst_storage_per_reading")
	assert.Equal(t, 40.0, figures["burst_readings"])
	assert.Equal(t, 40.0, figures["burst_complete"])
	assert.Equal(t, 0.0, figures["burst_failed"])
}

// The schedule's code path at small size. One minute is the least
// reading_interval the API takes, and each sensor's first reading comes
// at a random offset within it, so a few seconds see only the readings
// that fell due: about 200 × 4 s / 60 s ≈ 13 in the 3 s and the grace
// after them (none at all has odds of about 1e-6). Every one of those is stored COMPLETE (the scenario fails
// on a missing or failed one), and none twice.
func TestReadingsScheduleAtSmallSize(t *testing.T) {
	t.Parallel()
	o, out, progress := smallOptions(t)
	o.readingGateways, o.readingBurst, o.readingSchedule = 100, false, 3*time.Second
	figures := runSmall(t, o, out, progress, "readings")
	requireFigures(t, figures, "schedule_status_p99_over_idle", "schedule_peak_rss_over_idle")
	assert.Equal(t, 200.0, figures["schedule_sensors"])
	assert.Positive(t, figures["schedule_expected"], "some scheduled readings fell due")
	assert.Equal(t, figures["schedule_expected"], figures["schedule_complete"])
	assert.Equal(t, 0.0, figures["schedule_missing"])
	assert.Equal(t, 0.0, figures["schedule_failed"])
	assert.Equal(t, 0.0, figures["schedule_duplicates"])
}
