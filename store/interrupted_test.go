package store_test

// (Found by an audit, helper 12, whose test this is.) FailInterruptedReadings now fails only readings
// requested before the process's clock plus an hour.

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
)

// store/readings.go: FailInterruptedReadings "marks every reading a
// previous process left QUEUED or RUNNING as FAILED ("interrupted"); it
// runs before the runtime starts, so none of them can still be in
// progress" (and so it did before 5d5998f, with no time condition). Since
// it shares failUnfinished with the sweep, it compares requested_at (the
// database's now(), or the previous process's clock) with this process's
// clock plus one hour: a reading whose requested_at is later than that (a
// database or previous host whose clock runs more than an hour ahead of
// this one's) stays QUEUED for ever after a restart (the sweep, on the
// same clock, only fails it hours later), and GET shows it in progress.
func TestInterruptedReadingsAreAllFailedWhateverTheirTime(t *testing.T) {
	ctx := context.Background()
	s, pool, _, sensor := readingFixture(t)
	a, _, err := s.CreateReading(ctx, uuid.New(), sensor.ID, gatewayd.TriggerManual)
	require.NoError(t, err)
	// The database's clock (its now() set requested_at) two hours ahead
	// of gatewayd's host.
	_, err = pool.Exec(ctx, `UPDATE readings SET requested_at = now() + interval '2 hours' WHERE id = $1`, a.ID)
	require.NoError(t, err)
	refs, err := s.FailInterruptedReadings(ctx)
	require.NoError(t, err)
	assert.Len(t, refs, 1, "the one unfinished reading is failed and announced")
	got, err := s.GetReading(ctx, a.ID)
	require.NoError(t, err)
	assert.Equal(t, gatewayd.ReadingFailed, got.Status, "no process can finish it")
}
