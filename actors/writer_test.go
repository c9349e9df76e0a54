package actors

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// While the dials are crowded the sensor writes wait, for at most
// maxDataHolds intervals; the crowd's end lets them through at the next
// check.
func TestWriterHoldsDataWhileDialsCrowd(t *testing.T) {
	t.Parallel()
	start := time.Unix(1_000_000, 0)
	crowded := false
	w := &writer{dataEvery: time.Second, lastFlush: start, crowded: func() bool { return crowded }}
	at := start
	tick := func() bool {
		at = at.Add(time.Second / dataChecks)
		due := w.dataDue(at)
		if due {
			w.lastFlush = at
		}
		return due
	}

	// Quiet: once per interval.
	for i := 1; i < dataChecks; i++ {
		assert.False(t, tick(), "check %d of the first interval", i)
	}
	assert.True(t, tick(), "an interval later: write")

	crowded = true
	held := 0
	for !tick() {
		held++
		require.Less(t, held, 100, "a crowd held the write for good")
	}
	assert.Equal(t, maxDataHolds*dataChecks, held, "checks held")
	assert.False(t, tick(), "still crowded: a new hold")
	crowded = false
	assert.True(t, tick(), "the crowd is gone: write at once, not at the next interval")
	assert.False(t, tick(), "and then once per interval again")
}
