package actors

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// While the dials are crowded the sensor writes wait, for at most
// maxDataHolds intervals; the crowd's end lets them through at the next
// check.
func TestWriterHoldsDataWhileDialsCrowd(t *testing.T) {
	t.Parallel()
	start := time.Unix(1_000_000, 0)
	crowded := false
	w := &writer{dataEvery: time.Second, lastFlush: start, crowded: func() bool { return crowded }}
	at := start
	tick := func() bool {
		at = at.Add(time.Second / dataChecks)
		due := w.dataDue(at)
		if due {
			w.lastFlush = at
		}
		return due
	}

	// Quiet: once per interval.
	for i := 1; i < dataChecks; i++ {
		assert.False(t, tick(), "check %d of the first interval", i)
	}
	assert.True(t, tick(), "an interval later: write")

	crowded = true
	held := 0
	for !tick() {
		held++
		require.Less(t, held, 100, "a crowd held the write for good")
	}
	assert.Equal(t, maxDataHolds*dataChecks, held, "checks held")
	assert.False(t, tick(), "still crowded: a new hold")
	crowded = false
	assert.True(t, tick(), "the crowd is gone: write at once, not at the next interval")
	assert.False(t, tick(), "and then once per interval again")
}

// flakySaves fails its first SaveReadings and copies what it stores.
type flakySaves struct {
	fixedSource
	mu     sync.Mutex
	failed bool
	stored map[uuid.UUID][]byte
}

func (s *flakySaves) SaveReadings(_ context.Context, us []gatewayd.ReadingUpdate) ([]gatewayd.ReadingRef, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.failed {
		s.failed = true
		return nil, errors.New("database unavailable")
	}
	for _, u := range us {
		s.stored[u.Reading.ID] = bytes.Clone(u.Packed.Data)
	}
	return nil, nil
}

// A reading's packed samples go back to the pool only once stored: a
// reading whose write failed keeps its bytes, however many buffers other
// readings take from the pool meanwhile, and they are stored unchanged.
func TestWriterRecyclesPackedSamplesOnlyOnceStored(t *testing.T) {
	t.Parallel()
	src := &flakySaves{stored: map[uuid.UUID][]byte{}}
	w := newWriter(src, nopObserver{}, func() bool { return false }, time.Hour, time.Hour, time.Hour, zerolog.Nop())
	w.intake = newIntake(1 << 30)
	t.Cleanup(w.close)

	data := bytes.Repeat([]byte{0xAA}, 1000)
	id := uuid.New()
	w.reading(gatewayd.ReadingUpdate{Reading: gatewayd.Reading{ID: id, Status: gatewayd.ReadingComplete},
		Packed: &gatewayd.PackedWaveform{Format: 1, Data: data}})
	w.flushReadings() // fails: requeued
	for range 8 {     // other readings packing meanwhile
		b := w.packs.get()
		assert.NotSame(t, unsafe.SliceData(data), unsafe.SliceData(b), "a buffer given back before it was stored")
		w.packs.put(append(b, bytes.Repeat([]byte{0xBB}, 1000)...))
	}
	w.flushReadings()
	src.mu.Lock()
	defer src.mu.Unlock()
	assert.Equal(t, bytes.Repeat([]byte{0xAA}, 1000), src.stored[id])
}

// pickySource refuses, as PostgreSQL refuses a NUL, any statement with a
// row it cannot store, and keeps what it stores.
type pickySource struct {
	fixedSource
	mu          sync.Mutex
	statements  int
	readings    map[uuid.UUID]gatewayd.Reading
	discoveries map[uuid.UUID]gatewayd.Discovery
}

func (s *pickySource) SaveReadings(_ context.Context, us []gatewayd.ReadingUpdate) ([]gatewayd.ReadingRef, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.statements++
	for _, u := range us {
		if u.Reading.Error != nil && strings.Contains(*u.Reading.Error, "\x00") {
			return nil, fmt.Errorf("save readings: %w: invalid byte sequence", gatewayd.ErrInvalidInput)
		}
	}
	for _, u := range us {
		s.readings[u.Reading.ID] = u.Reading
	}
	return nil, nil
}

