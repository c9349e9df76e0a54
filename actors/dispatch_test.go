package actors

import (
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

// waitGoroutines waits until at most n goroutines run. It polls on the
// test's goroutine: require.Eventually would add its own to the count.
func waitGoroutines(t *testing.T, n int, why string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d goroutines, want at most %d", why, runtime.NumGoroutine(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitIdle waits until n workers are idle.
func waitIdle(t *testing.T, w *workers, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for w.idleCount() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d idle workers, want %d", w.idleCount(), n)
		}
		time.Sleep(time.Millisecond)
	}
}
