package actors_test

// (Checked by an audit, helper 2, whose tests these are.) What a reading
// that ends leaves behind: its row (status, error, started_at,
// completed_at), its count in gatewayd_readings_total{trigger,status}, its
// observation in gatewayd_reading_seconds, and its one reading.completed
// or reading.failed event (API.md §8, §9; README "A reading's
// completed_at", "A late reading is its own").

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/events"
	"github.com/ctcgw/gatewayd/store"
)

// readingTally is what /metrics says of readings: gatewayd_readings_total
// by "trigger/status", and gatewayd_reading_seconds' count and sum.
type readingTally struct {
	total map[string]float64
	count uint64
	sum   float64
}

func tallyReadings(t *testing.T, h *actorstest.Harness) readingTally {
	t.Helper()
	fams, err := h.Telemetry.Metrics.Registry.Gather()
	require.NoError(t, err)
	out := readingTally{total: map[string]float64{}}
	for _, f := range fams {
		switch f.GetName() {
		case "gatewayd_readings_total":
			for _, m := range f.GetMetric() {
				out.total[labelOf(m, "trigger")+"/"+labelOf(m, "status")] = m.GetCounter().GetValue()
			}
		case "gatewayd_reading_seconds":
			hist := f.GetMetric()[0].GetHistogram()
			out.count, out.sum = hist.GetSampleCount(), hist.GetSampleSum()
		}
	}
	return out
}

