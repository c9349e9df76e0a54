package actors

import (
	"context"
	"errors"
	"iter"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/internal/logging"
)

// writer batches what the actors learn for the database: last_seen_at
// marks, discovery answers, temperatures, and readings (their states, and
// the processed ones with their summaries and samples). Actors hand values over
// under a mutex (never I/O); one goroutine writes everything pending in a
// few statements every interval, so 10,000 gateways logging in at once
// cost a handful of transactions, not 10,000. A failed write keeps what
// it could not write (the newest value per gateway or sensor) and tries
// again next time: a database outage never reaches an actor.
type writer struct {
	src          Source
	observer     Observer
	seenEvery    time.Duration // last_seen_at
	dataEvery    time.Duration // discoveries and temperatures
	readingEvery time.Duration // readings (people wait for them)
	log          zerolog.Logger
	// packs recycles the buffers of packed samples: a processing worker
	// takes one, the writer gives it back once its reading is stored.
	packs packPool

	mu           sync.Mutex
	seen         map[uuid.UUID]time.Time
	authFailures map[uuid.UUID]*string // nil: no longer refused
	discoveries  map[uuid.UUID]gatewayd.Discovery
	// listBytes is what the discoveries larger than listFloor hold
	// (discoverySize); droppedLists counts the discoveries not kept
	// because the share was full.
	listBytes    int64
	droppedLists int
	listShare    int64 // maxListBytes; smaller in tests
	temperatures map[sensorKey]gatewayd.Temperature
	// tempSerials counts each gateway's serials in temperatures: new
	// ones past its bound (pendingTemps) are dropped.
	tempSerials fleetCounts
	readings    map[uuid.UUID]gatewayd.ReadingUpdate
	// pushed counts each gateway's readings in readings that it pushed
	// unasked (trigger GATEWAY): while their writes fail (readingsFailing),
	// new ones past its bound (pendingPushed) are dropped.
	pushed          fleetCounts
	readingsFailing bool
	// waveBytes is what the pending readings' samples hold; past
	// maxPendingWaves (the database is down) new ones fail instead.
	waveBytes int
	// intake counts the samples from their arrival until written.
	intake *intake
	// waves counts the pending readings with samples; at readingChunk the
	// writer is kicked to write them before its next tick.
	waves int
	kick  wakeup

	// crowded reports a dial queue (dialLimiter.crowded); heldSince is
	// when the data flush was first put off for it (zero when it is
	// not). Only run touches the times.
	crowded              func() bool
	lastFlush, heldSince time.Time

	// ctx bounds every statement; giveUp cancels it when shutdown runs
	// out of time (a stalled database would otherwise hold the process
	// for the statements' own timeouts, and pool.Close after them).
	ctx    context.Context
	giveUp context.CancelFunc

	// While the database fails the reading writes, the writer waits
	// before trying again, longer after each failure (readingEvery
	// doubling, up to maxRetryWait): a requeued chunk of samples kicked
	// it again at once, and an outage became a loop of failing dials
	// (~2,000 a second, 7 CPU-s in 10 s, a warn line each). Only run
	// touches retries and retryAt.
	retries int
	retryAt time.Time
	// The lines about failed writes, one per failLogEvery for each kind.
	readingsLog, sensorsLog, seenLog, droppedLog, pushedLog, limitLog, listsLog logging.Pacer

	stop chan struct{}
	done chan struct{}
	// reported: the shutdown's line about lost writes is said once.
	reported sync.Once
}

type sensorKey struct {
	gateway uuid.UUID
	serial  int64
}

// writeBatch is the most rows one statement carries.
const writeBatch = 1000

// maxRetryWait is the longest the reading writes wait after failures;
// failLogEvery paces the lines saying writes failed.
const (
	maxRetryWait = 5 * time.Second
	failLogEvery = 10 * time.Second
)

// maxPendingWaves bounds the samples waiting for the database.
const maxPendingWaves = 64 << 20