func (s *pickySource) MergeDiscoveries(_ context.Context, ds []gatewayd.Discovery) ([]gatewayd.SensorRef, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range ds {
		if d.Sensors[0].Name == "\x00" {
			return nil, fmt.Errorf("merge discoveries: %w: invalid byte sequence", gatewayd.ErrInvalidInput)
		}
	}
	for _, d := range ds {
		s.discoveries[d.GatewayID] = d
	}
	return nil, nil
}

// A row the database refuses is split out of its statement: every other
// row is stored in the same flush; a reading is then stored as FAILED
// without what was refused, a discovery is dropped; nothing is retried
// for ever.
func TestWriterSplitsOutARowTheDatabaseRefuses(t *testing.T) {
	t.Parallel()
	src := &pickySource{readings: map[uuid.UUID]gatewayd.Reading{}, discoveries: map[uuid.UUID]gatewayd.Discovery{}}
	w := newWriter(src, nopObserver{}, func() bool { return false }, time.Hour, time.Hour, time.Hour, zerolog.Nop())
	w.intake = newIntake(1 << 30)
	t.Cleanup(w.close)

	bad := "refused\x00"
	var ids []uuid.UUID
	const rows = readingChunk - 1 // a full chunk would kick the writer's own flush, beside the test's
	for i := range rows {
		u := gatewayd.ReadingUpdate{Reading: gatewayd.Reading{ID: uuid.New(), Status: gatewayd.ReadingComplete},
			Packed: &gatewayd.PackedWaveform{Format: 1, Data: []byte{1, 2, 3}}}
		if i == 7 {
			u.Reading.Status, u.Reading.Error = gatewayd.ReadingFailed, &bad
		}
		ids = append(ids, u.Reading.ID)
		w.reading(u)
	}
	stored := func() (map[uuid.UUID]gatewayd.Reading, int) {
		src.mu.Lock()
		defer src.mu.Unlock()
		return maps.Clone(src.readings), src.statements
	}
	w.flushReadings()
	got, _ := stored()
	assert.Len(t, got, rows-1, "all but the refused row, in the first flush")
	assert.NotContains(t, got, ids[7])
	w.flushReadings()
	got, statements := stored()
	require.Contains(t, got, ids[7], "salvaged in the next flush")
	r := got[ids[7]]
	assert.Equal(t, gatewayd.ReadingFailed, r.Status)
	assert.Equal(t, errNotStorable, *r.Error)
	assert.NotNil(t, r.CompletedAt)
	w.flushReadings()
	_, after := stored()
	assert.Equal(t, statements, after, "nothing left to write")
	w.intake.mu.Lock()
	assert.Zero(t, w.intake.bytes, "the intake counts nothing that is not pending")
	w.intake.mu.Unlock()

	good, poisoned := uuid.New(), uuid.New()
	w.discovered(gatewayd.Discovery{GatewayID: poisoned, Sensors: []gatewayd.SensorReport{{Serial: 1, Name: "\x00"}}})
	w.discovered(gatewayd.Discovery{GatewayID: good, Sensors: []gatewayd.SensorReport{{Serial: 1, Name: "ok"}}})
	w.flushData()
	w.mu.Lock()
	assert.Empty(t, w.discoveries, "the refused discovery is dropped, not requeued")
	w.mu.Unlock()
	src.mu.Lock()
	ds := maps.Clone(src.discoveries)
	src.mu.Unlock()
	assert.Contains(t, ds, good)
	assert.NotContains(t, ds, poisoned)
}

