package actors

import (
	"context"
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

// The limiter is crowded from the moment more dials wait or are in flight
// than there are slots until none is left.
func TestDialLimiterCrowded(t *testing.T) {
	t.Parallel()
	l := newDialLimiter(2)
	ctx := context.Background()
	require.NoError(t, l.acquire(ctx, false))
	require.NoError(t, l.acquire(ctx, true))
	assert.False(t, l.crowded(), "as many dials as slots")

	// A third waits for a slot: now it is crowded.
	waiting, cancel := context.WithCancel(ctx)
	gaveUp := make(chan error)
	go func() { gaveUp <- l.acquire(waiting, false) }()
	require.Eventually(t, l.crowded, 5*time.Second, time.Millisecond)
	cancel()
	require.ErrorIs(t, <-gaveUp, context.Canceled)
	assert.True(t, l.crowded(), "two dials still in flight: the storm's tail")
	l.release(true)
	assert.True(t, l.crowded(), "one still in flight")
	l.release(false)
	assert.False(t, l.crowded(), "none left")
	assert.Zero(t, l.pending.Load())
}
