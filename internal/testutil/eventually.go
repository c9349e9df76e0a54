package testutil

import (
	"fmt"
	"testing"
	"time"
)

// Eventually polls cond every 10 ms, on the test's own goroutine (so cond
// may use require), until it holds; past within the test fails with msg.
// testify's require.Eventually runs cond on a goroutine of its own, where
// a failed require inside it cannot stop the test.
func Eventually(t testing.TB, cond func() bool, within time.Duration, msg string, args ...any) {
	t.Helper()
	if !Poll(cond, within) {
		t.Fatalf("not within %v: %s", within, fmt.Sprintf(msg, args...))
	}
}

// Poll is Eventually for a test that reports a miss in its own words (or
// not at all): it polls cond every 10 ms, on the caller's goroutine, until
// it holds or within has passed, and says whether it held.
func Poll(cond func() bool, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}