func labelOf(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// readingEvent is a reading.completed or reading.failed the harness's
// broker published.
type readingEvent struct {
	Type string
	Data map[string]any
}

// readingEvents returns every reading event published so far, by reading id.
func readingEvents(t *testing.T, h *actorstest.Harness) map[string][]readingEvent {
	t.Helper()
	sub := h.Telemetry.Events.Resume(events.Filter{}, actorstest.EventBase, 1)
	defer sub.Close()
	require.False(t, sub.Reset(), "the ring still holds every event")
	out := map[string][]readingEvent{}
	for _, e := range sub.Replay() {
		if !strings.HasPrefix(e.Type, "reading.") {
			continue
		}
		var d map[string]any
		require.NoError(t, json.Unmarshal(e.Data, &d))
		id, _ := d["id"].(string)
		out[id] = append(out[id], readingEvent{Type: e.Type, Data: d})
	}
	return out
}

// waitTally waits until gatewayd_readings_total grew by want (each
// "trigger/status" by its count, every other by nothing) since before,
// and the histogram by as many observations; it returns the new tally.
func waitTally(t *testing.T, h *actorstest.Harness, before readingTally, want map[string]float64) readingTally {
	t.Helper()
	// Every reading is counted; only those someone asked for are timed.
	var n, timed float64
	for k, v := range want {
		n += v
		if !strings.HasPrefix(k, string(gatewayd.TriggerGateway)+"/") {
			timed += v
		}
	}
	counted := func(now readingTally) float64 {
		var c float64
		for k, v := range now.total {
			c += v - before.total[k]
		}
		return c
	}
	var now readingTally
	ok := assert.Eventually(t, func() bool {
		now = tallyReadings(t, h)
		return counted(now) >= n && now.count-before.count >= uint64(timed)
	}, 30*time.Second, 5*time.Millisecond, "gatewayd_readings_total counted %v readings", n)
	if !ok {
		return now
	}
	// Anything counted twice would show within the writer's next flushes.
	time.Sleep(10 * h.Config.ReadingFlushInterval)
	now = tallyReadings(t, h)
	for k, v := range now.total {
		assert.Equal(t, want[k], v-before.total[k], "gatewayd_readings_total{%s} grew by", k)
	}
	assert.EqualValues(t, timed, now.count-before.count, "gatewayd_reading_seconds observations (a pushed reading is not timed)")
	return now
}

// checkEvent asserts reading r has exactly one event, of type typ, with
// the fields API.md §9 names.
func checkEvent(t *testing.T, evs map[string][]readingEvent, r gatewayd.Reading, typ string) {
	t.Helper()
	got := evs[r.ID.String()]
	if !assert.Len(t, got, 1, "reading %s (%s %s): one event, got %v", r.ID, r.Trigger, r.Status, got) {
		return
	}
	assert.Equal(t, typ, got[0].Type)
	assert.Equal(t, r.ID.String(), got[0].Data["id"])
	assert.Equal(t, r.SensorID.String(), got[0].Data["sensor_id"])
	assert.Equal(t, r.GatewayID.String(), got[0].Data["gateway_id"])
	assert.Equal(t, string(r.Status), got[0].Data["status"])
}

// checkTimes asserts the order of a final reading's times:
// requested_at ≤ started_at (when set) ≤ completed_at, completed_at set.
func checkTimes(t *testing.T, r gatewayd.Reading) {
	t.Helper()
	if !assert.NotNil(t, r.CompletedAt, "reading %s (%s): completed_at set", r.ID, r.Status) {
		return
	}
	assert.False(t, r.CompletedAt.Before(r.RequestedAt), "completed_at %s before requested_at %s", r.CompletedAt, r.RequestedAt)
	if r.StartedAt != nil {
		assert.False(t, r.StartedAt.Before(r.RequestedAt), "started_at %s before requested_at %s", r.StartedAt, r.RequestedAt)
		assert.False(t, r.CompletedAt.Before(*r.StartedAt), "completed_at %s before started_at %s", r.CompletedAt, r.StartedAt)
	}
}

// malformed sends a NOT_DYN_READING of the script's serial whose axes
// differ in length.
func (p *scriptPeer) malformed() {
	p.notify(fmt.Sprintf(`{"Type":"NOT_DYN_READING","From":"SERV","Target":"UI","Data":{"ID":9,"Serial":"%d","Time":"2026-12-06 10:00:00","X":"1,2,3","Y":"1,2","Z":"1,2,3"}}`,
		scriptSerial))
}

// running waits until the reading's row is RUNNING.
func (e *scriptEnv) running(t *testing.T, id uuid.UUID) gatewayd.Reading {
	t.Helper()
	var got gatewayd.Reading
	eventually(t, func() bool {
		var err error
		got, err = e.h.Store.GetReading(context.Background(), id)
		return err == nil && got.Status == gatewayd.ReadingRunning
	}, 30*time.Second, "reading %s RUNNING", id)
	return got
}

// heldRates is the store, whose SensorReadRate waits while held: a
// reading whose rate its actor does not know waits in the processor
// (before its analysis), and nothing else does.
type heldRates struct {
	*store.Store
	gate    chan struct{} // closed: released
	entered chan struct{} // a lookup began (buffered: the first waits for its reader)
}

func (s *heldRates) SensorReadRate(ctx context.Context, gw uuid.UUID, serial int64) (float64, error) {
	select {
	case s.entered <- struct{}{}:
	default:
	}
	select {
	case <-s.gate:
	case <-ctx.Done():
	}
	return s.Store.SensorReadRate(ctx, gw, serial)
}

// heldAnalysisEnv is scriptHarness on a runtime whose processor waits
// for release before it analyses a reading of the script's sensor, which
// the gateway lists without a read rate (and which ask0 asks for without
// one): the processor looks the rate up first, and that waits.
func heldAnalysisEnv(t *testing.T, cfg actors.Config) (e *scriptEnv, release func()) {
	e, release, _ = heldAnalysisEnvSignal(t, cfg)
	return e, release
}

// heldAnalysisEnvSignal is heldAnalysisEnv, and tells on entered of each
// rate lookup that begins (one signal is kept until read, the rest are
// dropped: a lookup that began before the test looked for it was missed,
// and the test waited 30 s for it on a loaded box).
func heldAnalysisEnvSignal(t *testing.T, cfg actors.Config) (e *scriptEnv, release func(), entered <-chan struct{}) {
	t.Helper()
	h := newHarness(t, cfg)
	require.NoError(t, h.Runtime.Shutdown(context.Background()))
	src := &heldRates{Store: h.Store, gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	var once sync.Once
	release = func() { once.Do(func() { close(src.gate) }) }
	t.Cleanup(release)
	rt := actors.Start(h.Config, src, h.Log)
	h.Runtime = rt
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, rt.Shutdown(ctx))
	})
	require.Eventually(t, rt.Ready, 30*time.Second, 5*time.Millisecond)

	p := newScriptPeer(t)
	p.list = fmt.Sprintf(`{"%d":{"Serial":%d,"Connected":1,"PartNum":"P","Samples":8,"Name":"norate"}}`, scriptSerial, scriptSerial)
	g := addRawGateway(t, h, "held", p.url)
	h.WaitState(g.ID, gatewayd.StateAuthenticated, 10*time.Second)
	select {
	case <-p.subs:
	case <-time.After(30 * time.Second):
		t.Fatal("never subscribed")
	}
	e = &scriptEnv{h: h, p: p, g: g}
	eventually(t, func() bool {
		list, err := h.Store.GatewaySensors(context.Background(), g.ID)
		for _, s := range list {
			if s.Serial == scriptSerial {
				e.sensor = s
			}
		}
		return err == nil && e.sensor.Serial == scriptSerial
	}, 10*time.Second, "sensor discovered")
	return e, release, src.entered
}