// maxPendingSerials bounds one gateway's
// sensors whose temperatures or sightings wait for the database: a
// gateway names its serials itself, and during an outage each new one was
// kept until the database answered (100,000 from one peer in a test;
// 720,000 an hour at the flood limits: found by an audit, helper 4).
// Past the bound a new serial's report is dropped (its sensor is stored
// at its next report), a known one's still replaces what waits. While
// the writes succeed, each flush takes what waits, and the flood limits
// bound what one gateway adds between two; a bound then dropped the
// temperatures of a gateway's real sensors past the 1,024th of one burst
// (found by an audit, helper 12). It is above the flood limits' burst
// (2,000 frames), so no burst of real reports meets it.
//
// It applies while the writes succeed too: the flood limits are per
// connection, and a gateway that sent a burst of new serials at each
// connection, reconnecting, added ~1,900 each time; while the database
// took longer to write a flush than the next took to come in (100 such
// gateways: 233,000 waiting after 10 s, the database storing ~15,000 a
// second) nothing bounded them (found by an audit, helper 1). A gateway
// keeps at most 4,096 live sensors stored (store.maxGatewaySensors), so
// no more of its serials than that can be worth waiting for; a known
// serial's report still replaces what waits.
const maxPendingSerials = 4096

// maxPendingPushed bounds, while the reading writes fail, one gateway's
// readings that it pushed unasked (trigger GATEWAY) waiting for the
// database. Nobody asked for them, so nothing else bounds them: during
// an outage the writer held each one (a row and its summary, ~1.2 KB
// without samples; 20,000 from one peer in a test, 720,000 an hour at
// the flood limits: found by an audit, helper 1). Past the bound a new
// one is dropped, never stored. Like maxPendingSerials it is above the
// flood limits' burst, and applies only while the writes fail.
const maxPendingPushed = 4096

// Both bounds are one gateway's, and a fleet multiplies them: a hundred
// hostile peers each naming 4,096 new serials during an outage made the
// writer hold ~400,000 temperatures (~60 MiB), each pushing 4,096
// readings ~400,000 rows and summaries (~500 MiB), a thousand ten times
// that (noticed by an audit, helper 1). Past a gateway's first few
// (pendingTemps, pendingPushed: an honest gateway has tens of sensors,
// and pushes a reading of each now and then) its entries draw on a share
// of the fleet's; when that is full a new one is dropped as past the
// gateway's own bound. What an honest gateway reports stays within its
// floor, so hostile peers never crowd it out.
var (
	pendingTemps  = fleetBound{floor: 256, limit: maxPendingSerials, shared: 64 << 10}
	pendingPushed = fleetBound{floor: 64, limit: maxPendingPushed, shared: 8 << 10}
)

// fleetBound bounds what waits per gateway: floor entries of its own,
// then shared entries for the fleet, and limit per gateway in all.
type fleetBound struct{ floor, limit, shared int }

// fleetCounts counts entries per gateway within a fleetBound.
type fleetCounts struct {
	bound   fleetBound
	n       map[uuid.UUID]int
	inShare int // the entries past their gateways' floors
}

func newFleetCounts(b fleetBound) fleetCounts {
	return fleetCounts{bound: b, n: make(map[uuid.UUID]int)}
}

// add counts one more entry of gateway id, or reports false (counting
// nothing) when it has limit, or has its floor and the share is full.
func (c *fleetCounts) add(id uuid.UUID) bool {
	k := c.n[id]
	switch {
	case k >= c.bound.limit:
		return false
	case k >= c.bound.floor:
		if c.inShare >= c.bound.shared {
			return false
		}
		c.inShare++
	}
	c.n[id] = k + 1
	return true
}

// reset forgets every count: what they counted was taken to be written.
func (c *fleetCounts) reset() {
	c.n = make(map[uuid.UUID]int)
	c.inShare = 0
}