// A sighting never replaces a temperature waiting to be written; a
// temperature always replaces a sighting; otherwise the newer one wins.
func TestWriterKeepsTemperaturesOverSightings(t *testing.T) {
	t.Parallel()
	w := &writer{temperatures: map[sensorKey]gatewayd.Temperature{}, tempSerials: newFleetCounts(pendingTemps)}
	gw, at := uuid.New(), time.Unix(1_000_000, 0)
	k := sensorKey{gw, 1}
	w.temperature(gatewayd.Temperature{GatewayID: gw, Serial: 1, Celsius: 20, At: at})
	w.temperature(gatewayd.Temperature{GatewayID: gw, Serial: 1, At: at.Add(time.Second), Sighting: true})
	assert.Equal(t, 20.0, w.temperatures[k].Celsius, "a later sighting keeps the temperature")
	assert.False(t, w.temperatures[k].Sighting)

	k2 := sensorKey{gw, 2}
	w.temperature(gatewayd.Temperature{GatewayID: gw, Serial: 2, At: at.Add(time.Second), Sighting: true})
	w.temperature(gatewayd.Temperature{GatewayID: gw, Serial: 2, Celsius: 21, At: at})
	assert.False(t, w.temperatures[k2].Sighting, "a temperature replaces a sighting, even an older one")
	w.temperature(gatewayd.Temperature{GatewayID: gw, Serial: 2, Celsius: 19, At: at.Add(-time.Second)})
	assert.Equal(t, 21.0, w.temperatures[k2].Celsius, "an older temperature does not replace a newer one")
	w.temperature(gatewayd.Temperature{GatewayID: gw, Serial: 2, Celsius: 22, At: at.Add(time.Minute)})
	assert.Equal(t, 22.0, w.temperatures[k2].Celsius)
}

// The discoveries waiting: a newer list replaces a gateway's older one
// (its share with it), an older one is ignored, and past listFloor the
// lists share maxListBytes: one that does not fit is not kept and the
// gateway's earlier one stays, while a small list always is.
func TestWriterSharesRoomForLargeSensorLists(t *testing.T) {
	t.Parallel()
	w := &writer{discoveries: map[uuid.UUID]gatewayd.Discovery{}, listShare: maxListBytes}
	at := time.Unix(1_000_000, 0)
	list := func(id uuid.UUID, n int, at time.Time) gatewayd.Discovery {
		d := gatewayd.Discovery{GatewayID: id, At: at, Sensors: make([]gatewayd.SensorReport, n)}
		for i := range d.Sensors {
			d.Sensors[i] = gatewayd.SensorReport{Serial: int64(i), Name: strings.Repeat("n", 1000)}
		}
		return d
	}
	// ~1 MiB each: the share holds 30 of them.
	large := 1 << 20 / (1000 + int(unsafe.Sizeof(gatewayd.SensorReport{})))
	perLarge := discoverySize(list(uuid.Nil, large, at))
	fits := int(maxListBytes / perLarge)
	ids := make([]uuid.UUID, fits+1)
	for i := range ids {
		ids[i] = uuid.New()
	}
	for _, id := range ids[:fits] {
		w.discovered(list(id, large, at))
	}
	assert.Equal(t, int64(fits)*perLarge, w.listBytes)
	assert.Zero(t, w.droppedLists)

	w.discovered(list(ids[fits], large, at))
	assert.NotContains(t, w.discoveries, ids[fits], "a large list past the share is not kept")
	assert.Equal(t, 1, w.droppedLists)

	// A newer list of a gateway in the share takes its old one's room.
	w.discovered(list(ids[0], large, at.Add(time.Second)))
	assert.Equal(t, at.Add(time.Second), w.discoveries[ids[0]].At)
	assert.Equal(t, int64(fits)*perLarge, w.listBytes)
	// An older one is ignored.
	w.discovered(list(ids[0], 1, at))
	assert.Equal(t, at.Add(time.Second), w.discoveries[ids[0]].At)
	// Small lists are kept, share or no share, and give back a large
	// list's room.
	w.discovered(list(ids[1], 1, at.Add(time.Second)))
	assert.Len(t, w.discoveries[ids[1]].Sensors, 1)
	assert.Equal(t, int64(fits-1)*perLarge, w.listBytes)
	small := uuid.New()
	w.discovered(list(small, 60, at))
	assert.Contains(t, w.discoveries, small, "a list within the floor waits whatever the share holds")
	// A gateway's newer large list that does not fit leaves its older
	// one waiting.
	w.discovered(list(ids[fits], large, at))
	assert.Contains(t, w.discoveries, ids[fits])
	w.discovered(list(ids[fits], large+large, at.Add(time.Second)))
	assert.Equal(t, at, w.discoveries[ids[fits]].At, "the earlier list stays when the newer does not fit")
	assert.Equal(t, 2, w.droppedLists)
	assert.Equal(t, int64(fits)*perLarge, w.listBytes)
}