// ask0 is ask for a sensor whose read rate nobody knows.
func (e *scriptEnv) ask0(t *testing.T) uuid.UUID {
	t.Helper()
	r, s, err := e.h.Store.CreateReading(context.Background(), uuid.New(), e.sensor.ID, gatewayd.TriggerManual)
	require.NoError(t, err)
	require.NoError(t, e.h.Runtime.TakeReading(context.Background(), r, s.Serial, 0))
	return r.ID
}

// README: "A reading's completed_at is when its samples arrived, not when
// their analysis ended: the gateway's next acquisition starts then, so one
// gateway's readings' [started_at, completed_at] never overlap." API.md
// §8: axes of unequal length → FAILED (malformed waveform). §9:
// gatewayd_readings_total{trigger,status}, reading.failed {id, sensor_id,
// gateway_id, status}.
//
// Reading A's samples are malformed and their decoding is held up (its rate lookup
// waits) while B, asked for behind A, starts: A is FAILED
// "malformed waveform" with the completed_at of its samples' arrival
// (before B's start, before the analysis could run), counted once as
// MANUAL/FAILED, observed once, announced once. Would catch: completed_at
// stamped when the processor failed it (after B's started_at), a failure
// counted or announced twice, or under the wrong label.
func TestMalformedSamplesKeepTheirArrivalAsCompletedAt(t *testing.T) {
	e, release := heldAnalysisEnv(t, actorstest.FastConfig())
	before := tallyReadings(t, e.h)

	a, b := e.ask0(t), e.ask0(t)
	require.EqualValues(t, scriptSerial, e.p.take())
	e.p.answerTake()
	e.p.started(true)
	e.running(t, a)

	sent := time.Now()
	e.p.malformed()
	require.EqualValues(t, scriptSerial, e.p.take(), "B's TAKE_DYN_READING once A's samples came")
	e.p.answerTake()
	e.p.started(true)
	rbRunning := e.running(t, b)
	time.Sleep(200 * time.Millisecond) // the analysis is held this long at least
	held, err := e.h.Store.GetReading(context.Background(), a)
	require.NoError(t, err)
	require.Equal(t, gatewayd.ReadingRunning, held.Status, "A waits for its analysis")
	assert.Nil(t, held.CompletedAt, "README: RUNNING, with completed_at not yet shown")
	released := time.Now()
	release()

	ra := e.final(t, a)
	assert.Equal(t, gatewayd.ReadingFailed, ra.Status)
	assert.Equal(t, gatewayd.ReadingErrMalformed, errText(ra))
	checkTimes(t, ra)
	require.NotNil(t, ra.CompletedAt)
	assert.False(t, ra.CompletedAt.Before(sent.Truncate(time.Microsecond)), "completed_at %s before the samples were sent %s", ra.CompletedAt, sent)
	assert.True(t, ra.CompletedAt.Before(released), "completed_at %s is the analysis' end (after %s), not the samples' arrival", ra.CompletedAt, released)
	if assert.NotNil(t, rbRunning.StartedAt) {
		assert.False(t, rbRunning.StartedAt.Before(*ra.CompletedAt), "B started at %s, before A completed at %s", rbRunning.StartedAt, ra.CompletedAt)
	}

	e.p.samples(2)
	rb := e.final(t, b)
	require.Equal(t, gatewayd.ReadingComplete, rb.Status, errText(rb))
	checkTimes(t, rb)

	waitTally(t, e.h, before, map[string]float64{"MANUAL/FAILED": 1, "MANUAL/COMPLETE": 1})
	evs := readingEvents(t, e.h)
	checkEvent(t, evs, ra, events.TypeReadingFailed)
	checkEvent(t, evs, rb, events.TypeReadingCompleted)
}