// While dials queue for the limiter's slots (a cold start, a reconnect
// storm), the discoveries and temperatures wait: the upserts of 40,000
// sensors cost PostgreSQL seconds of CPU, on the same cores the logins
// need, and nothing waits on those rows the way it waits on a connection.
// They are written as soon as the queue is gone (looked at dataChecks
// times per interval), or after maxDataHolds intervals whatever happens,
// so a fleet that never stops dialing (hundreds of hung peers) still gets
// its sensors stored.
const (
	dataChecks   = 4
	maxDataHolds = 10
)

func newWriter(src Source, observer Observer, crowded func() bool, seenEvery, dataEvery, readingEvery time.Duration, log zerolog.Logger) *writer {
	w := &writer{src: src, observer: observer, crowded: crowded, seenEvery: seenEvery, dataEvery: dataEvery, readingEvery: readingEvery, log: log,
		seen: make(map[uuid.UUID]time.Time), authFailures: make(map[uuid.UUID]*string), discoveries: make(map[uuid.UUID]gatewayd.Discovery),
		temperatures: make(map[sensorKey]gatewayd.Temperature), tempSerials: newFleetCounts(pendingTemps),
		readings: make(map[uuid.UUID]gatewayd.ReadingUpdate), pushed: newFleetCounts(pendingPushed), listShare: maxListBytes, stop: make(chan struct{}), done: make(chan struct{}), kick: newWakeup()}
	w.ctx, w.giveUp = context.WithCancel(context.Background())
	go w.run()
	return w
}

// dataDue reports, at one of the data ticker's checks, whether the
// discoveries and temperatures are to be written now: once per data
// interval, except while the dials are crowded (then not, for at most
// maxDataHolds intervals), and at once when they no longer are.
func (w *writer) dataDue(now time.Time) bool {
	if w.crowded() && (w.heldSince.IsZero() || now.Sub(w.heldSince) < maxDataHolds*w.dataEvery) {
		if w.heldSince.IsZero() {
			w.heldSince = now
		}
		return false
	}
	if !w.heldSince.IsZero() {
		w.heldSince = time.Time{}
		return true
	}
	return now.Sub(w.lastFlush) >= w.dataEvery
}

// authFailure keeps that the gateway refused the login (its error), or
// no longer does (nil), for the next start; the latest word wins.
func (w *writer) authFailure(id uuid.UUID, refused *string) {
	w.mu.Lock()
	w.authFailures[id] = refused
	w.mu.Unlock()
}

func (w *writer) mark(id uuid.UUID, at time.Time) {
	w.mu.Lock()
	if prev, ok := w.seen[id]; !ok || at.After(prev) {
		w.seen[id] = at
	}
	w.mu.Unlock()
}

// listFloor is the size (discoverySize) up to which a gateway's
// discovery waits for the database whatever the fleet's others hold: an
// honest gateway's list (dozens of sensors, ~100 bytes each) fits in it,
// so hostile peers' lists never crowd it out.
const listFloor = 64 << 10

// maxListBytes bounds what the discoveries past listFloor hold together
// while they wait. One gateway's list is bounded (maxListedSensors, the
// frame limit: ~4 MiB of names at most), and the writer keeps one per
// gateway, but during an outage (or while the dials are crowded) it kept
// each until the database took it, whatever the fleet held: twenty peers
// answering with 4,096 sensors of long names (~3.9 MB frames) made it
// hold ~75 MiB, a thousand a few GiB. Past the bound a larger list is not kept
// (its gateway's previous one, if any, still waits); the gateway's next
// discovery, at the next refresh, is. A batch being written holds at
// most as much again.
const maxListBytes = 32 << 20

// discoverySize is roughly what a discovery holds: its entries and their
// text.
func discoverySize(d gatewayd.Discovery) int64 {
	n := int64(len(d.Sensors)) * int64(unsafe.Sizeof(gatewayd.SensorReport{}))
	for _, s := range d.Sensors {
		n += int64(len(s.Name) + len(s.PartNumber))
		if s.ReadRateHz != nil {
			n += 8
		}
		if s.Samples != nil {
			n += 8
		}
	}
	return n
}

