package actors

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// No more than its slots run at once, a waiter runs as soon as a slot is
// given back, and a nil crunch does not bound.
func TestCrunchBoundsConcurrency(t *testing.T) {
	for _, slots := range []int{0, 1, 2} {
		c := newCrunch(slots)
		limit := int32(max(slots, 1))
		var running, most atomic.Int32
		release := make(chan struct{}) // each receive lets one holder leave
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				c.do(func() {
					n := running.Add(1)
					for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
					}
					<-release // hold the slot: the others overlap, if the bound lets them
					running.Add(-1)
				})
			})
		}
		// The slots fill, and nobody leaves until released one at a time.
		require.Eventually(t, func() bool { return running.Load() == limit }, 5*time.Second, time.Millisecond, "slots %d", slots)
		for range 16 {
			release <- struct{}{}
		}
		wg.Wait()
		assert.Equal(t, limit, most.Load(), "slots %d", slots)
	}

	c := newCrunch(1)
	release := make(chan struct{})
	go c.do(func() { <-release })
	require.Eventually(t, func() bool { return len(c) == 1 }, 5*time.Second, time.Millisecond)
	ran := make(chan struct{})
	go c.do(func() { close(ran) })
	select {
	case <-ran:
		t.Fatal("ran while the only slot was taken")
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	select {
	case <-ran:
	case <-time.After(5 * time.Second):
		t.Fatal("did not run after the slot was given back")
	}

	var unbounded crunch
	done := false
	unbounded.do(func() { done = true })
	assert.True(t, done)
}