// API.md §8: samples are NOT_DYN_READING "within READING_TIMEOUT"; a
// NOT_DYN_READING nobody asked for is stored with trigger GATEWAY. README
// "A late reading is its own": the samples of a reading that failed
// before its capture ended "are stored as a reading with trigger
// GATEWAY".
//
// Reading A times out waiting for its samples; they come late. A is
// FAILED with completed_at at its failure; the late samples are a
// COMPLETE GATEWAY reading of the same sensor, its requested_at ≤
// started_at ≤ completed_at, after A's completed_at. Each is counted once
// under its own labels, observed once, announced once; the list's
// status/since/until filters (requested_at) tell them apart. Would catch:
// the late samples dropped or given to A (a FAILED reading made COMPLETE),
// a GATEWAY reading without times or sensor, a double count.
func TestLateSamplesAreCountedOnceAsAPushedReading(t *testing.T) {
	cfg := actorstest.FastConfig()
	cfg.ReadingTimeout = time.Second
	e := scriptHarness(t, newHarness(t, cfg))
	before := tallyReadings(t, e.h)

	a := e.ask(t)
	require.EqualValues(t, scriptSerial, e.p.take())
	e.p.answerTake()
	e.p.started(true)
	ra := e.final(t, a)
	require.Equal(t, gatewayd.ReadingFailed, ra.Status)
	assert.Equal(t, "no NOT_DYN_READING within 1s", errText(ra))
	checkTimes(t, ra)
	assert.NotNil(t, ra.StartedAt)

	e.p.samples(5) // A's, late
	late := e.holderOf(t, 5)
	assert.Equal(t, gatewayd.TriggerGateway, late.Trigger)
	assert.Equal(t, e.sensor.ID, late.SensorID)
	assert.Equal(t, e.g.ID, late.GatewayID)
	checkTimes(t, late)
	if assert.NotNil(t, late.StartedAt) && assert.NotNil(t, ra.CompletedAt) {
		assert.False(t, late.RequestedAt.Before(*ra.CompletedAt), "the late reading requested at %s, before A failed at %s", late.RequestedAt, ra.CompletedAt)
	}
	ra = e.final(t, a)
	assert.Equal(t, gatewayd.ReadingFailed, ra.Status, "a final state never changes")

	waitTally(t, e.h, before, map[string]float64{"MANUAL/FAILED": 1, "GATEWAY/COMPLETE": 1})
	evs := readingEvents(t, e.h)
	checkEvent(t, evs, ra, events.TypeReadingFailed)
	checkEvent(t, evs, late, events.TypeReadingCompleted)

	ctx := context.Background()
	list := func(f store.ReadingFilter) []uuid.UUID {
		rs, total, err := e.h.Store.ListReadings(ctx, e.sensor.ID, f, store.Page{Limit: 100})
		require.NoError(t, err)
		require.Len(t, rs, total)
		var ids []uuid.UUID
		for _, r := range rs {
			ids = append(ids, r.ID)
		}
		return ids
	}
	assert.Equal(t, []uuid.UUID{late.ID, a}, list(store.ReadingFilter{}), "newest first")
	assert.Equal(t, []uuid.UUID{a}, list(store.ReadingFilter{Status: gatewayd.ReadingFailed}))
	assert.Equal(t, []uuid.UUID{late.ID}, list(store.ReadingFilter{Status: gatewayd.ReadingComplete}))
	assert.Equal(t, []uuid.UUID{late.ID}, list(store.ReadingFilter{Since: &late.RequestedAt}), "since: requested at or after")
	assert.Equal(t, []uuid.UUID{a}, list(store.ReadingFilter{Until: &late.RequestedAt}), "until: requested before")
}