// discovered keeps a gateway's discovery for the database, in place of
// an older one, unless it is past listFloor and the larger lists waiting
// hold maxListBytes.
func (w *writer) discovered(d gatewayd.Discovery) {
	size := discoverySize(d)
	w.mu.Lock()
	prev, ok := w.discoveries[d.GatewayID]
	if ok && d.At.Before(prev.At) {
		w.mu.Unlock()
		return
	}
	held := w.listBytes
	if prevSize := discoverySize(prev); ok && prevSize > listFloor {
		held -= prevSize
	}
	if size > listFloor {
		if held+size > w.listShare {
			w.droppedLists++
			w.mu.Unlock()
			if ok, n := w.listsLog.Allow(time.Now(), failLogEvery); ok {
				w.log.Warn().Str("id", d.GatewayID.String()).Int("sensors", len(d.Sensors)).Int64("mib", w.listShare>>20).
					Int("unlogged_since", n).Msg("a gateway's large sensor list is not kept for the database: the large lists waiting hold their share; its next one may be")
			}
			return
		}
		held += size
	}
	w.listBytes = held
	w.discoveries[d.GatewayID] = d
	w.mu.Unlock()
}

// temperature records a temperature or a sighting; a sighting never
// replaces a temperature waiting to be written (which marks the sensor
// seen too).
func (w *writer) temperature(t gatewayd.Temperature) {
	k := sensorKey{t.GatewayID, t.Serial}
	w.mu.Lock()
	prev, ok := w.temperatures[k]
	switch {
	case !ok && !w.tempSerials.add(t.GatewayID):
		w.mu.Unlock()
		if ok, n := w.droppedLog.Allow(time.Now(), failLogEvery); ok {
			w.log.Warn().Str("id", t.GatewayID.String()).Int("limit", maxPendingSerials).Int("fleet_share", pendingTemps.shared).Int("unlogged_since", n).
				Msg("a gateway reported more sensors than wait for the database (its own bound, or the fleet's share past its first few); a new serial's report is dropped")
		}
		return
	case !ok:
		w.temperatures[k] = t
	case prev.Sighting && !t.Sighting:
		w.temperatures[k] = t
	case t.Sighting == prev.Sighting && !t.At.Before(prev.At):
		w.temperatures[k] = t
	}
	w.mu.Unlock()
}

// rank orders reading states: a later update never moves one back.
func rank(s gatewayd.ReadingStatus) int {
	switch s {
	case gatewayd.ReadingQueued:
		return 0
	case gatewayd.ReadingRunning:
		return 1
	}
	return 2
}

func waveSize(u gatewayd.ReadingUpdate) int {
	if u.Packed == nil {
		return 0
	}
	return len(u.Packed.Data)
}

// reading records a reading's new state.
func (w *writer) reading(u gatewayd.ReadingUpdate) {
	w.mu.Lock()
	defer w.mu.Unlock()
	prev, ok := w.readings[u.Reading.ID]
	if ok && rank(u.Reading.Status) < rank(prev.Reading.Status) {
		return
	}
	if !ok && u.Reading.Trigger == gatewayd.TriggerGateway {
		if !w.pushed.add(u.Reading.GatewayID) && w.readingsFailing {
			if ok, n := w.pushedLog.Allow(time.Now(), failLogEvery); ok {
				w.log.Warn().Str("id", u.Reading.GatewayID.String()).Int("limit", maxPendingPushed).Int("fleet_share", pendingPushed.shared).Int("unlogged_since", n).
					Msg("a gateway pushed more readings than wait for the database (its own bound, or the fleet's share past its first few); a new one is dropped")
			}
			return
		}
	}
	if size := waveSize(u); size > 0 && w.waveBytes+size > maxPendingWaves {
		msg := "could not be stored (database unavailable)"
		u.Packed, u.Reading.Status, u.Reading.Error = nil, gatewayd.ReadingFailed, &msg
		u.Reading = withoutResults(u.Reading)
	}
	size, prevSize := waveSize(u), waveSize(prev)
	w.waveBytes += size - prevSize
	w.intake.add(int64(size - prevSize))
	if size > 0 && prevSize == 0 {
		if w.waves++; w.waves == readingChunk {
			w.kick.send()
		}
	}
	w.readings[u.Reading.ID] = u
}

