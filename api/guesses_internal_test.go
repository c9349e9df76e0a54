package api

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// The budget's arithmetic, on a clock of the test's: 30 at once, then 10
// a second, per address, and a full map forgets the addresses whose
// budget is whole again.
func TestGuessBudget(t *testing.T) {
	t.Parallel()
	var g guesses
	t0 := time.Unix(1_000_000, 0)
	for i := range 30 {
		assert.True(t, g.allow("10.0.0.1", t0), "lookup %d of the burst", i)
	}
	assert.False(t, g.allow("10.0.0.1", t0), "the burst is spent")
	assert.True(t, g.allow("10.0.0.2", t0), "another address has its own")
	assert.False(t, g.allow("10.0.0.1", t0.Add(50*time.Millisecond)), "half a lookup came back")
	assert.True(t, g.allow("10.0.0.1", t0.Add(100*time.Millisecond)), "one came back")
	assert.False(t, g.allow("10.0.0.1", t0.Add(100*time.Millisecond)))
	n := 0
	for g.allow("10.0.0.1", t0.Add(time.Hour)) {
		n++
	}
	assert.Equal(t, 30, n, "never more than the burst, however long the address was quiet")

	for i := range maxGuessers {
		g.allow(fmt.Sprintf("10.1.%d.%d", i/250, i%250), t0.Add(time.Hour))
	}
	g.mu.Lock()
	assert.LessOrEqual(t, len(g.clients), maxGuessers)
	spent := g.clients["10.0.0.1"]
	g.mu.Unlock()
	if spent != nil { // forgotten only if whole again
		assert.Less(t, spent.refilled(t0.Add(time.Hour)), float64(guessBurst))
	}
}