// API.md §8: "A connection lost or an actor restarted while a reading is
// queued or running fails it (connection lost)". A reading whose samples
// had arrived is no longer running (its completed_at is their arrival):
// an actor crash while its analysis waits leaves it to finish COMPLETE,
// counted and announced once. Would catch: such a reading failed
// "connection lost" (or both COMPLETE and FAILED: counted twice).
func TestCrashWhileSamplesAreAnalysedKeepsTheReading(t *testing.T) {
	e, release := heldAnalysisEnv(t, actorstest.FastConfig())
	before := tallyReadings(t, e.h)

	a, b := e.ask0(t), e.ask0(t)
	require.EqualValues(t, scriptSerial, e.p.take())
	e.p.answerTake()
	e.p.started(true)
	e.running(t, a)
	sent := time.Now()
	e.p.samples(3)
	// B's TAKE_DYN_READING goes out once A's samples are in the processor's hands.
	require.EqualValues(t, scriptSerial, e.p.take())
	require.NoError(t, e.h.Runtime.Crash(context.Background(), e.g.ID))
	e.h.WaitEnteredAfter(e.g.ID, gatewayd.StateAuthenticated, sent)
	released := time.Now()
	release()

	ra := e.final(t, a)
	assert.Equal(t, gatewayd.ReadingComplete, ra.Status, errText(ra))
	checkTimes(t, ra)
	if assert.NotNil(t, ra.CompletedAt) {
		assert.True(t, ra.CompletedAt.Before(released), "completed_at %s: the samples' arrival, not the analysis' end", ra.CompletedAt)
	}
	rb := e.final(t, b)
	assert.Equal(t, gatewayd.ReadingFailed, rb.Status)
	assert.Equal(t, gatewayd.ReadingErrConnectionLost, errText(rb))
	checkTimes(t, rb)
	waitTally(t, e.h, before, map[string]float64{"MANUAL/COMPLETE": 1, "MANUAL/FAILED": 1})
	evs := readingEvents(t, e.h)
	checkEvent(t, evs, ra, events.TypeReadingCompleted)
	checkEvent(t, evs, rb, events.TypeReadingFailed)
}

// README (actors/processor.go): a reading that finds the processors'
// queue (or its gateway's share of it) full fails "processing
// overloaded". Its samples had arrived: its completed_at is their arrival
// (README "A reading's completed_at"). API.md §9: counted under its
// trigger and FAILED, announced as reading.failed.
//
// One worker, a queue of 4 (a gateway's share: 1). Pushed P1 is taken by
// the worker (held in its rate lookup), pushed P2 waits in the queue,
// pushed P3 and then manual A's samples find the share full: both FAILED
// "processing overloaded" at once, while P1 and P2 are still held, with
// the times of their samples' arrival; P1 and P2 complete once released.
// Counted: GATEWAY/COMPLETE 2, GATEWAY/FAILED 1, MANUAL/FAILED 1, each
// reading announced once. Would catch: an overloaded reading left
// RUNNING, stamped later than its samples, counted under the wrong
// trigger, or a pushed one's failure dropped uncounted.
func TestOverloadedReadingsAreFailedCountedAndAnnouncedOnce(t *testing.T) {
	cfg := actorstest.FastConfig()
	cfg.ReadingWorkers, cfg.ReadingBacklog = 1, 4
	e, release, entered := heldAnalysisEnvSignal(t, cfg)
	before := tallyReadings(t, e.h)

	e.p.samples(11) // P1
	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		t.Fatal("P1 never reached the worker")
	}
	e.p.samples(12) // P2: queued
	e.p.samples(13) // P3: past the gateway's share
	a := e.ask0(t)
	require.EqualValues(t, scriptSerial, e.p.take())
	e.p.answerTake()
	e.p.started(true)
	e.running(t, a)
	sent := time.Now()
	e.p.samples(14) // A's
	ra := e.final(t, a)
	assert.Equal(t, gatewayd.ReadingFailed, ra.Status)
	assert.Equal(t, "processing overloaded", errText(ra))
	checkTimes(t, ra)
	if assert.NotNil(t, ra.CompletedAt) {
		assert.False(t, ra.CompletedAt.Before(sent.Truncate(time.Microsecond)), "completed_at %s before A's samples were sent", ra.CompletedAt)
	}

	ctx := context.Background()
	var p3 gatewayd.Reading
	eventually(t, func() bool {
		list, _, err := e.h.Store.ListReadings(ctx, e.sensor.ID, store.ReadingFilter{Status: gatewayd.ReadingFailed}, store.Page{Limit: 100})
		for _, r := range list {
			if r.Trigger == gatewayd.TriggerGateway {
				p3 = r
			}
		}
		return err == nil && p3.ID != uuid.Nil
	}, 10*time.Second, "P3 stored FAILED")
	assert.Equal(t, "processing overloaded", errText(p3))
	checkTimes(t, p3)
	if assert.NotNil(t, p3.StartedAt) && assert.NotNil(t, p3.CompletedAt) {
		assert.True(t, p3.RequestedAt.Equal(*p3.CompletedAt), "a pushed reading's samples arrived when it was asked for")
	}
	assert.Nil(t, p3.Summary)

	release()
	p1, p2 := e.holderOf(t, 11), e.holderOf(t, 12)
	for _, r := range []gatewayd.Reading{p1, p2} {
		assert.Equal(t, gatewayd.TriggerGateway, r.Trigger)
		checkTimes(t, r)
	}
	waitTally(t, e.h, before, map[string]float64{"GATEWAY/COMPLETE": 2, "GATEWAY/FAILED": 1, "MANUAL/FAILED": 1})
	evs := readingEvents(t, e.h)
	checkEvent(t, evs, ra, events.TypeReadingFailed)
	checkEvent(t, evs, p3, events.TypeReadingFailed)
	checkEvent(t, evs, p1, events.TypeReadingCompleted)
	checkEvent(t, evs, p2, events.TypeReadingCompleted)
}

