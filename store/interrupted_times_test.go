package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
)

// (Found by an audit, helper 2, whose test this is.) API.md §8: readings a
// previous process left QUEUED or RUNNING are FAILED (interrupted) at
// startup; a reading's times are requested_at, started_at, completed_at,
// in that order (completed_at ≥ started_at ≥ requested_at: what
// gatewayd_reading_seconds observes is completed_at − requested_at).
//
// A RUNNING reading's started_at is stamped by gatewayd's clock; the
// failure stamps completed_at with the database's now(). With gatewayd's
// host a minute ahead of the database's, the interrupted reading ended a
// minute before it started, and one whose requested_at came from that
// clock (scheduled, pushed) a minute before it was asked for: a negative
// observation in gatewayd_reading_seconds. The restart
// (FailInterruptedReadings) and the sweep (FailAbandonedReadings) share
// the statement. Would catch: a final reading whose completed_at is
// before its own requested_at or started_at.
func TestInterruptedReadingNeverEndsBeforeItStarted(t *testing.T) {
	ctx := context.Background()
	s, pool, _, sensor := readingFixture(t)
	r, _, err := s.CreateReading(ctx, uuid.New(), sensor.ID, gatewayd.TriggerManual)
	require.NoError(t, err)
	ahead := time.Now().Add(time.Minute).UTC().Truncate(time.Millisecond) // gatewayd's clock
	running := r
	running.Status, running.RequestedAt, running.StartedAt = gatewayd.ReadingRunning, ahead, &ahead
	require.NoError(t, errOf(s.SaveReadings(ctx, []gatewayd.ReadingUpdate{{Reading: running}})))
	_, err = pool.Exec(ctx, `UPDATE readings SET requested_at = $2 WHERE id = $1`, r.ID, ahead) // a scheduled one's, from that clock
	require.NoError(t, err)

	refs, err := s.FailInterruptedReadings(ctx)
	require.NoError(t, err)
	require.Len(t, refs, 1)
	assert.False(t, refs[0].CompletedAt.Before(refs[0].RequestedAt), "observed %s in gatewayd_reading_seconds",
		refs[0].CompletedAt.Sub(refs[0].RequestedAt))
	got, err := s.GetReading(ctx, r.ID)
	require.NoError(t, err)
	assert.Equal(t, gatewayd.ReadingFailed, got.Status)
	if assert.NotNil(t, got.CompletedAt) && assert.NotNil(t, got.StartedAt) {
		assert.False(t, got.CompletedAt.Before(*got.StartedAt), "completed_at %s before started_at %s", got.CompletedAt, got.StartedAt)
	}
}
