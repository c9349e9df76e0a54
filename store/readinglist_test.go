package store_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/store"
)

// readingsAt stores a scheduled reading of sensor per time, in status,
// and returns their ids in the order given.
func readingsAt(t *testing.T, s *store.Store, g gatewayd.Gateway, sensor gatewayd.Sensor, status gatewayd.ReadingStatus,
	at ...time.Time) []uuid.UUID {
	t.Helper()
	var us []gatewayd.ReadingUpdate
	var ids []uuid.UUID
	for _, when := range at {
		r := gatewayd.Reading{ID: uuid.New(), SensorID: sensor.ID, GatewayID: g.ID, Trigger: gatewayd.TriggerScheduled,
			Status: status, RequestedAt: when}
		if status.Done() {
			r.CompletedAt = &when
		}
		us = append(us, gatewayd.ReadingUpdate{Reading: r, Serial: sensor.Serial})
		ids = append(ids, r.ID)
	}
	require.NoError(t, errOf(s.SaveReadings(context.Background(), us)))
	return ids
}

func readingIDs(rs []gatewayd.Reading) []uuid.UUID {
	out := make([]uuid.UUID, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

// API.md §8: GET /api/sensors/:id/readings is paged, newest first
// (readings asked for at the same moment: by id, descending, so that
// paging neither repeats nor skips one).
func TestReadingListIsNewestFirst(t *testing.T) {
	ctx := context.Background()
	s, _, g, sensor := readingFixture(t)
	t0 := time.Now().UTC().Truncate(time.Millisecond).Add(-time.Hour)
	old := readingsAt(t, s, g, sensor, gatewayd.ReadingComplete, t0, t0.Add(time.Minute))
	tied := readingsAt(t, s, g, sensor, gatewayd.ReadingComplete, t0.Add(2*time.Minute), t0.Add(2*time.Minute), t0.Add(2*time.Minute))
	slices.SortFunc(tied, func(a, b uuid.UUID) int { return strings.Compare(b.String(), a.String()) })
	want := append(tied, old[1], old[0])

	list, total, err := s.ListReadings(ctx, sensor.ID, store.ReadingFilter{}, store.Page{Limit: 10})
	require.NoError(t, err)
	assert.Equal(t, 5, total)
	assert.Equal(t, want, readingIDs(list))
	var paged []uuid.UUID
	for off := 0; off < 5; off += 2 {
		page, _, err := s.ListReadings(ctx, sensor.ID, store.ReadingFilter{}, store.Page{Limit: 2, Offset: off})
		require.NoError(t, err)
		paged = append(paged, readingIDs(page)...)
	}
	assert.Equal(t, want, paged, "page by page")
}

// API.md §8: since and until select by requested_at, since inclusive
// and until exclusive (ReadingFilter), and the total counts what they
// select.
func TestReadingListTimeWindow(t *testing.T) {
	ctx := context.Background()
	s, _, g, sensor := readingFixture(t)
	t0 := time.Now().UTC().Truncate(time.Millisecond).Add(-time.Hour)
	ids := readingsAt(t, s, g, sensor, gatewayd.ReadingComplete, t0, t0.Add(time.Minute), t0.Add(2*time.Minute), t0.Add(3*time.Minute))
	since, until := t0.Add(time.Minute), t0.Add(3*time.Minute)
	list, total, err := s.ListReadings(ctx, sensor.ID, store.ReadingFilter{Since: &since, Until: &until}, store.Page{Limit: 10})
	require.NoError(t, err)
	assert.Equal(t, 2, total)
	assert.Equal(t, []uuid.UUID{ids[2], ids[1]}, readingIDs(list), "since inclusive, until exclusive")
	_, total, err = s.ListReadings(ctx, sensor.ID, store.ReadingFilter{Since: &since}, store.Page{Limit: 1})
	require.NoError(t, err)
	assert.Equal(t, 3, total)
	_, total, err = s.ListReadings(ctx, sensor.ID, store.ReadingFilter{Until: &since}, store.Page{Limit: 1})
	require.NoError(t, err)
	assert.Equal(t, 1, total)
}

// API.md §8: the status filter keeps the readings in that status, and
// the total counts those.
func TestReadingListStatusFilter(t *testing.T) {
	ctx := context.Background()
	s, _, g, sensor := readingFixture(t)
	t0 := time.Now().UTC().Truncate(time.Millisecond).Add(-time.Hour)
	done := readingsAt(t, s, g, sensor, gatewayd.ReadingComplete, t0, t0.Add(time.Minute))
	failed := readingsAt(t, s, g, sensor, gatewayd.ReadingFailed, t0.Add(2*time.Minute))
	list, total, err := s.ListReadings(ctx, sensor.ID, store.ReadingFilter{Status: gatewayd.ReadingFailed}, store.Page{Limit: 10})
	require.NoError(t, err)
	assert.Equal(t, 1, total)
	assert.Equal(t, failed, readingIDs(list))
	list, total, err = s.ListReadings(ctx, sensor.ID, store.ReadingFilter{Status: gatewayd.ReadingComplete}, store.Page{Limit: 1})
	require.NoError(t, err)
	assert.Equal(t, 2, total)
	assert.Equal(t, []uuid.UUID{done[1]}, readingIDs(list))
	_, total, err = s.ListReadings(ctx, sensor.ID, store.ReadingFilter{Status: gatewayd.ReadingRunning}, store.Page{Limit: 10})
	require.NoError(t, err)
	assert.Zero(t, total)
}

// SaveReadings keeps what an update leaves unknown (nil): a completion or
// failure that does not repeat started_at or the sample rate leaves the
// stored ones.
func TestReadingUpdateKeepsWhatItLeavesUnknown(t *testing.T) {
	ctx := context.Background()
	s, _, g, sensor := readingFixture(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	rate := 25600.0
	for _, final := range []gatewayd.ReadingStatus{gatewayd.ReadingComplete, gatewayd.ReadingFailed} {
		r := gatewayd.Reading{ID: uuid.New(), SensorID: sensor.ID, GatewayID: g.ID, Trigger: gatewayd.TriggerScheduled,
			Status: gatewayd.ReadingRunning, RequestedAt: now, StartedAt: &now, SampleRateHz: &rate}
		require.NoError(t, errOf(s.SaveReadings(ctx, []gatewayd.ReadingUpdate{{Reading: r, Serial: sensor.Serial}})))
		end := gatewayd.Reading{ID: r.ID, SensorID: sensor.ID, GatewayID: g.ID, Trigger: gatewayd.TriggerScheduled,
			Status: final, RequestedAt: now, CompletedAt: &now}
		refs, err := s.SaveReadings(ctx, []gatewayd.ReadingUpdate{{Reading: end, Serial: sensor.Serial}})
		require.NoError(t, err)
		require.Len(t, refs, 1)
		got, err := s.GetReading(ctx, r.ID)
		require.NoError(t, err)
		assert.Equal(t, final, got.Status)
		if assert.NotNil(t, got.StartedAt, "%s: started_at kept", final) {
			assert.True(t, now.Equal(*got.StartedAt))
		}
		if assert.NotNil(t, got.SampleRateHz, "%s: sample rate kept", final) {
			assert.Equal(t, rate, *got.SampleRateHz)
		}
	}
}

// Samples are stored for a COMPLETE reading only: a FAILED one has no
// waveform (GET .../waveform 404), whatever came with it.
func TestAFailedReadingStoresNoSamples(t *testing.T) {
	ctx := context.Background()
	s, pool, g, sensor := readingFixture(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	msg := "malformed waveform"
	r := gatewayd.Reading{ID: uuid.New(), SensorID: sensor.ID, GatewayID: g.ID, Trigger: gatewayd.TriggerGateway,
		Status: gatewayd.ReadingFailed, Error: &msg, RequestedAt: now, CompletedAt: &now}
	wave := gatewayd.Waveform{X: []float32{1, 2}, Y: []float32{3, 4}, Z: []float32{5, 6}}
	require.NoError(t, errOf(s.SaveReadings(ctx, []gatewayd.ReadingUpdate{{Reading: r, Serial: sensor.Serial, Packed: packedOf(wave)}})))
	_, err := s.GetWaveform(ctx, r.ID)
	assert.ErrorIs(t, err, gatewayd.ErrNotFound)
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM reading_samples`).Scan(&n))
	assert.Zero(t, n)
}

// API.md §8: GET /api/readings/:id/waveform answers the reading's
// sample_rate_hz with its samples.
func TestWaveformCarriesTheSampleRate(t *testing.T) {
	ctx := context.Background()
	s, _, g, sensor := readingFixture(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	rate, n := 12800.0, 2
	r := gatewayd.Reading{ID: uuid.New(), SensorID: sensor.ID, GatewayID: g.ID, Trigger: gatewayd.TriggerGateway,
		Status: gatewayd.ReadingComplete, RequestedAt: now, CompletedAt: &now, SampleRateHz: &rate, Samples: &n}
	wave := gatewayd.Waveform{X: []float32{1, 2}, Y: []float32{3, 4}, Z: []float32{5, 6}}
	require.NoError(t, errOf(s.SaveReadings(ctx, []gatewayd.ReadingUpdate{{Reading: r, Serial: sensor.Serial, Packed: packedOf(wave)}})))
	w, err := s.GetWaveform(ctx, r.ID)
	require.NoError(t, err)
	assert.Equal(t, rate, w.SampleRateHz)
	assert.Equal(t, wave.X, w.X)
}
