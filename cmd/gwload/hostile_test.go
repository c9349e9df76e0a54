package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// A few peers of each kind next to healthy gateways: every crashed healthy
// gateway comes back in both phases, the hostile peers did what they were
// told (flooded, hung, logged in and broke), and no healthy gateway is
// left down.
func TestHostileScenarioAtSmallSize(t *testing.T) {
	t.Parallel()
	o, out, progress := smallOptions(t)
	o.gateways, o.hostileCrashes = 30, 10
	o.hostileFlood, o.hostileHung, o.hostileFlap = 2, 4, 2
	o.hostileWarmup = time.Second
	o.connectTimeout = time.Second // hung peers fail once quickly
	figures := runSmall(t, o, out, progress, "hostile")
	requireFigures(t, figures, "hostile_baseline_crash_to_authenticated_p99", "hostile_active_crash_to_authenticated_p99",
		"hostile_baseline_rss", "hostile_active_rss", "hostile_active_gwload_cpu", "hostile_p99_ratio")
	assert.Equal(t, 10.0, figures["hostile_baseline_crash_to_authenticated_count"])
	assert.Equal(t, 10.0, figures["hostile_active_crash_to_authenticated_count"])
	assert.Equal(t, 0.0, figures["hostile_baseline_crash_timeouts"])
	assert.Equal(t, 0.0, figures["hostile_active_crash_timeouts"])
	assert.Equal(t, 0.0, figures["hostile_healthy_not_authenticated"])
	assert.Positive(t, figures["hostile_flood_frames_sent_since_added"], "the flooders flooded")
	assert.Positive(t, figures["hostile_flap_logins_per_peer_since_added"], "the flapping peers logged in")
	states := 0.0
	for name, v := range figures {
		if len(name) > len("hostile_hung_state_") && name[:len("hostile_hung_state_")] == "hostile_hung_state_" {
			states += v
		}
	}
	assert.Equal(t, 4.0, states, "every hung peer has a status")
	assert.Zero(t, figures["hostile_hung_state_authenticated"], "a hung peer never authenticates")
}
