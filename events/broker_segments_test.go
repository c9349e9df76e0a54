package events

// (Checked by an audit, helper 2, whose tests these are.)

import (
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The segment chain under a randomized load (fixed seeds): subscribers
// whose limits sit on and around segment boundaries, read by goroutines
// that take a few events at a time, pause, or close their subscription
// part way, while two publishers race them, then Broker.Close. Each
// subscriber must get a gapless, increasing run of its events from the
// first (every event, unless it overflowed or left), and one that
// overflowed must have got exactly limit events more than it had taken
// when it was cut off, at whatever offset in a segment that fell. Run
// under -race, it also checks the segments handed from the reader back
// to the writer (spare). Would catch: an event lost, repeated or read
// from a reused segment at a boundary; an overflow a segment early or
// late.
func TestSegmentChainRandomized(t *testing.T) {
	t.Parallel()
	limits := []int{1, 2, segmentSize - 1, segmentSize, segmentSize + 1, 2*segmentSize - 1, 2 * segmentSize, 3*segmentSize + 7, 5000}
	for seed := range uint64(6) {
		rng := rand.New(rand.NewPCG(seed, 42))
		b := NewBroker(0)
		f := uuid.New()
		gA, gB := uuid.New(), uuid.New()
		type result struct {
			ids        []uint64
			limit      int
			filtered   bool
			overflowed bool
			closed     bool
		}
		subs := 6
		results := make([]result, subs)
		var readers sync.WaitGroup
		for i := range subs {
			limit := limits[rng.IntN(len(limits))]
			filtered := i%3 == 2
			var s *Subscription
			if filtered {
				g := gA
				s = b.Subscribe(Filter{GatewayID: &g}, 0, limit)
			} else {
				s = b.Subscribe(Filter{}, 0, limit)
			}
			closeAfter := -1
			if rng.IntN(4) == 0 {
				closeAfter = rng.IntN(3 * segmentSize)
			}
			pace := rand.New(rand.NewPCG(seed, uint64(i)))
			readers.Add(1)
			go func() {
				defer readers.Done()
				r := result{limit: limit, filtered: filtered}
				defer func() { results[i] = r }()
				for {
					<-s.Ready()
					ended := s.Ended()
					take := 1 + pace.IntN(2*segmentSize)
					for e := s.Next(); e != nil; e = s.Next() {
						r.ids = append(r.ids, e.ID)
						if closeAfter >= 0 && len(r.ids) >= closeAfter && !r.closed {
							s.Close()
							r.closed = true
						}
						if take--; take == 0 && !ended {
							break
						}
					}
					if ended && s.Len() == 0 {
						r.overflowed = s.Overflowed()
						return
					}
					switch pace.IntN(4) {
					case 0:
						runtime.Gosched()
					case 1:
						time.Sleep(time.Duration(pace.IntN(50)) * time.Microsecond)
					}
					if take == 0 {
						s.wake() // more to take: look again
					}
				}
			}()
		}
		const n = 20 * segmentSize
		var pubs sync.WaitGroup
		var mu sync.Mutex
		var ofA []uint64
		for p := range 2 {
			pubs.Add(1)
			go func() {
				defer pubs.Done()
				for range n / 2 {
					g := gB
					if p == 0 {
						g = gA
					}
					id := publish(t, b, f, g)
					if p == 0 {
						mu.Lock()
						ofA = append(ofA, id)
						mu.Unlock()
					}
				}
			}()
		}
		pubs.Wait()
		b.Close()
		done := make(chan struct{})
		go func() { readers.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("seed %d: a reader never saw its subscription end", seed)
		}
		for i, r := range results {
			want := make([]uint64, 0, n)
			if r.filtered {
				want = append(want, ofA...)
			} else {
				for id := uint64(1); id <= n; id++ {
					want = append(want, id)
				}
			}
			require.LessOrEqual(t, len(r.ids), len(want), "seed %d sub %d", seed, i)
			require.Equal(t, want[:len(r.ids)], r.ids, "seed %d sub %d (limit %d): a gapless run of its events from the first", seed, i, r.limit)
			if !r.overflowed && !r.closed {
				assert.Len(t, r.ids, len(want), "seed %d sub %d: every event", seed, i)
			}
		}
	}
}

// A subscriber that takes nothing overflows at exactly its limit,
// whatever offset in a segment it had reached when it stopped reading:
// it gets every event it was let fall behind, and not one more. Would
// catch: the full check counting the segment's slots instead of the
// limit.
func TestOverflowAtTheLimitWhateverTheOffset(t *testing.T) {
	t.Parallel()
	f, g := uuid.New(), uuid.New()
	for _, limit := range []int{1, segmentSize - 1, segmentSize, segmentSize + 1, 3 * segmentSize} {
		for _, taken := range []int{0, 1, segmentSize - 1, segmentSize, segmentSize + 1, 2*segmentSize + 3} {
			b := NewBroker(0)
			s := b.Subscribe(Filter{}, 0, limit)
			var got []uint64
			for range taken { // keep up for a while
				id := publish(t, b, f, g)
				e := s.Next()
				require.NotNil(t, e)
				require.Equal(t, id, e.ID)
				got = append(got, e.ID)
			}
			for range limit {
				publish(t, b, f, g)
			}
			require.False(t, s.Ended(), "limit %d after %d taken: %d behind is not over", limit, taken, limit)
			require.Equal(t, limit, s.Len())
			publish(t, b, f, g)
			require.True(t, s.Overflowed(), "limit %d after %d taken", limit, taken)
			for _, e := range drainNext(s) {
				got = append(got, e.ID)
			}
			require.Len(t, got, taken+limit)
			for i, id := range got {
				require.Equal(t, uint64(i+1), id)
			}
		}
	}
}

// README (EVENTS_CLIENT_BUFFER): a stream that keeps up holds two
// segments (2 KiB), the one it reads and the spare, whatever it has
// taken; one that fell a whole buffer behind and caught up is back to
// two. Would catch: spent segments kept (a stream's memory growing with
// what it has streamed), or the claim of 1 KiB, which holds only for
// the first 128 events.
func TestAStreamThatKeepsUpHoldsTwoSegments(t *testing.T) {
	t.Parallel()
	held := func(s *Subscription) int {
		n := 0
		for seg := s.rseg; seg != nil; seg = seg.next.Load() {
			n++
		}
		if s.spare.Load() != nil {
			n++
		}
		return n
	}
	b := NewBroker(0)
	f, g := uuid.New(), uuid.New()
	s := b.Subscribe(Filter{}, 0, 10_000)
	for range 1000 {
		publish(t, b, f, g)
		require.NotNil(t, s.Next())
		require.LessOrEqual(t, held(s), 2)
	}
	for range 10_000 {
		publish(t, b, f, g)
	}
	// 10,000 events straddle at most 80 segments, and a spare: about 80 KiB.
	assert.LessOrEqual(t, held(s), 10_000/segmentSize+2, "a full buffer: the pieces it needs, and the spare")
	assert.Len(t, drainNext(s), 10_000)
	assert.LessOrEqual(t, held(s), 2, "caught up: the rest given back")
}