// Each gateway's first floor entries are its own; past them, the
// fleet's share: a full share refuses a new entry of a gateway past its
// floor, never one within it, and no gateway passes its limit.
func TestFleetCountsSharePastTheFloor(t *testing.T) {
	t.Parallel()
	c := newFleetCounts(fleetBound{floor: 4, limit: 10, shared: 12})
	hostile := []uuid.UUID{uuid.New(), uuid.New()}
	for _, id := range hostile {
		for range 4 + 6 {
			require.True(t, c.add(id))
		}
		assert.False(t, c.add(id), "the gateway's limit")
	}
	assert.Equal(t, 12, c.inShare)
	third := uuid.New()
	for range 4 {
		require.True(t, c.add(third), "within its floor whatever the share holds")
	}
	assert.False(t, c.add(third), "past its floor with the share full")
	c.reset()
	assert.True(t, c.add(third))
	assert.Zero(t, c.inShare)
}

// A fleet of gateways naming new serials: past their floors they share
// pendingTemps.shared, and an honest gateway's few serials still wait.
func TestWriterBoundsAFleetsNewSerials(t *testing.T) {
	t.Parallel()
	w := &writer{temperatures: map[sensorKey]gatewayd.Temperature{}, tempSerials: newFleetCounts(pendingTemps), log: zerolog.Nop()}
	at := time.Unix(1_000_000, 0)
	fleet := 2 * pendingTemps.shared / (maxPendingSerials - pendingTemps.floor)
	for range fleet {
		gw := uuid.New()
		for serial := range int64(maxPendingSerials) {
			w.temperature(gatewayd.Temperature{GatewayID: gw, Serial: serial, Celsius: 20, At: at})
		}
	}
	most := fleet*pendingTemps.floor + pendingTemps.shared
	assert.Equal(t, most, len(w.temperatures), "%d gateways naming %d serials each", fleet, maxPendingSerials)
	honest := uuid.New()
	for serial := range int64(20) {
		w.temperature(gatewayd.Temperature{GatewayID: honest, Serial: serial, Celsius: 21, At: at})
	}
	assert.Equal(t, most+20, len(w.temperatures), "an honest gateway's serials wait")
}

// stalledSaves is a database that never answers: each statement waits
// for its context.
type stalledSaves struct{ fixedSource }

func (stalledSaves) SaveReadings(ctx context.Context, _ []gatewayd.ReadingUpdate) ([]gatewayd.ReadingRef, error) {
	<-ctx.Done()
	return nil, fmt.Errorf("%w: %v", gatewayd.ErrUnavailable, ctx.Err())
}

