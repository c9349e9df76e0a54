package store_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/internal/wavepack"
	"github.com/ctcgw/gatewayd/store"
)

func readingFixture(t *testing.T) (*store.Store, *pgxpool.Pool, gatewayd.Gateway, gatewayd.Sensor) {
	t.Helper()
	ctx := context.Background()
	s, pool, _, g := withGateway(t, "R1")
	require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: time.Now(),
		Sensors: []gatewayd.SensorReport{report(7, "Seven")}}})))
	return s, pool, g, sensorsBySerial(t, s, g.ID)[7]
}

func TestReadingStatesOnlyMoveForward(t *testing.T) {
	ctx := context.Background()
	s, pool, g, sensor := readingFixture(t)
	r, of, err := s.CreateReading(ctx, uuid.New(), sensor.ID, gatewayd.TriggerManual)
	require.NoError(t, err)
	assert.Equal(t, int64(7), of.Serial)
	if assert.NotNil(t, of.ReadRateHz) {
		assert.Equal(t, 25600.0, *of.ReadRateHz) // what the sensor reported
	}
	assert.Equal(t, gatewayd.ReadingQueued, r.Status)
	assert.Equal(t, g.ID, r.GatewayID)

	now := time.Now().UTC().Truncate(time.Millisecond)
	running := r
	running.Status, running.StartedAt = gatewayd.ReadingRunning, &now
	n := 3
	done := running
	done.Status, done.CompletedAt, done.Samples, done.Summary = gatewayd.ReadingComplete, &now, &n, []byte(`{"x":{"samples":3}}`)
	wave := &gatewayd.Waveform{X: []float32{1, 2, 3}, Y: []float32{-1, 0.5, 0}, Z: []float32{0.25, 1e-3, 9}}
	require.NoError(t, errOf(s.SaveReadings(ctx, []gatewayd.ReadingUpdate{{Reading: done, Packed: packedOf(*wave)}})))
	// A late RUNNING (or QUEUED) never moves a final state back.
	require.NoError(t, errOf(s.SaveReadings(ctx, []gatewayd.ReadingUpdate{{Reading: running}, {Reading: r}})))
	got, err := s.GetReading(ctx, r.ID)
	require.NoError(t, err)
	assert.Equal(t, gatewayd.ReadingComplete, got.Status)
	assert.JSONEq(t, `{"x":{"samples":3}}`, string(got.Summary))
	w, err := s.GetWaveform(ctx, r.ID)
	require.NoError(t, err)
	assert.Equal(t, wave.X, w.X)
	assert.Equal(t, wave.Y, w.Y)
	assert.Equal(t, wave.Z, w.Z)
	var size int
	require.NoError(t, pool.QueryRow(ctx, `SELECT octet_length(data) FROM reading_samples WHERE reading_id = $1`, r.ID).Scan(&size))
	assert.LessOrEqual(t, size, 12*3+32, "at most 12 bytes per 3-axis sample plus a small constant")

	// The same for a scheduled reading, which is written by upsert (its
	// row is the runtime's, made on its first write): QUEUED never
	// overwrites RUNNING, and nothing moves a final state, nor is it
	// reported again.
	sched := gatewayd.Reading{ID: uuid.New(), SensorID: sensor.ID, GatewayID: g.ID, Trigger: gatewayd.TriggerScheduled,
		Status: gatewayd.ReadingQueued, RequestedAt: now}
	schedRunning := sched
	schedRunning.Status, schedRunning.StartedAt = gatewayd.ReadingRunning, &now
	require.NoError(t, errOf(s.SaveReadings(ctx, []gatewayd.ReadingUpdate{{Reading: sched, Serial: 7}})))
	require.NoError(t, errOf(s.SaveReadings(ctx, []gatewayd.ReadingUpdate{{Reading: schedRunning, Serial: 7}})))
	require.NoError(t, errOf(s.SaveReadings(ctx, []gatewayd.ReadingUpdate{{Reading: sched, Serial: 7}})))
	got, err = s.GetReading(ctx, sched.ID)
	require.NoError(t, err)
	assert.Equal(t, gatewayd.ReadingRunning, got.Status, "a late QUEUED does not undo RUNNING")
	schedDone := schedRunning
	schedDone.Status, schedDone.CompletedAt, schedDone.Samples, schedDone.Summary = gatewayd.ReadingComplete, &now, &n, []byte(`{"x":{"samples":3}}`)
	refs, err := s.SaveReadings(ctx, []gatewayd.ReadingUpdate{{Reading: schedDone, Serial: 7, Packed: packedOf(*wave)}})
	require.NoError(t, err)
	assert.Len(t, refs, 1, "the completion is reported")
	lateFail := schedRunning
	msg := "connection lost"
	lateFail.Status, lateFail.CompletedAt, lateFail.Error = gatewayd.ReadingFailed, &now, &msg
	for _, late := range []gatewayd.Reading{lateFail, schedRunning, sched} {
		refs, err = s.SaveReadings(ctx, []gatewayd.ReadingUpdate{{Reading: late, Serial: 7}})
		require.NoError(t, err)
		assert.Empty(t, refs, "a late %s is not reported", late.Status)
		got, err = s.GetReading(ctx, sched.ID)
		require.NoError(t, err)
		assert.Equal(t, gatewayd.ReadingComplete, got.Status, "a late %s does not move COMPLETE", late.Status)
		assert.Nil(t, got.Error)
	}

	// A reading the gateway pushed for a serial nobody knew inserts it.
	pushed := gatewayd.Reading{ID: uuid.New(), GatewayID: g.ID, Trigger: gatewayd.TriggerGateway, Status: gatewayd.ReadingComplete,
		RequestedAt: now, CompletedAt: &now}
	require.NoError(t, errOf(s.SaveReadings(ctx, []gatewayd.ReadingUpdate{{Reading: pushed, Serial: 99}})))
	got, err = s.GetReading(ctx, pushed.ID)
	require.NoError(t, err)
	assert.Equal(t, sensorsBySerial(t, s, g.ID)[99].ID, got.SensorID)
	// ... and of a deleted gateway is dropped, not an error.
	require.NoError(t, errOf(s.DeleteGateway(ctx, g.ID)))
	ghost := pushed
	ghost.ID = uuid.New()
	require.NoError(t, errOf(s.SaveReadings(ctx, []gatewayd.ReadingUpdate{{Reading: ghost, Serial: 100, Packed: packedOf(*wave)}})))
	_, err = s.GetReading(ctx, ghost.ID)
	assert.ErrorIs(t, err, gatewayd.ErrNotFound)
}

