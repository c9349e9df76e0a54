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
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, fmt.Sprintf(msg, args...))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
