package actors

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// A schedule keeps its grid: the next reading is due an interval after the
// one that fired, however late the actor handled it; ticks already passed
// are skipped.
func TestNextDueKeepsTheGrid(t *testing.T) {
	t.Parallel()
	due := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		late time.Duration // how long after due the actor handles the tick
		want time.Duration // next due, after due
	}{
		{0, time.Minute},
		{250 * time.Millisecond, time.Minute},
		{59 * time.Second, time.Minute},
		{time.Minute + time.Second, 2 * time.Minute},
		{5*time.Minute + 30*time.Second, 6 * time.Minute},
		{3 * time.Minute, 4 * time.Minute}, // exactly on a passed tick: the next
	} {
		got := nextDue(due, time.Minute, due.Add(tc.late))
		assert.Equal(t, due.Add(tc.want), got, "handled %s late", tc.late)
		assert.True(t, got.After(due.Add(tc.late)), "always in the future")
	}
}