// A reading is only made for a sensor that exists and is not deleted.
func TestCreateReadingNeedsALiveSensor(t *testing.T) {
	ctx := context.Background()
	s, pool, g, sensor := readingFixture(t)
	_, _, err := s.CreateReading(ctx, uuid.New(), uuid.New(), gatewayd.TriggerManual)
	assert.ErrorIs(t, err, gatewayd.ErrNotFound, "unknown sensor")
	require.NoError(t, errOf(s.DeleteGateway(ctx, g.ID))) // and its sensors
	_, _, err = s.CreateReading(ctx, uuid.New(), sensor.ID, gatewayd.TriggerManual)
	assert.ErrorIs(t, err, gatewayd.ErrNotFound, "deleted sensor")
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM readings`).Scan(&n))
	assert.Zero(t, n, "nothing inserted")
}

func TestInterruptedReadingsAndRetention(t *testing.T) {
	ctx := context.Background()
	s, pool, _, sensor := readingFixture(t)
	a, _, err := s.CreateReading(ctx, uuid.New(), sensor.ID, gatewayd.TriggerManual)
	require.NoError(t, err)
	b, _, err := s.CreateReading(ctx, uuid.New(), sensor.ID, gatewayd.TriggerManual)
	require.NoError(t, err)
	now := time.Now()
	b.Status, b.StartedAt = gatewayd.ReadingRunning, &now
	require.NoError(t, errOf(s.SaveReadings(ctx, []gatewayd.ReadingUpdate{{Reading: b}})))
	refs, err := s.FailInterruptedReadings(ctx)
	require.NoError(t, err)
	require.Len(t, refs, 2)
	for _, ref := range refs { // what the metrics and the event stream are told
		assert.Equal(t, sensor.ID, ref.SensorID)
		assert.Equal(t, sensor.GatewayID, ref.GatewayID)
		assert.NotEqual(t, uuid.Nil, ref.FactoryID)
		assert.Equal(t, gatewayd.TriggerManual, ref.Trigger)
		assert.Equal(t, gatewayd.ReadingFailed, ref.Status)
	}
	for _, id := range []uuid.UUID{a.ID, b.ID} {
		got, err := s.GetReading(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, gatewayd.ReadingFailed, got.Status)
		assert.Equal(t, gatewayd.ReadingErrInterrupted, *got.Error)
	}

	var c gatewayd.Reading
	for range 3 { // three readings with samples, deleted in batches of one
		c, _, err = s.CreateReading(ctx, uuid.New(), sensor.ID, gatewayd.TriggerScheduled)
		require.NoError(t, err)
		c.Status, c.CompletedAt, c.Summary = gatewayd.ReadingComplete, &now, []byte(`{}`)
		require.NoError(t, errOf(s.SaveReadings(ctx, []gatewayd.ReadingUpdate{{Reading: c, Packed: packedOf(gatewayd.Waveform{X: []float32{1}, Y: []float32{2}, Z: []float32{3}})}})))
	}
	removed, err := s.DeleteSamplesBefore(ctx, time.Now().Add(-time.Hour), 10)
	require.NoError(t, err)
	assert.Equal(t, 0, removed, "young samples stay")
	removed, err = s.DeleteSamplesBefore(ctx, time.Now().Add(time.Minute), 1)
	require.NoError(t, err)
	assert.Equal(t, 3, removed, "every batch, not only the first")
	var left int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM reading_samples`).Scan(&left))
	assert.Zero(t, left, "samples gone")
	got, err := s.GetReading(ctx, c.ID)
	require.NoError(t, err)
	assert.Equal(t, gatewayd.ReadingComplete, got.Status, "the reading and its summary stay")
	assert.JSONEq(t, `{}`, string(got.Summary))
}

