package actors

import (
	"cmp"
	"slices"
	"sync"
	"time"
)

// slowShare counts the large messages that turned slow (see openMessage),
// up to limit bytes between them; one message passes alone whatever its
// size, as in the intake.
//
// When a message does not fit, it takes the place of larger ones, which
// are stalled (evicted), if that makes room; else it is stalled itself.
// First come, first kept, one gateway that trickled a message into the
// share (a byte every few seconds, its buffer grown to the read limit by
// what it sent first) held it until the reading timeout, and a gateway
// on a slow link whose reading, sent steadily, turned slow meanwhile was
// stalled ("other slow messages hold their share"): a hostile gateway
// made another's connection fail (found by an audit, helper 2). Honest
// readings are a few hundred KiB; to fill the share with messages no
// larger takes tens of gateways. Only a larger message gives way, so
// two of one size never evict each other, unless one has stalled: of two
// of a size, one that read less than progressEvery bytes in the last
// quarter of the pong timeout gives way to one that did. Buffers grow by
// doubling (and a pooled one may be larger than a message needs), so
// sizes tie often: a steady reading whose pooled buffer was as large as
// the trickle's buffer was stalled, and the trickle kept its place (a
// flake of TestATrickleCannotStallASteadySlowMessage in CI).
type slowShare struct {
	limit int64

	mu    sync.Mutex
	bytes int64
	// in are the messages counted, each with its inShare; guarded by mu.
	in map[*openMessage]struct{}
}

func newSlowShare(limit int64) *slowShare {
	return &slowShare{limit: limit, in: make(map[*openMessage]struct{})}
}

// take counts n more bytes for m if they fit, or if they fit once the
// messages larger than m would then be are evicted (those are, largest
// first, as many as it takes). It reports false, counting and evicting
// nothing, when they do not, or when m itself has been evicted. A nil
// share counts nothing and always has room.
func (s *slowShare) take(m *openMessage, n int64) bool {
	if s == nil {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if m.evicted.Load() {
		return false
	}
	fits := func(bytes int64) bool { return bytes <= 0 || bytes+n <= s.limit }
	if !fits(s.bytes) {
		after := m.inShare + n
		now := time.Now()
		moving := m.progressing(now)
		var larger []*openMessage
		for o := range s.in {
			if o != m && (o.inShare > after || o.inShare == after && moving && !o.progressing(now)) {
				larger = append(larger, o)
			}
		}
		slices.SortFunc(larger, func(a, b *openMessage) int { return cmp.Compare(b.inShare, a.inShare) })
		left, k := s.bytes, 0
		for ; k < len(larger) && !fits(left); k++ {
			left -= larger[k].inShare
		}
		if !fits(left) {
			return false
		}
		for _, o := range larger[:k] {
			s.evictLocked(o)
		}
	}
	s.bytes += n
	m.inShare += n
	s.in[m] = struct{}{}
	return true
}

// evictLocked takes o out of the share and ends its Read at once (see
// openMessage.Read), under s.mu: o gives back (give) only after, and
// clears its deadline (close) only after that, so the deadline set here
// never outlives the message. s.mu must be held.
func (s *slowShare) evictLocked(o *openMessage) {
	s.bytes -= o.inShare
	o.inShare = 0
	delete(s.in, o)
	o.evicted.Store(true)
	_ = o.ws.SetReadDeadline(evictedDeadline)
}

// evictedDeadline is a read deadline in the past: it ends a blocked Read.
var evictedDeadline = time.Unix(1, 0)

// give takes m out of the share with what it counts for it (nothing if
// it was evicted).
func (s *slowShare) give(m *openMessage) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bytes -= m.inShare
	m.inShare = 0
	delete(s.in, m)
}

// held is the bytes counted, for tests.
func (s *slowShare) held() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}
