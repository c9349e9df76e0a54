package events

import (
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// publish publishes one event of type typ about factory f and gateway g and
// returns its id.
func publish(t testing.TB, b *Broker, f, g uuid.UUID) uint64 {
	t.Helper()
	id, err := b.Publish(Event{Type: TypeGatewayState, FactoryID: f, GatewayID: g, Data: []byte(`{}`)})
	require.NoError(t, err)
	return id
}

// receive reads n events from s, failing the test if they do not arrive
// within a generous deadline or the subscription ends first.
func receive(t *testing.T, s *Subscription, n int) []uint64 {
	t.Helper()
	ids := make([]uint64, 0, n)
	deadline := time.After(10 * time.Second)
	for len(ids) < n {
		ended := s.Ended()
		if e := s.Next(); e != nil {
			ids = append(ids, e.ID)
			continue
		}
		require.Falsef(t, ended, "ended after %d of %d events", len(ids), n)
		select {
		case <-s.Ready():
		case <-deadline:
			require.FailNowf(t, "timeout", "got %d of %d events", len(ids), n)
		}
	}
	return ids
}

// next takes the event Publish has just put into s: Publish puts
// synchronously, so after it returns nothing is in flight.
func next(t *testing.T, s *Subscription) *Event {
	t.Helper()
	e := s.Next()
	require.NotNil(t, e, "nothing buffered")
	return e
}

// requireNothingBuffered asserts that s has no event waiting and has not
// ended.
func requireNothingBuffered(t *testing.T, s *Subscription) {
	t.Helper()
	e := s.Next()
	require.Nilf(t, e, "unexpected event %+v", e)
	require.False(t, s.Ended(), "ended")
}

// requireClosed asserts that s has ended, takes the events it still holds,
// and returns how many there were.
func requireClosed(t *testing.T, s *Subscription) int {
	t.Helper()
	require.True(t, s.Ended(), "not ended")
	n := 0
	for s.Next() != nil {
		n++
	}
	return n
}

// consume hands every event of s to f, in order, until s has ended and
// everything it held was taken.
func consume(s *Subscription, f func(*Event)) {
	for {
		ended := s.Ended()
		for e := s.Next(); e != nil; e = s.Next() {
			f(e)
		}
		if ended {
			return
		}
		<-s.Ready()
	}
}

func ids(events []*Event) []uint64 {
	out := make([]uint64, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

func seq(from, to uint64) []uint64 {
	var out []uint64
	for id := from; id <= to; id++ {
		out = append(out, id)
	}
	return out
}

func TestPublishAssignsIncreasingIDsFromOne(t *testing.T) {
	t.Parallel()
	b := NewBroker(4)
	for want := uint64(1); want <= 10; want++ {
		assert.Equal(t, want, publish(t, b, uuid.Nil, uuid.Nil))
	}
	assert.Equal(t, uint64(10), b.Published())
}

func TestPublishRejectsInvalidEvents(t *testing.T) {
	t.Parallel()
	b := NewBroker(4)
	s := b.Subscribe(Filter{}, 0, 4)
	id, err := b.Publish(Event{Type: TypeGatewayState, Data: []byte("{\n}")})
	require.ErrorIs(t, err, ErrInvalidEvent)
	assert.Zero(t, id)
	assert.Zero(t, b.Published(), "a refused event takes no id")
	requireNothingBuffered(t, s)
}

func TestPublishJSONMarshalsOnceIntoOneLine(t *testing.T) {
	t.Parallel()
	b := NewBroker(4)
	s := b.Subscribe(Filter{}, 0, 4)
	f, g := uuid.New(), uuid.New()

	// An indented json.RawMessage still arrives compact: encoding/json
	// compacts a Marshaler's output.
	payload := struct {
		ID    uuid.UUID       `json:"id"`
		Extra json.RawMessage `json:"extra"`
	}{g, json.RawMessage("{\n  \"a\": 1\n}")}
	id, err := b.PublishJSON(TypeGatewayCreated, f, g, payload)
	require.NoError(t, err)
	e := next(t, s)
	assert.Equal(t, id, e.ID)
	assert.Equal(t, TypeGatewayCreated, e.Type)
	assert.Equal(t, f, e.FactoryID)
	assert.Equal(t, g, e.GatewayID)
	assert.JSONEq(t, fmt.Sprintf(`{"id":%q,"extra":{"a":1}}`, g), string(e.Data))
	assert.NotContains(t, string(e.Data), "\n")

	_, err = b.PublishJSON(TypeGatewayCreated, f, g, func() {})
	require.Error(t, err)
	assert.Equal(t, id, b.Published(), "a payload that does not marshal is not published")
}

func TestSubscribersGetExactlyTheirMatchingEventsInOrder(t *testing.T) {
	t.Parallel()
	b := NewBroker(100)
	fa, fb := uuid.New(), uuid.New()
	ga, gb := uuid.New(), uuid.New() // ga is in fa, gb in fb
	byFactory := b.Subscribe(Filter{FactoryID: &fa}, 0, 100)
	byGateway := b.Subscribe(Filter{GatewayID: &gb}, 0, 100)
	all := b.Subscribe(Filter{}, 0, 100)

	var wantA, wantB []uint64
	for i := range 60 {
		switch i % 4 {
		case 0:
			wantA = append(wantA, publish(t, b, fa, ga))
		case 1: // a factory-level event (gateway.created has both ids, but an
			// organisation-wide one might not): no gateway.
			wantA = append(wantA, publish(t, b, fa, uuid.Nil))
		case 2:
			wantB = append(wantB, publish(t, b, fb, gb))
		case 3: // about nothing in particular: only the unfiltered stream.
			publish(t, b, uuid.Nil, uuid.Nil)
		}
	}
	assert.Equal(t, wantA, receive(t, byFactory, len(wantA)))
	assert.Equal(t, wantB, receive(t, byGateway, len(wantB)))
	assert.Equal(t, seq(1, 60), receive(t, all, 60))
	requireNothingBuffered(t, byFactory)
	requireNothingBuffered(t, byGateway)
	assert.Equal(t, 3, b.Subscribers())
}

func TestSubscribeLiveOnlyReplaysNothing(t *testing.T) {
	t.Parallel()
	b := NewBroker(100)
	for range 5 {
		publish(t, b, uuid.Nil, uuid.Nil)
	}
	s := b.Subscribe(Filter{}, 0, 10)
	assert.False(t, s.Reset())
	assert.Empty(t, s.Replay())
	publish(t, b, uuid.Nil, uuid.Nil)
	assert.Equal(t, []uint64{6}, receive(t, s, 1))
}

func TestResume(t *testing.T) {
	t.Parallel()
	fa, fb := uuid.New(), uuid.New()
	// Ring of 5 after 20 events published: it holds 16..20. Events about
	// factory A are the even ids.
	tests := []struct {
		name       string
		ringSize   int
		published  int
		filter     Filter
		lastID     uint64
		wantReset  bool
		wantReplay []uint64
	}{
		{"within the ring", 5, 20, Filter{}, 17, false, seq(18, 20)},
		{"just before the oldest loses nothing", 5, 20, Filter{}, 15, false, seq(16, 20)},
		{"up to date", 5, 20, Filter{}, 20, false, nil},
		{"older than the ring", 5, 20, Filter{}, 14, true, seq(16, 20)},
		{"much older than the ring", 5, 20, Filter{}, 1, true, seq(16, 20)},
		{"from the future", 5, 20, Filter{}, 21, true, seq(16, 20)},
		{"from the future, ring not yet full", 50, 20, Filter{}, 1000, true, seq(1, 20)},
		{"previous process, nothing published yet", 5, 0, Filter{}, 7, true, nil},
		{"filtered within the ring", 5, 20, Filter{FactoryID: &fa}, 16, false, []uint64{18, 20}},
		{"filtered older than the ring", 5, 20, Filter{FactoryID: &fa}, 3, true, []uint64{16, 18, 20}},
		{"filtered, nothing matches", 5, 20, Filter{FactoryID: &fb}, 15, false, nil},
		{"no ring, up to date", 0, 20, Filter{}, 20, false, nil},
		{"no ring, missed one", 0, 20, Filter{}, 19, true, nil},
		// Last-Event-ID: 0 is before the first event (Resume).
		{"zero, the first still in the ring", 50, 20, Filter{}, 0, false, seq(1, 20)},
		{"zero, the first gone", 5, 20, Filter{}, 0, true, seq(16, 20)},
		{"zero, nothing published", 5, 0, Filter{}, 0, false, nil},
	}
	for _, tt := range tests {
		// Above 0 Subscribe and Resume are the same; at 0 only Resume
		// resumes (Subscribe is live only).
		ways := map[string]func(*Broker) *Subscription{"Resume": func(b *Broker) *Subscription { return b.Resume(tt.filter, tt.lastID, 10) }}
		if tt.lastID > 0 {
			ways["Subscribe"] = func(b *Broker) *Subscription { return b.Subscribe(tt.filter, tt.lastID, 10) }
		}
		for way, subscribe := range ways {
			t.Run(way+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				b := NewBroker(tt.ringSize)
				for i := 1; i <= tt.published; i++ {
					f := uuid.Nil
					if i%2 == 0 {
						f = fa
					}
					publish(t, b, f, uuid.Nil)
				}
				s := subscribe(b)
				assert.Equal(t, tt.wantReset, s.Reset(), "reset")
				replay := s.Replay()
				assert.Equal(t, tt.wantReplay, nilIfEmpty(ids(replay)), "replay")
				assert.Nil(t, s.Replay(), "the replay is handed over once")

				// Live events continue right after the replay.
				next := publish(t, b, fa, uuid.Nil)
				if tt.filter.FactoryID == nil || *tt.filter.FactoryID == fa {
					assert.Equal(t, []uint64{next}, receive(t, s, 1))
				}
				requireNothingBuffered(t, s)
			})
		}
	}
}

func nilIfEmpty(s []uint64) []uint64 {
	if len(s) == 0 {
		return nil
	}
	return s
}

func TestResumeAcrossTheRingWrapLosesAndDuplicatesNothing(t *testing.T) {
	t.Parallel()
	b := NewBroker(7)
	var got []uint64
	var lastID uint64
	// A client that reads a few events, disconnects, and resumes, over and
	// over while the ring wraps many times.
	for round := range 50 {
		s := b.Subscribe(Filter{}, lastID, 10)
		require.False(t, s.Reset(), "round %d", round)
		for _, e := range s.Replay() {
			got = append(got, e.ID)
		}
		for range 3 {
			publish(t, b, uuid.Nil, uuid.Nil)
		}
		got = append(got, receive(t, s, 3)...)
		s.Close()
		lastID = got[len(got)-1]
		for range round % 5 { // published while disconnected; fits the ring
			publish(t, b, uuid.Nil, uuid.Nil)
		}
	}
	s := b.Subscribe(Filter{}, lastID, 10)
	require.False(t, s.Reset())
	got = append(got, ids(s.Replay())...)
	assert.Equal(t, seq(1, b.Published()), got)
}

func TestSlowSubscriberIsCutOffAndNeverBlocksPublishers(t *testing.T) {
	t.Parallel()
	const (
		publishers = 8
		perWorker  = 12_500
		total      = publishers * perWorker
		stuckBuf   = 16
	)
	b := NewBroker(DefaultRingSize)
	stuck := b.Subscribe(Filter{}, 0, stuckBuf) // never read until the end
	// The reader's buffer holds the whole run, so that the test checks
	// delivery and ordering, not whether the scheduler on a shared machine
	// lets the reader keep pace with 8 publishers.
	reader := b.Subscribe(Filter{}, 0, total)

	got := make(chan []uint64, 1)
	go func() {
		ids := make([]uint64, 0, total)
		consume(reader, func(e *Event) { ids = append(ids, e.ID) })
		got <- ids
	}()

	var wg sync.WaitGroup
	for range publishers {
		wg.Go(func() {
			for range perWorker {
				_, err := b.Publish(Event{Type: TypeGatewayState, Data: []byte(`{}`)})
				if err != nil {
					panic(err)
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		require.FailNow(t, "publishers blocked behind a subscriber that never reads")
	}

	assert.True(t, stuck.Overflowed())
	assert.Equal(t, stuckBuf, requireClosed(t, stuck), "it keeps what its buffer held")
	assert.Equal(t, uint64(1), b.Overflows())
	assert.Equal(t, uint64(total), b.Published())
	assert.Equal(t, 1, b.Subscribers())

	reader.Close() // ends the reading goroutine
	ids := <-got
	require.Len(t, ids, total)
	for i := range ids {
		require.Equal(t, uint64(i+1), ids[i], "ids must increase without gaps")
	}
	assert.False(t, reader.Overflowed())
}

func TestSubscribeConcurrentWithPublishHasNoGapNorDuplicate(t *testing.T) {
	t.Parallel()
	const (
		iterations = 200
		prefill    = 50
		limit      = 5000 // the publisher's bound, so the ring keeps everything
	)
	fa := uuid.New()
	inA := func(id uint64) bool { return id%3 == 0 }
	overlapped := 0
	for iter := range iterations {
		b := NewBroker(limit)
		pub := func(id uint64) {
			f := uuid.Nil
			if inA(id) {
				f = fa
			}
			got, err := b.Publish(Event{Type: TypeGatewayState, FactoryID: f, Data: []byte(`{}`)})
			if err != nil || got != id {
				panic(fmt.Sprintf("publish %d: got %d, %v", id, got, err))
			}
		}
		for id := uint64(1); id <= prefill; id++ {
			pub(id)
		}
		// The publisher runs until the three subscriptions are made (or it
		// reaches limit), so that they land while it publishes.
		started, stop, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			for id := uint64(prefill + 1); id <= limit; id++ {
				pub(id)
				if id == prefill+1 {
					close(started)
				}
				select {
				case <-stop:
					return
				default:
				}
			}
		}()
		<-started

		// Resume from a point the client saw, while publishing goes on.
		lastID := b.Published() - uint64(iter%prefill)
		resumed := b.Subscribe(Filter{}, lastID, limit)
		filtered := b.Subscribe(Filter{FactoryID: &fa}, lastID, limit)
		before := b.Published()
		live := b.Subscribe(Filter{}, 0, limit)
		after := b.Published()
		close(stop)
		<-done
		total := b.Published()

		require.False(t, resumed.Reset())
		assert.Equal(t, seq(lastID+1, total), drain(t, resumed), "iteration %d", iter)

		var wantA []uint64
		for id := lastID + 1; id <= total; id++ {
			if inA(id) {
				wantA = append(wantA, id)
			}
		}
		assert.Equal(t, wantA, drain(t, filtered), "iteration %d", iter)

		// The live subscription starts somewhere in [before, after]; from
		// there it must see every event.
		liveIDs := drain(t, live)
		if len(liveIDs) == 0 {
			assert.Equal(t, total, after, "iteration %d: no live events, yet %d were published after it", iter, total-after)
		} else {
			first := liveIDs[0]
			assert.True(t, first > before && first <= after+1, "iteration %d: first live id %d not in (%d, %d]", iter, first, before, after+1)
			assert.Equal(t, seq(first, total), liveIDs, "iteration %d", iter)
		}
		if lastID < before && before < total {
			overlapped++
		}
		b.Close()
	}
	// The test proves something only if subscribing overlapped publishing.
	t.Logf("%d of %d iterations subscribed while publishing", overlapped, iterations)
	assert.Greater(t, overlapped, iterations/10)
}

// drain returns the ids of s's replay and of its buffered live events, after
// publishing has finished.
func drain(t *testing.T, s *Subscription) []uint64 {
	t.Helper()
	out := append(ids(s.Replay()), ids(drainNext(s))...)
	require.False(t, s.Ended(), "ended")
	return nilIfEmpty(out)
}

func TestCloseEndsEverySubscriptionCleanly(t *testing.T) {
	t.Parallel()
	b := NewBroker(10)
	subs := []*Subscription{
		b.Subscribe(Filter{}, 0, 4),
		b.Subscribe(Filter{}, 0, 4),
		b.Subscribe(Filter{}, 0, 4),
	}
	publish(t, b, uuid.Nil, uuid.Nil)
	b.Close()
	b.Close() // idempotent
	assert.Equal(t, 0, b.Subscribers())
	for _, s := range subs {
		assert.Equal(t, 1, requireClosed(t, s), "buffered events stay readable")
		assert.False(t, s.Overflowed())
		s.Close() // after Broker.Close: no double close
	}

	id, err := b.Publish(Event{Type: TypeGatewayState})
	require.NoError(t, err)
	assert.Zero(t, id, "Publish after Close is a no-op")
	assert.Equal(t, uint64(1), b.Published())

	late := b.Subscribe(Filter{}, 1, 4)
	assert.Equal(t, 0, requireClosed(t, late))
	assert.False(t, late.Reset())
	assert.Empty(t, late.Replay())
	assert.Equal(t, 0, b.Subscribers())
}

func TestSubscriptionCloseIsIdempotentAndLeavesOthersAlone(t *testing.T) {
	t.Parallel()
	b := NewBroker(10)
	a := b.Subscribe(Filter{}, 0, 4)
	c := b.Subscribe(Filter{}, 0, 4)
	d := b.Subscribe(Filter{}, 0, 4)
	a.Close()
	a.Close()
	assert.Equal(t, 2, b.Subscribers())
	assert.Equal(t, 0, requireClosed(t, a))
	assert.False(t, a.Overflowed())

	id := publish(t, b, uuid.Nil, uuid.Nil)
	assert.Equal(t, []uint64{id}, receive(t, c, 1))
	assert.Equal(t, []uint64{id}, receive(t, d, 1))
	assert.Equal(t, uint64(0), b.Overflows())
}

func TestOverflowKeepsTheOtherSubscribersInTheList(t *testing.T) {
	t.Parallel()
	// Overflow removes a subscriber from the middle of the list while
	// Publish walks it; the subscriber moved into its slot must still get
	// the event.
	b := NewBroker(10)
	first := b.Subscribe(Filter{}, 0, 10)
	slow := b.Subscribe(Filter{}, 0, 1)
	last := b.Subscribe(Filter{}, 0, 10)
	publish(t, b, uuid.Nil, uuid.Nil)
	publish(t, b, uuid.Nil, uuid.Nil)
	assert.True(t, slow.Overflowed())
	assert.Equal(t, 1, requireClosed(t, slow))
	assert.Equal(t, []uint64{1, 2}, receive(t, first, 2))
	assert.Equal(t, []uint64{1, 2}, receive(t, last, 2))
	assert.Equal(t, 2, b.Subscribers())
	assert.Equal(t, uint64(1), b.Overflows())
}

func TestCloseConcurrentWithPublish(t *testing.T) {
	t.Parallel()
	b := NewBroker(100)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := b.Publish(Event{Type: TypeGatewayState}); err != nil {
					panic(err)
				}
			}
		})
	}
	for i := range 2000 {
		s := b.Subscribe(Filter{}, b.Published(), 1+i%3)
		if i%2 == 0 {
			s.Close()
		}
		s.Close()
	}
	b.Close() // while publishers are still running
	published := b.Published()
	close(stop)
	wg.Wait()
	assert.Equal(t, published, b.Published(), "nothing published after Close")
	assert.Equal(t, 0, b.Subscribers())
}

func TestNegativeRingSizePanics(t *testing.T) {
	t.Parallel()
	assert.Panics(t, func() { NewBroker(-1) })
}

func TestBufferBelowOneIsOne(t *testing.T) {
	t.Parallel()
	b := NewBroker(10)
	s := b.Subscribe(Filter{}, 0, 0)
	publish(t, b, uuid.Nil, uuid.Nil)
	assert.False(t, s.Overflowed())
	publish(t, b, uuid.Nil, uuid.Nil)
	assert.True(t, s.Overflowed())
}

// Ids that start after a process's start time keep increasing across
// restarts: a client of the earlier process is told to reset.
func TestIDsAfterARestartResetEarlierClients(t *testing.T) {
	first := NewBrokerAfter(10, 1_000)
	id, err := first.Publish(Event{Type: TypeGatewayCreated, Data: []byte(`{}`)})
	require.NoError(t, err)
	assert.Equal(t, uint64(1_001), id)
	second := NewBrokerAfter(10, 2_000)
	for range 3 {
		_, err := second.Publish(Event{Type: TypeGatewayCreated, Data: []byte(`{}`)})
		require.NoError(t, err)
	}
	sub := second.Subscribe(Filter{}, id, 10)
	defer sub.Close()
	assert.True(t, sub.Reset())
	assert.Len(t, sub.Replay(), 3)
}

// A subscription's buffer is a ring: taking and putting in turn wraps it
// many times over without a loss or an overflow, a token is left for each
// put the reader has not looked at yet, and a full ring overflows at the
// next matching event while what it holds stays readable.
func TestSubscriptionBufferWrapsAndOverflows(t *testing.T) {
	t.Parallel()
	b := NewBroker(0)
	s := b.Subscribe(Filter{}, 0, 3)
	f, g := uuid.New(), uuid.New()
	var want, got []uint64
	for round := range 10 {
		for range round%3 + 1 {
			want = append(want, publish(t, b, f, g))
		}
		select {
		case <-s.Ready():
		default:
			require.FailNow(t, "no token after a put")
		}
		got = append(got, ids(drainNext(s))...)
		requireNothingBuffered(t, s)
	}
	assert.Equal(t, want, got)
	assert.Zero(t, b.Overflows())

	held := []uint64{publish(t, b, f, g), publish(t, b, f, g), publish(t, b, f, g)}
	assert.Equal(t, 3, s.Len())
	assert.False(t, s.Ended())
	publish(t, b, f, g) // the fourth does not fit
	assert.True(t, s.Ended())
	assert.True(t, s.Overflowed())
	assert.Equal(t, uint64(1), b.Overflows())
	assert.Equal(t, held, ids(drainNext(s)))
	publish(t, b, f, g)
	assert.Nil(t, s.Next(), "nothing is put after the end")
}

// drainNext takes every event s holds now.
func drainNext(s *Subscription) []*Event {
	var out []*Event
	for e := s.Next(); e != nil; e = s.Next() {
		out = append(out, e)
	}
	return out
}

// Publish copies e.Data into the frame, and the published event's Data is
// that copy: a publisher that reuses its buffer afterwards changes neither
// what subscribers read nor what they write.
func TestPublishedDataIsACopy(t *testing.T) {
	t.Parallel()
	b := NewBroker(4)
	publish(t, b, uuid.Nil, uuid.Nil) // so that a resume from it replays ours
	s := b.Subscribe(Filter{}, 0, 4)
	buf := []byte(`{"n":1}`)
	_, err := b.Publish(Event{Type: TypeGatewayUpdated, Data: buf})
	require.NoError(t, err)
	copy(buf, `{"n":2}`)
	e := next(t, s)
	assert.Equal(t, `{"n":1}`, string(e.Data))
	assert.Contains(t, string(e.frame), "data: {\"n\":1}\n")
	replayed := b.Subscribe(Filter{}, e.ID-1, 4).Replay()
	require.Len(t, replayed, 1)
	assert.Equal(t, `{"n":1}`, string(replayed[0].Data))
}

// The buffer is a chain of segments: a reader taking events while a
// publisher puts them, across many segment boundaries and with the
// backlog rising and falling, gets every event once and in order, and a
// buffer that fills across segments overflows at its limit, not at a
// segment's end. Run under -race, this also checks the hand-over of
// segments between the two goroutines. Would catch: an event lost or
// repeated where a segment ends; a spare segment reused while the reader
// still reads it.
func TestSubscriptionSegmentsChainAcrossBoundaries(t *testing.T) {
	t.Parallel()
	b := NewBroker(0)
	const n = 20 * segmentSize
	s := b.Subscribe(Filter{}, 0, n)
	f, g := uuid.New(), uuid.New()
	got := make(chan []uint64, 1)
	go func() {
		var ids []uint64
		for len(ids) < n {
			<-s.Ready()
			for e := s.Next(); e != nil; e = s.Next() {
				ids = append(ids, e.ID)
			}
		}
		got <- ids
	}()
	var want []uint64
	for i := range n {
		want = append(want, publish(t, b, f, g))
		if i%(3*segmentSize) == 0 {
			runtime.Gosched() // let the reader catch up now and then: the backlog rises and falls
		}
	}
	select {
	case ids := <-got:
		assert.Equal(t, want, ids)
	case <-time.After(10 * time.Second):
		t.Fatal("the reader did not get every event")
	}
	assert.Zero(t, b.Overflows())

	limit := 2*segmentSize + 5
	full := b.Subscribe(Filter{}, 0, limit)
	for range limit {
		publish(t, b, f, g)
	}
	assert.False(t, full.Ended(), "a buffer of %d holds %d events", limit, limit)
	publish(t, b, f, g)
	assert.True(t, full.Overflowed())
	assert.Len(t, drainNext(full), limit)
}

// README (EVENTS_CLIENT_BUFFER): a client's buffer holds 8 bytes per
// event it is behind, not per event it may fall behind. 100 idle
// subscriptions with a buffer of 10,000 allocate a segment each (~1 KiB),
// where the whole ring (80 KiB each, 8 MB in all) was allocated before.
// Not parallel: it reads the process's allocation counter.
func TestAnIdleSubscriptionHoldsLittle(t *testing.T) {
	b := NewBroker(10)
	var before, after runtime.MemStats
	subs := make([]*Subscription, 100)
	runtime.ReadMemStats(&before)
	for i := range subs {
		subs[i] = b.Subscribe(Filter{}, 0, 10_000)
	}
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	assert.Less(t, allocated, uint64(1<<20), "100 idle subscriptions allocated %d bytes", allocated)
	for _, s := range subs {
		s.Close()
	}
}