// packedOf packs w as the runtime hands samples to SaveReadings.
func packedOf(w gatewayd.Waveform) *gatewayd.PackedWaveform {
	return &gatewayd.PackedWaveform{Format: wavepack.FormatXORPlanes, Data: wavepack.Pack(w.X, w.Y, w.Z)}
}

func TestPackWaveformRoundTrip(t *testing.T) {
	w := gatewayd.Waveform{X: []float32{0, -1.5, 3.25e-7}, Y: []float32{1, 2, 3}, Z: []float32{-0, 1e30, -1e-30}}
	got, err := store.UnpackWaveform(wavepack.FormatXORPlanes, wavepack.Pack(w.X, w.Y, w.Z))
	require.NoError(t, err)
	assert.Equal(t, w.X, got.X)
	assert.Equal(t, w.Y, got.Y)
	assert.Equal(t, w.Z, got.Z)
	_, err = store.UnpackWaveform(wavepack.FormatRaw, make([]byte, 13))
	assert.Error(t, err)
	_, err = store.UnpackWaveform(wavepack.FormatXORPlanes, make([]byte, 13))
	assert.Error(t, err)
}

// TestStoredSamplesAreExactInEitherFormat: a reading of 8192 noisy samples
// per axis comes back with the very same float32 bits, whether it was
// packed (format 1, what gatewayd writes now, in less than 80 % of the raw
// size) or is a row written before migration 006 (format 0, raw float32).
func TestStoredSamplesAreExactInEitherFormat(t *testing.T) {
	ctx := context.Background()
	s, pool, _, sensor := readingFixture(t)
	const n = 8192
	wave := &gatewayd.Waveform{X: make([]float32, n), Y: make([]float32, n), Z: make([]float32, n)}
	state := uint64(1)
	noise := func() float64 { // ±0.005 g, as the simulator's
		state = state*6364136223846793005 + 1442695040888963407
		return 0.005 * (float64(state>>11)/(1<<53)*2 - 1)
	}
	for i := range n {
		ph := 2 * math.Pi * float64(i) / 512
		wave.X[i] = float32(0.5*math.Sin(ph) + noise())
		wave.Y[i] = float32(0.3*math.Sin(2*ph) + noise())
		wave.Z[i] = float32(1 + 0.2*math.Sin(ph/2) + noise())
	}
	wave.X[7], wave.Y[9], wave.Z[11] = float32(math.Copysign(0, -1)), math.SmallestNonzeroFloat32, -math.MaxFloat32

	complete := func() gatewayd.Reading {
		r, _, err := s.CreateReading(ctx, uuid.New(), sensor.ID, gatewayd.TriggerManual)
		require.NoError(t, err)
		now := time.Now()
		samples := n
		r.Status, r.CompletedAt, r.Samples, r.Summary = gatewayd.ReadingComplete, &now, &samples, []byte(`{}`)
		return r
	}
	same := func(id uuid.UUID) {
		t.Helper()
		got, err := s.GetWaveform(ctx, id)
		require.NoError(t, err)
		for a, pair := range [3][2][]float32{{wave.X, got.X}, {wave.Y, got.Y}, {wave.Z, got.Z}} {
			require.Len(t, pair[1], n)
			for i := range n {
				if math.Float32bits(pair[0][i]) != math.Float32bits(pair[1][i]) {
					t.Fatalf("axis %d sample %d: stored %v, read %v", a, i, pair[0][i], pair[1][i])
				}
			}
		}
	}

	packed := complete()
	require.NoError(t, errOf(s.SaveReadings(ctx, []gatewayd.ReadingUpdate{{Reading: packed, Packed: packedOf(*wave)}})))
	same(packed.ID)
	var size int
	var format int16
	require.NoError(t, pool.QueryRow(ctx, `SELECT octet_length(data), format FROM reading_samples WHERE reading_id = $1`,
		packed.ID).Scan(&size, &format))
	assert.Equal(t, wavepack.FormatXORPlanes, format)
	assert.Less(t, size, 12*n*80/100, "packed below 80 %% of the raw size")

	legacy := complete()
	require.NoError(t, errOf(s.SaveReadings(ctx, []gatewayd.ReadingUpdate{{Reading: legacy}})))
	_, err := pool.Exec(ctx, `INSERT INTO reading_samples (reading_id, data) VALUES ($1, $2)`, legacy.ID,
		wavepack.PackRaw(wave.X, wave.Y, wave.Z))
	require.NoError(t, err)
	same(legacy.ID)
}