// A shutdown that runs out of time gives up on a stalled database at
// once, instead of after the statements' own timeouts (30 s), so the
// process exits within SHUTDOWN_TIMEOUT.
func TestWriterGivesUpOnAStalledDatabase(t *testing.T) {
	t.Parallel()
	w := newWriter(stalledSaves{}, nopObserver{}, func() bool { return false }, time.Hour, time.Hour, time.Hour, zerolog.Nop())
	w.intake = newIntake(1 << 30)
	w.reading(gatewayd.ReadingUpdate{Reading: gatewayd.Reading{ID: uuid.New(), Status: gatewayd.ReadingRunning}})
	closed := make(chan struct{})
	go func() { w.close(); close(closed) }() // its last flush waits for the database
	select {
	case <-closed:
		t.Fatal("the last flush did not wait for the stalled database")
	case <-time.After(100 * time.Millisecond):
	}
	w.giveUp()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("still waiting for the database after giving up")
	}
}

// orderSource records which kind of sensor write came when.
type orderSource struct {
	fixedSource
	mu    sync.Mutex
	calls []string
}

func (s *orderSource) MergeDiscoveries(context.Context, []gatewayd.Discovery) ([]gatewayd.SensorRef, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, "discoveries")
	return nil, nil
}

func (s *orderSource) RecordTemperatures(context.Context, []gatewayd.Temperature) ([]gatewayd.SensorRef, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, "temperatures")
	return nil, nil
}

// Temperatures are written before discoveries: a sensor first seen in a
// temperature before a discovery that does not list it must exist when
// the discovery disconnects what it does not list. Written after, it was
// inserted connected and stayed so until the next discovery.
func TestWriterStoresTemperaturesBeforeDiscoveries(t *testing.T) {
	t.Parallel()
	src := &orderSource{}
	w := newWriter(src, nopObserver{}, func() bool { return false }, time.Hour, time.Hour, time.Hour, zerolog.Nop())
	t.Cleanup(w.close)
	gw, at := uuid.New(), time.Now()
	w.temperature(gatewayd.Temperature{GatewayID: gw, Serial: 990, Celsius: 20, At: at})
	w.discovered(gatewayd.Discovery{GatewayID: gw, At: at.Add(time.Millisecond)})
	w.flushData()
	src.mu.Lock()
	defer src.mu.Unlock()
	assert.Equal(t, []string{"temperatures", "discoveries"}, src.calls)
}

// downSaves is a database that refuses every statement at once, and
// remembers when each came.
type downSaves struct {
	fixedSource
	mu    sync.Mutex
	calls []time.Time
}

func (s *downSaves) SaveReadings(context.Context, []gatewayd.ReadingUpdate) ([]gatewayd.ReadingRef, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, time.Now())
	return nil, fmt.Errorf("%w: connection refused", gatewayd.ErrUnavailable)
}

