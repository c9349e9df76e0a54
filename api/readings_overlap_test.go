package api_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// (Found by an audit, helper 7, whose test this is.) API.md §8: "The gateway's actor runs one acquisition at
// a time (the sensor captures physically)". An operator reading a
// gateway's readings expects their [started_at, completed_at] spans not to
// overlap. completed_at is stamped when the processor has decoded and
// analysed the samples (actors/processor.go), not when they arrived, while
// the next reading is asked for as soon as they arrive: the next one's
// started_at comes before the previous one's completed_at, and the
// database shows both RUNNING meanwhile (for a scheduled sensor: two
// unfinished scheduled readings of one sensor).
// Would catch: completed_at stamped after the next acquisition began.
func TestBackToBackReadingsDoNotOverlap(t *testing.T) {
	e, _, _, sensors := readingEnv(t)
	sensor := sensors[10001]["id"].(string)
	var ids []string
	for range 3 {
		r := e.do("POST", "/api/sensors/"+sensor+"/readings", nil)
		require.Equal(t, 202, r.status, "%s", r.body)
		ids = append(ids, r.json(t)["id"].(string))
	}
	var got []map[string]any
	for _, id := range ids {
		got = append(got, e.waitReading(id))
	}
	for i := 1; i < len(got); i++ {
		require.Equal(t, "COMPLETE", got[i-1]["status"])
		require.Equal(t, "COMPLETE", got[i]["status"])
		done, err := time.Parse(time.RFC3339Nano, got[i-1]["completed_at"].(string))
		require.NoError(t, err)
		next, err := time.Parse(time.RFC3339Nano, got[i]["started_at"].(string))
		require.NoError(t, err)
		assert.False(t, done.After(next), "reading %d completed at %s, after reading %d started at %s (one acquisition at a time)",
			i-1, got[i-1]["completed_at"], i, got[i]["started_at"])
	}
}