// A reading left QUEUED or RUNNING past the cutoff is failed as
// abandoned; a newer one, and a finished one, are left alone. The id is
// the caller's.
func TestFailAbandonedReadings(t *testing.T) {
	ctx := context.Background()
	s, pool, _, sensor := readingFixture(t)
	ids := map[string]uuid.UUID{}
	for _, name := range []string{"old-queued", "old-running", "old-complete", "new-queued"} {
		id := uuid.New()
		r, _, err := s.CreateReading(ctx, id, sensor.ID, gatewayd.TriggerManual)
		require.NoError(t, err)
		require.Equal(t, id, r.ID, "the caller's id")
		ids[name] = id
	}
	_, err := pool.Exec(ctx, `UPDATE readings SET requested_at = now() - interval '2 hours' WHERE id = ANY($1)`,
		[]uuid.UUID{ids["old-queued"], ids["old-running"], ids["old-complete"]})
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `UPDATE readings SET status = 'RUNNING', started_at = now() WHERE id = $1`, ids["old-running"])
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `UPDATE readings SET status = 'COMPLETE', completed_at = now() WHERE id = $1`, ids["old-complete"])
	require.NoError(t, err)

	refs, err := s.FailAbandonedReadings(ctx, time.Now().Add(-time.Hour))
	require.NoError(t, err)
	require.Len(t, refs, 2)
	for _, ref := range refs {
		assert.Equal(t, gatewayd.ReadingFailed, ref.Status, "for its reading.failed event")
		assert.Equal(t, sensor.ID, ref.SensorID)
		assert.False(t, ref.CompletedAt.IsZero())
	}
	for name, want := range map[string]gatewayd.ReadingStatus{"old-queued": gatewayd.ReadingFailed,
		"old-running": gatewayd.ReadingFailed, "old-complete": gatewayd.ReadingComplete, "new-queued": gatewayd.ReadingQueued} {
		r, err := s.GetReading(ctx, ids[name])
		require.NoError(t, err)
		assert.Equal(t, want, r.Status, name)
		if want == gatewayd.ReadingFailed {
			require.NotNil(t, r.Error)
			assert.Equal(t, gatewayd.ReadingErrAbandoned, *r.Error)
			assert.NotNil(t, r.CompletedAt)
		}
	}
}

// A manual reading the API removed (its request failed after the actor
// had queued it) is not brought back by the actor's updates: the writer's
// upsert inserted it again, a reading its client was told had failed. A
// reading the actor made (scheduled, pushed) is still inserted by them.
func TestRemovedManualReadingStaysRemoved(t *testing.T) {
	ctx := context.Background()
	s, _, g, sensor := readingFixture(t)
	r, _, err := s.CreateReading(ctx, uuid.New(), sensor.ID, gatewayd.TriggerManual)
	require.NoError(t, err)
	require.NoError(t, s.DiscardReading(ctx, r.ID))
	now := time.Now()
	running := r
	running.Status, running.StartedAt = gatewayd.ReadingRunning, &now
	scheduled := gatewayd.Reading{ID: uuid.New(), SensorID: sensor.ID, GatewayID: g.ID, Trigger: gatewayd.TriggerScheduled,
		Status: gatewayd.ReadingQueued, RequestedAt: now}
	require.NoError(t, errOf(s.SaveReadings(ctx, []gatewayd.ReadingUpdate{{Reading: running}, {Reading: scheduled}})))
	_, err = s.GetReading(ctx, r.ID)
	assert.ErrorIs(t, err, gatewayd.ErrNotFound, "the removed manual reading stays removed")
	got, err := s.GetReading(ctx, scheduled.ID)
	require.NoError(t, err)
	assert.Equal(t, gatewayd.ReadingQueued, got.Status)
}

