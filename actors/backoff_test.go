package actors

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestBackoff(t *testing.T) {
	cases := []struct {
		attempt int
		jitter  float64
		want    time.Duration
	}{
		{1, 0, time.Second},
		{2, 0, 2 * time.Second},
		{3, 0, 4 * time.Second},
		{3, 0.5, 5 * time.Second}, // +25%
		{3, 0.999999, 6*time.Second - 4*time.Microsecond},
		{5, 0, 16 * time.Second},
		{6, 0, 30 * time.Second},                           // capped
		{6, 0.9, 30*time.Second - 30*time.Second*225/1000}, // on the cap, jittered below it
		{1000, 0.5, 30*time.Second - 30*time.Second/8},     // no overflow
		{0, 0, time.Second},
	}
	for _, tc := range cases {
		got := backoff(tc.attempt, time.Second, 30*time.Second, 2, tc.jitter)
		assert.InDelta(t, float64(tc.want), float64(got), float64(10*time.Microsecond), "attempt %d jitter %v", tc.attempt, tc.jitter)
	}
	// A delay that jitter takes past the cap lands below it instead:
	// 25 s + 40 % is past 30 s.
	assert.InDelta(t, float64(30*time.Second*8/10), float64(backoff(2, 25*time.Second/2, 30*time.Second, 2, 0.8)), float64(10*time.Microsecond))
	// On the cap, retries spread over its last quarter.
	seen := map[time.Duration]bool{}
	for _, j := range []float64{0.1, 0.5, 0.9} {
		d := backoff(50, time.Second, 30*time.Second, 2, j)
		assert.GreaterOrEqual(t, d, 30*time.Second*3/4)
		assert.LessOrEqual(t, d, 30*time.Second)
		seen[d] = true
	}
	assert.Len(t, seen, 3, "gateways on the cap do not retry together")
	// Never below the initial delay, never above the cap.
	for a := 1; a < 40; a++ {
		for _, j := range []float64{0, 0.3, 0.99} {
			d := backoff(a, 500*time.Millisecond, 10*time.Second, 1.5, j)
			assert.GreaterOrEqual(t, d, 500*time.Millisecond)
			assert.LessOrEqual(t, d, 10*time.Second)
		}
	}
}

// A Config that sets none of the connection's times gets API.md's
// defaults, not zeros: a zero dial timeout fails every dial, a zero ping
// interval re-arms at once, a zero backoff retries in a hot loop.
// RestartLimit 0 is a setting of its own and stays.
func TestConfigDefaults(t *testing.T) {
	c := Config{}.withDefaults()
	assert.Equal(t, 10*time.Second, c.ConnectTimeout)
	assert.Equal(t, 10*time.Second, c.AuthTimeout)
	assert.Equal(t, 30*time.Second, c.CommandTimeout)
	assert.Equal(t, 30*time.Second, c.PingInterval)
	assert.Equal(t, 10*time.Second, c.PongTimeout)
	assert.Equal(t, time.Minute, c.RestartWindow)
	assert.Equal(t, 0, c.RestartLimit)
	assert.Equal(t, time.Second, backoff(1, c.BackoffInitial, c.BackoffMax, c.BackoffMultiplier, 0))
	assert.Equal(t, 30*time.Second, backoff(20, c.BackoffInitial, c.BackoffMax, c.BackoffMultiplier, 0))

	set := Config{BackoffInitial: time.Minute, BackoffMultiplier: 1.5, PingInterval: time.Second}.withDefaults()
	assert.Equal(t, time.Minute, set.BackoffMax, "a cap below the first delay would be no cap")
	assert.Equal(t, 1.5, set.BackoffMultiplier)
	assert.Equal(t, time.Second, set.PingInterval)
}

// A gateway ever seen (before a restart, say) dials in the open lane;
// one never seen proves itself first.
func TestProvenBy(t *testing.T) {
	long := time.Now().Add(-400 * 24 * time.Hour)
	assert.True(t, provenBy(&long))
	assert.False(t, provenBy(nil))
}

// The per-connection limits gatewayd runs with are the runtime's defaults
// (cmd/gatewayd sets none of them), and they are README's: a connection
// is cut off past 200 frames or 8 MiB per second sustained, in bursts of
// 2,000 frames or 32 MiB, and holds at most 1 MiB of decoded frames for
// its actor; 64 dials in flight.
func TestConnectionLimitDefaultsAreTheREADMEs(t *testing.T) {
	c := Config{}.withDefaults()
	assert.Equal(t, 200, c.FloodFrameRate)
	assert.Equal(t, 2000, c.FloodFrameBurst)
	assert.Equal(t, 8<<20, c.FloodByteRate)
	assert.Equal(t, 32<<20, c.FloodByteBurst)
	assert.Equal(t, 1<<20, c.InboxBytes)
	assert.Equal(t, 64, c.DialConcurrency)
	assert.Equal(t, 4<<20, readLimit, "the largest frame accepted")
	assert.GreaterOrEqual(t, c.FloodByteBurst, readLimit, "a frame at the read limit fits in a burst")
}