// flushReadingsPaced flushes the readings unless an earlier failure's
// wait runs to later than now.
func (w *writer) flushReadingsPaced(now time.Time) {
	if now.Before(w.retryAt) {
		return
	}
	if !w.flushReadings() {
		w.retries, w.retryAt = 0, time.Time{}
		return
	}
	w.retries++
	w.retryAt = time.Now().Add(min(w.readingEvery<<min(w.retries, 8), maxRetryWait))
}

// flushReadings writes the pending readings and reports whether any went
// back to be tried again.
func (w *writer) flushReadings() (requeued bool) {
	w.mu.Lock()
	batch := w.readings
	if len(batch) == 0 {
		w.mu.Unlock()
		return false
	}
	w.readings = make(map[uuid.UUID]gatewayd.ReadingUpdate, len(batch))
	w.pushed.reset()
	w.waveBytes, w.waves = 0, 0
	w.mu.Unlock()
	// Smaller chunks than other rows, each of which may carry 70 KB of
	// samples, written by a few goroutines at once (each on its own pooled
	// connection): in a burst of readings one stream of writes did not
	// keep up with two workers' processing, and what waits for the
	// database is the heap's largest share. What a chunk held leaves the
	// intake once written (or requeued, which counts it again).
	list := values(batch)
	chunks := (len(list) + readingChunk - 1) / readingChunk
	var next atomic.Int64
	var failed atomic.Bool
	var observe sync.Mutex // the observer is told from one goroutine at a time
	var wg sync.WaitGroup
	for range min(readingWriters, chunks) {
		wg.Go(func() {
			for c := int(next.Add(1)) - 1; c < chunks; c = int(next.Add(1)) - 1 {
				chunk := list[c*readingChunk : min((c+1)*readingChunk, len(list))]
				writeChunks(w, chunk, readingChunk, sink[gatewayd.ReadingUpdate, gatewayd.ReadingRef]{
					write: w.src.SaveReadings, requeue: w.reading, salvage: salvageReading, what: "readings", failLog: &w.readingsLog,
					after: func(chunk []gatewayd.ReadingUpdate, requeued bool) {
						if requeued {
							failed.Store(true)
							w.mu.Lock()
							w.readingsFailing = true
							w.mu.Unlock()
						}
						size := 0
						for _, u := range chunk {
							size += waveSize(u)
							if !requeued && u.Packed != nil {
								// Done with: pgx has sent the bytes (or the
								// row was salvaged without them), and nothing
								// else holds them. (A requeued one keeps its
								// buffer until it is stored.)
								w.packs.put(u.Packed.Data)
							}
						}
						w.intake.add(-int64(size))
					},
					observe: func(done []gatewayd.ReadingRef) {
						observe.Lock()
						defer observe.Unlock()
						w.observer.ReadingsDone(done)
					}})
			}
		})
	}
	wg.Wait()
	w.mu.Lock()
	w.readingsFailing = failed.Load()
	w.mu.Unlock()
	return failed.Load()
}

// Reading states are written readingChunk rows to a statement by up to
// readingWriters goroutines at once.
const (
	readingChunk   = 32
	readingWriters = 3
)