// The same while the removal is still uncommitted when the actor's update
// comes: the update waits for it and finds nothing. (A check that the row
// exists, made in the update's snapshot, saw the row, and the insert that
// followed the removal's commit brought it back.)
func TestManualReadingRemovedConcurrentlyStaysRemoved(t *testing.T) {
	ctx := context.Background()
	s, pool, _, sensor := readingFixture(t)
	r, _, err := s.CreateReading(ctx, uuid.New(), sensor.ID, gatewayd.TriggerManual)
	require.NoError(t, err)
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, `DELETE FROM readings WHERE id = $1`, r.ID)
	require.NoError(t, err)

	now := time.Now()
	running := r
	running.Status, running.StartedAt = gatewayd.ReadingRunning, &now
	saved := make(chan error, 1)
	go func() {
		_, err := s.SaveReadings(ctx, []gatewayd.ReadingUpdate{{Reading: running}})
		saved <- err
	}()
	require.Eventually(t, func() bool {
		var waiting int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting))
		return waiting > 0
	}, 10*time.Second, 5*time.Millisecond, "the update waits for the removal")
	require.NoError(t, tx.Commit(ctx))
	require.NoError(t, <-saved)
	_, err = s.GetReading(ctx, r.ID)
	assert.ErrorIs(t, err, gatewayd.ErrNotFound)
}

// DiscardReading removes only the reading it names, and only while it is
// QUEUED (it never ran): a reading that is running or final stays as it
// was, its samples too, and other queued readings stay.
func TestDiscardReadingRemovesOnlyAQueuedReading(t *testing.T) {
	ctx := context.Background()
	s, _, _, sensor := readingFixture(t)
	create := func() gatewayd.Reading {
		t.Helper()
		r, _, err := s.CreateReading(ctx, uuid.New(), sensor.ID, gatewayd.TriggerManual)
		require.NoError(t, err)
		return r
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	n := 3
	wave := gatewayd.Waveform{X: []float32{1, 2, 3}, Y: []float32{0, 0, 0}, Z: []float32{-1, -2, -3}}
	queued, otherQueued := create(), create()
	running := create()
	running.Status, running.StartedAt = gatewayd.ReadingRunning, &now
	complete := create()
	complete.Status, complete.StartedAt, complete.CompletedAt = gatewayd.ReadingComplete, &now, &now
	complete.Samples, complete.Summary = &n, []byte(`{"x":{"samples":3}}`)
	failed := create()
	failed.Status, failed.CompletedAt, failed.Error = gatewayd.ReadingFailed, &now, ptr(gatewayd.ReadingErrRefused)
	require.NoError(t, errOf(s.SaveReadings(ctx, []gatewayd.ReadingUpdate{
		{Reading: running}, {Reading: complete, Packed: packedOf(wave)}, {Reading: failed}})))
	stored := map[string]gatewayd.Reading{}
	for name, r := range map[string]gatewayd.Reading{"running": running, "complete": complete, "failed": failed,
		"another queued": otherQueued} {
		got, err := s.GetReading(ctx, r.ID)
		require.NoError(t, err, name)
		require.Equal(t, r.Status, got.Status, name)
		stored[name] = got
	}

	require.NoError(t, s.DiscardReading(ctx, queued.ID))
	_, err := s.GetReading(ctx, queued.ID)
	assert.ErrorIs(t, err, gatewayd.ErrNotFound, "a queued reading is removed")
	for name, want := range map[string]gatewayd.Reading{"running": running, "complete": complete, "failed": failed} {
		require.NoError(t, s.DiscardReading(ctx, want.ID), name)
	}
	for name, want := range stored {
		got, err := s.GetReading(ctx, want.ID)
		if assert.NoError(t, err, "%s: still there", name) {
			assert.Equal(t, want, got, "%s: unchanged", name)
		}
	}
	w, err := s.GetWaveform(ctx, complete.ID)
	require.NoError(t, err, "a complete reading keeps its samples")
	assert.Equal(t, wave.X, w.X)
}