func (s *downSaves) times() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// While the database refuses the reading writes, the writer waits longer
// after each failure, and says so once per failLogEvery. A chunk of
// samples put back after a failure kicked the writer again at once: an
// outage became a loop of ~2,000 failing dials a second, each with its
// warn line (audit, 2026-12-06).
func TestWriterWaitsLongerAfterEachFailedWrite(t *testing.T) {
	t.Parallel()
	src := &downSaves{}
	var logs testutil.SyncBuffer
	const every = 20 * time.Millisecond
	w := newWriter(src, nopObserver{}, func() bool { return false }, time.Hour, time.Hour, every, zerolog.New(&logs))
	w.intake = newIntake(1 << 30)
	closeWriter := sync.OnceFunc(w.close)
	t.Cleanup(closeWriter)
	// A chunk's worth of readings with samples: enough to kick.
	for range readingChunk {
		w.reading(gatewayd.ReadingUpdate{Reading: gatewayd.Reading{ID: uuid.New(), Status: gatewayd.ReadingComplete},
			Packed: &gatewayd.PackedWaveform{Format: 1, Data: make([]byte, 100)}})
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(src.times()) < 6 {
		require.True(t, time.Now().Before(deadline), "%d writes tried", len(src.times()))
		time.Sleep(10 * time.Millisecond)
	}
	calls := src.times()
	for i := 1; i < 6; i++ {
		// readingEvery << i after the i-th failure (first failure at i=1),
		// less a tick of the ticker's phase.
		assert.GreaterOrEqual(t, calls[i].Sub(calls[i-1]), every<<i-every, "wait after failure %d", i)
	}
	lines := strings.Count(logs.String(), "batched write failed")
	assert.Equal(t, 1, lines, "one line per %v:\n%s", failLogEvery, logs.String())

	closeWriter()
	assert.Contains(t, logs.String(), `"readings":32,"last_seen_at":0,"discoveries":0,"temperatures":0,"message":"shutdown: writes the database did not take are lost"`)
}

// stalledSeen is a database that takes statements and never answers:
// MarkSeen returns only when its context ends, and says it started.
type stalledSeen struct {
	fixedSource
	started chan struct{}
}

func (s *stalledSeen) MarkSeen(ctx context.Context, _ map[uuid.UUID]time.Time) error {
	select {
	case s.started <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return fmt.Errorf("%w: %w", gatewayd.ErrUnavailable, ctx.Err())
}

// Shutdown out of time with a stalled database: the writer is given up
// and says what is lost, whether it was in its last statement or never
// told to stop (the runtime's stop stuck before it). With a stalled
// database the line was missing: the process exited before the writer,
// given up, came to say it (found by an audit, helper 1).
func TestAbandonedWriterSaysWhatIsLost(t *testing.T) {
	t.Parallel()
	for _, told := range []bool{true, false} {
		t.Run(fmt.Sprintf("told to stop: %v", told), func(t *testing.T) {
			t.Parallel()
			src := &stalledSeen{started: make(chan struct{}, 1)}
			var logs testutil.SyncBuffer
			w := newWriter(src, nopObserver{}, func() bool { return false }, time.Hour, time.Hour, time.Hour, zerolog.New(&logs))
			w.mark(uuid.New(), time.Now())
			w.mark(uuid.New(), time.Now())
			closed := make(chan struct{})
			if told {
				go func() { defer close(closed); w.close() }() // its last flush waits on the database
				<-src.started
			}
			w.giveUp()
			w.abandoned(5 * time.Second)
			want := `"readings":0,"last_seen_at":2,"discoveries":0,"temperatures":0,"message":"shutdown: writes the database did not take are lost"`
			assert.Equal(t, 1, strings.Count(logs.String(), want), "said once:\n%s", logs.String())
			if told {
				<-closed
			} else {
				w.close()
			}
			assert.Equal(t, 1, strings.Count(logs.String(), "did not take are lost"), "and only once")
		})
	}
}

// firstWriteFails fails its first temperature write (the database went
// down for it) and takes the others.
type firstWriteFails struct {
	fixedSource
	mu    sync.Mutex
	calls int
}

func (s *firstWriteFails) RecordTemperatures(context.Context, []gatewayd.Temperature) ([]gatewayd.SensorRef, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.calls++; s.calls == 1 {
		return nil, errors.New("connection refused")
	}
	return nil, nil
}

// A flush whose first chunk failed and last one succeeded puts the
// failed chunk back to wait (helper 13's question; the bound on one
// gateway's waiting sensor reports, which this asked about, now applies
// whether or not their writes fail).
func TestWriterFailingTemperaturesAreAnyChunks(t *testing.T) {
	t.Parallel()
	src := &firstWriteFails{}
	w := newWriter(src, nopObserver{}, func() bool { return false }, time.Hour, time.Hour, time.Hour, zerolog.Nop())
	t.Cleanup(w.close)
	gw, at := uuid.New(), time.Now()
	for serial := range int64(writeBatch + writeBatch/2) { // two chunks
		w.temperature(gatewayd.Temperature{GatewayID: gw, Serial: serial, Celsius: 20, At: at})
	}
	w.flushData()
	w.mu.Lock()
	defer w.mu.Unlock()
	assert.Equal(t, 2, src.calls)
	assert.Len(t, w.temperatures, writeBatch, "the failed chunk waits again")
}