func (w *writer) run() {
	defer close(w.done)
	seen := time.NewTicker(w.seenEvery)
	defer seen.Stop()
	data := time.NewTicker(w.dataEvery / dataChecks)
	defer data.Stop()
	w.lastFlush = time.Now()
	readings := time.NewTicker(w.readingEvery)
	defer readings.Stop()
	for {
		select {
		case <-w.stop:
			w.flushReadings()
			w.flushData()
			w.flushSeen()
			w.flushAuthFailures()
			w.reportLeft()
			return
		case now := <-readings.C:
			w.flushReadingsPaced(now)
		case <-w.kick:
			// A chunk of samples is waiting: in a burst, writing it now
			// rather than at the next tick keeps the heap and the intake
			// small.
			w.flushReadingsPaced(time.Now())
		case <-seen.C:
			w.flushSeen()
			w.flushAuthFailures()
		case now := <-data.C:
			if w.dataDue(now) {
				w.lastFlush = now
				w.flushData()
			}
		}
	}
}

// reportLeft says, at shutdown, what the database did not take: it is
// lost (the readings among it are failed as interrupted at the next
// start). Once: abandoned may say it too.
func (w *writer) reportLeft() {
	w.reported.Do(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if n := len(w.readings) + len(w.seen) + len(w.discoveries) + len(w.temperatures); n == 0 {
			return
		}
		w.log.Error().Int("readings", len(w.readings)).Int("last_seen_at", len(w.seen)).Int("discoveries", len(w.discoveries)).
			Int("temperatures", len(w.temperatures)).Msg("shutdown: writes the database did not take are lost")
	})
}

// abandoned, after giveUp, waits at most within for the writer's own last
// report, and reports what it holds now if that did not come (a writer
// never told to stop, or still in a statement). A batch a statement has
// taken out is then not counted: the line says at least what is lost.
func (w *writer) abandoned(within time.Duration) {
	t := time.NewTimer(within)
	defer t.Stop()
	select {
	case <-w.done:
	case <-t.C:
	}
	w.reportLeft()
}

// flushAuthFailures writes the refused logins with last_seen_at's pace;
// a failed write is tried again, unless a newer word came meanwhile.
func (w *writer) flushAuthFailures() {
	w.mu.Lock()
	batch := w.authFailures
	if len(batch) == 0 {
		w.mu.Unlock()
		return
	}
	w.authFailures = make(map[uuid.UUID]*string, len(batch))
	w.mu.Unlock()
	ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
	defer cancel()
	if err := w.src.MarkAuthFailures(ctx, batch); err != nil {
		if ok, n := w.seenLog.Allow(time.Now(), failLogEvery); ok {
			w.log.Warn().Err(err).Int("gateways", len(batch)).Int("unlogged_since", n).Msg("refused-login write failed; will retry")
		}
		w.mu.Lock()
		for id, refused := range batch {
			if _, newer := w.authFailures[id]; !newer {
				w.authFailures[id] = refused
			}
		}
		w.mu.Unlock()
	}
}

func (w *writer) flushSeen() {
	w.mu.Lock()
	batch := w.seen
	if len(batch) == 0 {
		w.mu.Unlock()
		return
	}
	w.seen = make(map[uuid.UUID]time.Time, len(batch))
	w.mu.Unlock()
	ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
	defer cancel()
	if err := w.src.MarkSeen(ctx, batch); err != nil {
		if ok, n := w.seenLog.Allow(time.Now(), failLogEvery); ok {
			w.log.Warn().Err(err).Int("gateways", len(batch)).Int("unlogged_since", n).Msg("last_seen_at write failed; will retry")
		}
		for id, at := range batch {
			w.mark(id, at)
		}
	}
}

