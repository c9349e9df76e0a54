package api

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
)

// One gateway's holders take turns; another gateway's never wait for
// them; a lock nobody holds or waits for is forgotten.
func TestOrderLocksPerGateway(t *testing.T) {
	var o order
	a, b := uuid.New(), uuid.New()
	unlockA := o.lock(a)
	var second atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		unlock := o.lock(a)
		second.Store(true)
		unlock()
	}()
	unlockB := o.lock(b) // does not wait for a's holder
	unlockB()
	time.Sleep(10 * time.Millisecond) // give the second holder of a the chance to (wrongly) go ahead
	assert.False(t, second.Load(), "a's second holder waited")
	unlockA()
	<-done
	assert.True(t, second.Load())
	o.mu.Lock()
	assert.Empty(t, o.locks, "no lock kept for nobody")
	o.mu.Unlock()
}