// A graceful stop (SHUTDOWN_TIMEOUT, the database up) while a reading's
// analysis waits: the processor finishes what it holds and the writer
// stores it before the runtime ends (runtime.go Shutdown: "its last
// results go to the writer"), so the reading is COMPLETE with the
// completed_at of its samples' arrival, not left RUNNING for the next
// start to fail as "interrupted" (API.md §8); the one queued behind it
// fails "connection lost". Each is counted and announced once. Would
// catch: a shutdown that drops the processor's last results, or closes
// the writer before them.
func TestShutdownFinishesAnAnalysisInProgress(t *testing.T) {
	e, _ := heldAnalysisEnv(t, actorstest.FastConfig())
	before := tallyReadings(t, e.h)

	a, b := e.ask0(t), e.ask0(t)
	require.EqualValues(t, scriptSerial, e.p.take())
	e.p.answerTake()
	e.p.started(true)
	e.running(t, a)
	sent := time.Now()
	e.p.samples(6)
	require.EqualValues(t, scriptSerial, e.p.take(), "B's TAKE_DYN_READING: A's samples are in the processor's hands")
	stopping := time.Now()
	// The held rate lookup ends with the processor's context (close).
	require.NoError(t, e.h.Runtime.Shutdown(context.Background()))

	ra, err := e.h.Store.GetReading(context.Background(), a)
	require.NoError(t, err)
	assert.Equal(t, gatewayd.ReadingComplete, ra.Status, errText(ra))
	checkTimes(t, ra)
	if assert.NotNil(t, ra.CompletedAt) {
		assert.False(t, ra.CompletedAt.Before(sent.Truncate(time.Microsecond)))
		assert.True(t, ra.CompletedAt.Before(stopping), "completed_at %s: the samples' arrival", ra.CompletedAt)
	}
	rb, err := e.h.Store.GetReading(context.Background(), b)
	require.NoError(t, err)
	assert.Equal(t, gatewayd.ReadingFailed, rb.Status)
	assert.Equal(t, gatewayd.ReadingErrConnectionLost, errText(rb))
	checkTimes(t, rb)
	waitTally(t, e.h, before, map[string]float64{"MANUAL/COMPLETE": 1, "MANUAL/FAILED": 1})
	evs := readingEvents(t, e.h)
	checkEvent(t, evs, ra, events.TypeReadingCompleted)
	checkEvent(t, evs, rb, events.TypeReadingFailed)
}