func (w *writer) flushData() {
	w.mu.Lock()
	// Take the pending maps only when they hold something: an empty map
	// stays the writers' and is never read outside the lock.
	var ds map[uuid.UUID]gatewayd.Discovery
	var ts map[sensorKey]gatewayd.Temperature
	if len(w.discoveries) > 0 {
		ds, w.discoveries = w.discoveries, make(map[uuid.UUID]gatewayd.Discovery)
		w.listBytes = 0
	}
	if len(w.temperatures) > 0 {
		ts, w.temperatures = w.temperatures, make(map[sensorKey]gatewayd.Temperature)
		w.tempSerials.reset()
	}
	w.mu.Unlock()
	// Temperatures first: a sensor first seen in one (inserted connected)
	// before a discovery that does not list it must be there when the
	// discovery disconnects what it does not list (by last_seen_at, so one
	// seen after the discovery stays connected). Written after, it stayed
	// connected until the next discovery.
	writeChunks(w, values(ts), writeBatch, sink[gatewayd.Temperature, gatewayd.SensorRef]{write: w.src.RecordTemperatures,
		observe: w.observer.SensorsChanged, requeue: w.temperature, what: "temperatures", failLog: &w.sensorsLog})
	merge := sink[gatewayd.Discovery, gatewayd.SensorRef]{write: w.src.MergeDiscoveries,
		observe: w.observer.SensorsChanged, requeue: w.discovered, what: "sensor discoveries", failLog: &w.sensorsLog}
	for chunk := range mergeChunks(values(ds)) {
		writeChunk(w, chunk, merge)
	}
}

// maxMergeBytes bounds what the discoveries one statement merges hold
// (discoverySize; a larger one goes alone). A discovery is a list of up
// to maxListedSensors rows, not one: writeBatch of them made one
// statement of up to ~4 million rows, and pgx keeps a connection's last
// statement's encoded parameters until that connection runs another
// with as many: a hundred gateways listing 4,096 sensors each left
// ~100 MiB on an idle pooled connection after their lists were stored,
// a thousand of them ~1 GiB, besides the statement's own arrays while
// it ran (found by an audit, helper 1). Now each pooled connection keeps
// at most about this much; an honest fleet's lists (tens of sensors, a
// few KiB each) go hundreds to a statement.
const maxMergeBytes = 1 << 20

// mergeChunks yields ds in chunks of at most writeBatch discoveries that
// hold at most maxMergeBytes together, or of one larger discovery.
func mergeChunks(ds []gatewayd.Discovery) iter.Seq[[]gatewayd.Discovery] {
	return func(yield func([]gatewayd.Discovery) bool) {
		start, held := 0, int64(0)
		for i, d := range ds {
			size := discoverySize(d)
			if i > start && (i-start == writeBatch || held+size > maxMergeBytes) {
				if !yield(ds[start:i]) {
					return
				}
				start, held = i, 0
			}
			held += size
		}
		if start < len(ds) {
			yield(ds[start:])
		}
	}
}

// sink is where writeChunks puts rows: write stores a chunk and returns
// what it wrote, told to observe; requeue puts a row back to be tried
// again; salvage (if not nil) turns a row the database refuses into one
// it can store, or says there is none; after (if not nil) is told of
// every chunk once it is done with, and whether it went back.
type sink[T, R any] struct {
	write   func(context.Context, []T) ([]R, error)
	observe func([]R)
	requeue func(T)
	salvage func(T) (T, bool)
	after   func(chunk []T, requeued bool)
	what    string
	failLog *logging.Pacer // paces the lines about this sink's failed writes
}

// writeChunks writes list in statements of at most size rows. A failed
// statement puts its chunk back to be tried again (the database is down
// or slow) unless the database refused a value in it (ErrInvalidInput):
// retrying that chunk as it is would fail for ever, and hold every other
// gateway's rows with it. It is split in halves until the row is alone;
// the rest is stored, and the row is salvaged or dropped with an error.
func writeChunks[T, R any](w *writer, list []T, size int, to sink[T, R]) {
	for start := 0; start < len(list); start += size {
		writeChunk(w, list[start:min(start+size, len(list))], to)
	}
}

