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

// API.md §8: "samples older than [WAVEFORM_RETENTION] are deleted"; a
// reading exactly at the cutoff is not older: it stays; a microsecond
// later it goes. The reading and its summary stay either way.
// (Checked by an audit, helper 9, whose test this is.)
func TestRetentionAtTheCutoff(t *testing.T) {
	ctx := context.Background()
	s, pool, _, sensor := readingFixture(t)
	now := time.Now()
	r, _, err := s.CreateReading(ctx, uuid.New(), sensor.ID, gatewayd.TriggerScheduled)
	require.NoError(t, err)
	r.Status, r.CompletedAt, r.Summary = gatewayd.ReadingComplete, &now, []byte(`{"x":{"samples":1}}`)
	require.NoError(t, errOf(s.SaveReadings(ctx, []gatewayd.ReadingUpdate{{Reading: r,
		Packed: packedOf(gatewayd.Waveform{X: []float32{1}, Y: []float32{2}, Z: []float32{3}})}})))
	cutoff := time.Now().Add(-90 * 24 * time.Hour).Truncate(time.Microsecond)
	_, err = pool.Exec(ctx, `UPDATE reading_samples SET created_at = $2 WHERE reading_id = $1`, r.ID, cutoff)
	require.NoError(t, err)

	n, err := s.DeleteSamplesBefore(ctx, cutoff, 1000)
	require.NoError(t, err)
	assert.Zero(t, n, "stored exactly at the cutoff: not older, kept")
	_, err = s.GetWaveform(ctx, r.ID)
	require.NoError(t, err)

	n, err = s.DeleteSamplesBefore(ctx, cutoff.Add(time.Microsecond), 1000)
	require.NoError(t, err)
	assert.Equal(t, 1, n, "a microsecond older than the cutoff: deleted")
	_, err = s.GetWaveform(ctx, r.ID)
	assert.ErrorIs(t, err, gatewayd.ErrNotFound)
	got, err := s.GetReading(ctx, r.ID)
	require.NoError(t, err)
	assert.Equal(t, gatewayd.ReadingComplete, got.Status)
	assert.JSONEq(t, `{"x":{"samples":1}}`, string(got.Summary), "the summary stays")
}
