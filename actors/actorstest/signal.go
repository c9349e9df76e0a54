package actorstest

import (
	"sync"
	"testing"
	"time"
)

// Signal carries values from a hook in the code under test to the test
// (riverqueue/river's testsignal): Send never blocks the code; Wait takes
// the first value that matches, sent before or after the call, and leaves
// the others for later Waits.
type Signal[T any] struct {
	mu     sync.Mutex
	values []T
	more   chan struct{} // a value arrived
}

// NewSignal returns an armed signal.
func NewSignal[T any]() *Signal[T] { return &Signal[T]{more: make(chan struct{}, 1)} }

// Send records v without blocking.
func (s *Signal[T]) Send(v T) {
	s.mu.Lock()
	s.values = append(s.values, v)
	s.mu.Unlock()
	select {
	case s.more <- struct{}{}:
	default:
	}
}

// WaitTimeout bounds every Wait.
const WaitTimeout = 10 * time.Second

// Wait returns (and consumes) the first value for which match is true.
func (s *Signal[T]) Wait(t testing.TB, match func(T) bool) T {
	t.Helper()
	timer := time.NewTimer(WaitTimeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		for i, v := range s.values {
			if match(v) {
				s.values = append(s.values[:i], s.values[i+1:]...)
				s.mu.Unlock()
				return v
			}
		}
		s.mu.Unlock()
		select {
		case <-s.more:
		case <-timer.C:
			var zero T
			t.Fatalf("no matching signal within %s", WaitTimeout)
			return zero
		}
	}
}
