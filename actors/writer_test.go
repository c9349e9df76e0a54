package actors

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// A login burst puts the sensor writes off, for at most maxDataHolds
// ticks; a quiet tick lets them through at once.
func TestWriterHoldsDataDuringLoginBurst(t *testing.T) {
	t.Parallel()
	w := &writer{dataEvery: time.Second}
	logins := func(n int) {
		for range n {
			w.loggedIn()
		}
	}
	start := time.Unix(1_000_000, 0)

	assert.False(t, w.holdData(start), "no logins: flush")
	logins(loginBurstRate - 1)
	assert.False(t, w.holdData(start), "below the burst rate: flush")

	for i := range maxDataHolds {
		logins(loginBurstRate)
		assert.True(t, w.holdData(start.Add(time.Duration(i)*time.Second)), "tick %d of a burst: hold", i)
	}
	logins(loginBurstRate)
	assert.False(t, w.holdData(start.Add(maxDataHolds*time.Second)), "a burst longer than the hold: flush")
	logins(loginBurstRate)
	assert.True(t, w.holdData(start.Add((maxDataHolds+1)*time.Second)), "the burst goes on: a new hold")
	assert.False(t, w.holdData(start.Add((maxDataHolds+2)*time.Second)), "burst over: flush")

	// The rate scales with the tick: a 100 ms tick holds from a tenth.
	w = &writer{dataEvery: 100 * time.Millisecond}
	logins(loginBurstRate / 10)
	assert.True(t, w.holdData(start))
}
