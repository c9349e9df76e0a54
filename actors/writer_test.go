package actors

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// A login burst puts the sensor writes off, for at most maxDataHolds
// intervals; its end lets them through at the next check.
func TestWriterHoldsDataDuringLoginBurst(t *testing.T) {
	t.Parallel()
	start := time.Unix(1_000_000, 0)
	w := &writer{dataEvery: time.Second, lastCheck: start, lastFlush: start}
	check := time.Second / dataChecks
	at := start
	tick := func(logins int) bool {
		for range logins {
			w.loggedIn()
		}
		at = at.Add(check)
		due := w.dataDue(at)
		if due {
			w.lastFlush = at
		}
		return due
	}
	perCheck := loginBurstRate / dataChecks // the burst rate, per check

	// Quiet: once per interval.
	for i := 1; i < dataChecks; i++ {
		assert.False(t, tick(0), "check %d of the first interval", i)
	}
	assert.True(t, tick(perCheck-1), "an interval later, below the burst rate: write")

	// A burst holds the write for maxDataHolds intervals at most.
	held := 0
	for tick(perCheck) == false {
		held++
		if held > 100 {
			t.Fatal("a burst held the write for good")
		}
	}
	assert.Equal(t, maxDataHolds*dataChecks, held, "checks held")
	assert.False(t, tick(perCheck), "the burst goes on: a new hold")
	assert.True(t, tick(0), "the burst is over: write at once, not at the next interval")
	assert.False(t, tick(0), "and then once per interval again")
}
