package actors

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// A finished turn's goroutine waits for the next turn, and takes it.
func TestWorkersReuseAnIdleGoroutine(t *testing.T) {
	w := newWorkers(1, 4)
	defer w.close()
	done := make(chan struct{})
	w.Schedule(func() { close(done) })
	<-done
	waitIdle(t, w, 1)
	before := runtime.NumGoroutine()
	ran := make(chan int, 1)
	w.Schedule(func() { ran <- runtime.NumGoroutine() })
	assert.LessOrEqual(t, <-ran, before, "no goroutine started for the second turn")
	waitIdle(t, w, 1)
}

// A turn never waits for a busy one: with every worker stuck, a new turn
// still runs at once, on a goroutine of its own.
func TestWorkersNeverWaitForABusyTurn(t *testing.T) {
	w := newWorkers(1, 1)
	defer w.close()
	stuck := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		w.Schedule(func() { defer wg.Done(); <-stuck })
	}
	ran := make(chan struct{})
	w.Schedule(func() { close(ran) })
	select {
	case <-ran:
	case <-time.After(5 * time.Second):
		t.Fatal("a turn waited for stuck ones")
	}
	close(stuck)
	wg.Wait()
	waitIdle(t, w, 1)
}

// At most maxIdle workers stay after a burst; close ends them, and a turn
// scheduled after close still runs.
func TestWorkersKeepFewIdleAndEndOnClose(t *testing.T) {
	base := runtime.NumGoroutine()
	w := newWorkers(1, 3)
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		w.Schedule(func() { defer wg.Done(); <-release })
	}
	close(release)
	wg.Wait()
	waitGoroutines(t, base+3, "at most maxIdle stay")
	assert.Equal(t, 3, w.idleCount())
	w.close()
	waitGoroutines(t, base, "idle workers end on close")
	ran := make(chan struct{})
	w.Schedule(func() { close(ran) })
	<-ran
	waitGoroutines(t, base, "and that goroutine ends with its turn")
	assert.Zero(t, w.idleCount())
}

// idleCount is how many workers wait for a turn.
func (w *workers) idleCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.idle)
}

// waitGoroutines waits until at most n goroutines run.
func waitGoroutines(t *testing.T, n int, why string) {
	t.Helper()
	pollUntil(t, func() bool { return runtime.NumGoroutine() <= n }, func() string {
		return fmt.Sprintf("%s: %d goroutines, want at most %d", why, runtime.NumGoroutine(), n)
	})
}

// waitIdle waits until n workers are idle.
func waitIdle(t *testing.T, w *workers, n int) {
	t.Helper()
	pollUntil(t, func() bool { return w.idleCount() == n }, func() string {
		return fmt.Sprintf("%d idle workers, want %d", w.idleCount(), n)
	})
}

// pollUntil checks done every millisecond for 5 s, and fails the test
// with failure's words if it never holds. It polls on the test's own
// goroutine: require.Eventually would add one to the goroutines counted.
func pollUntil(t *testing.T, done func() bool, failure func() string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatal(failure())
		}
		time.Sleep(time.Millisecond)
	}
}