func writeChunk[T, R any](w *writer, chunk []T, to sink[T, R]) {
	ctx, cancel := context.WithTimeout(w.ctx, 30*time.Second)
	written, err := to.write(ctx, chunk)
	cancel()
	if len(written) > 0 {
		to.observe(written)
	}
	requeued := false
	switch {
	case err == nil:
	case errors.Is(err, gatewayd.ErrSensorLimit):
		// What fit is written; the new serials past a gateway's limit
		// would be refused again, so they are not tried again.
		if ok, n := w.limitLog.Allow(time.Now(), failLogEvery); ok {
			w.log.Warn().Err(err).Str("what", to.what).Int("unlogged_since", n).
				Msg("a gateway's new sensors past its limit were not stored")
		}
	case errors.Is(err, gatewayd.ErrInvalidInput) && len(chunk) > 1:
		half := len(chunk) / 2
		writeChunk(w, chunk[:half], to)
		writeChunk(w, chunk[half:], to)
		return // each half has told after
	case errors.Is(err, gatewayd.ErrInvalidInput):
		if to.salvage != nil {
			if v, ok := to.salvage(chunk[0]); ok {
				w.log.Error().Err(err).Str("what", to.what).Msg("the database refused a row; storing what it can")
				to.requeue(v)
				break
			}
		}
		w.log.Error().Err(err).Str("what", to.what).Msg("the database refused a row; dropped")
	default:
		if ok, n := to.failLog.Allow(time.Now(), failLogEvery); ok {
			w.log.Warn().Err(err).Int("rows", len(chunk)).Str("what", to.what).Int("unlogged_since", n).
				Msg("batched write failed; will retry")
		}
		for _, v := range chunk {
			to.requeue(v)
		}
		requeued = true
	}
	if to.after != nil {
		to.after(chunk, requeued)
	}
}

// salvageReading is what is left of a reading the database refused: FAILED,
// without samples or figures, so that it does not stay unfinished. One
// already salvaged has nothing left to give.
func salvageReading(u gatewayd.ReadingUpdate) (gatewayd.ReadingUpdate, bool) {
	if u.Reading.Error != nil && *u.Reading.Error == errNotStorable && u.Packed == nil {
		return u, false
	}
	msg := errNotStorable
	u.Packed = nil
	u.Reading.Status, u.Reading.Error = gatewayd.ReadingFailed, &msg
	u.Reading = withoutResults(u.Reading)
	return u, true
}

// withoutResults is a reading failed after its samples were processed:
// no summary, sample count or rate (a FAILED reading has none, as one the
// processor fails), and the completed_at of its samples' arrival, which
// the actor stamped (README "A reading's completed_at"): a new stamp here
// fell after the next reading's started_at (found by an audit, helper 2).
// One without a completed_at gets now.
func withoutResults(r gatewayd.Reading) gatewayd.Reading {
	r.Summary, r.Samples, r.SampleRateHz = nil, nil, nil
	if r.CompletedAt == nil {
		now := time.Now()
		r.CompletedAt = &now
	}
	return r
}

const errNotStorable = "could not be stored (the database refused a value of it)"

func values[K comparable, V any](m map[K]V) []V {
	out := make([]V, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// close writes what is pending and ends the goroutine; giveUp, from
// another goroutine, makes it stop waiting for the database.
func (w *writer) close() {
	close(w.stop)
	<-w.done
	w.giveUp()
}

// packPool holds buffers of packed samples between readings. In a burst
// the packed samples (~61 KB a reading of 3 × 8,192) were most of what
// the readings path allocated, each buffer garbage right after its
// statement; reused, they leave the collector less to do while status
// requests wait for a core (BENCHMARKS.md, 2026-12-05 second session).
type packPool struct{ p sync.Pool }

// get returns an empty buffer, with room if one was given back.
func (pp *packPool) get() []byte {
	if b, ok := pp.p.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return nil
}

// put gives b back; its contents are not read again.
func (pp *packPool) put(b []byte) {
	b = b[:0]
	pp.p.Put(&b)
}
