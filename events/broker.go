package events

import (
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"
)

// DefaultRingSize is EVENTS_BUFFER's default: how many recent events a
// reconnecting client can resume from.
const DefaultRingSize = 10_000

// Broker numbers events, keeps the most recent ones in a ring and fans
// them out to subscribers. All methods are safe for concurrent use.
//
// One mutex guards numbering, the ring and the subscriber list, so that a
// subscription's replay and its live events meet without gap or duplicate,
// and every subscriber sees increasing ids. Publish holds it for the id
// line, the ring write and one put per matching subscriber into that
// subscriber's own buffer (a slot and an atomic counter, no lock; see
// Subscription); it never waits for a subscriber to read.
//
// A published event is one immutable *Event, its SSE frame encoded once
// (see WriteSSE), shared by the ring and every subscriber: a slot of a
// subscriber's buffer is one pointer, 8 bytes, whatever the event's size.
type Broker struct {
	mu sync.Mutex
	// replaying lets one resume at a time copy its replay under mu, so
	// that a publisher waits for one copy at most, not for every client
	// resuming at once (found by an audit, helper 4).
	replaying sync.Mutex
	last      uint64   // id of the newest event; 0 before the first
	ring      []*Event // fixed length; ring[next] is overwritten next
	size      int      // len(ring) as made, read without mu (replay's room)
	first     uint64   // the first event's id, less one (NewBrokerAfter)
	next      int
	n         int // events held in the ring, up to len(ring)
	subs      []*Subscription
	closed    bool

	// Counters for the metrics layer, written under mu, read without it.
	published   atomic.Uint64
	subscribers atomic.Int64
	overflows   atomic.Uint64
}

// NewBroker returns a broker that keeps the last ringSize events for
// resuming clients (EVENTS_BUFFER). A ringSize of 0 keeps none: every
// resume that missed something gets a reset. It panics if ringSize is
// negative, which is a wiring bug, not a runtime condition.
func NewBroker(ringSize int) *Broker {
	return NewBrokerAfter(ringSize, 0)
}

// NewBrokerAfter is NewBroker whose first event gets id after+1. A process
// that starts its ids after its start time in microseconds keeps ids
// increasing across restarts, so a client's Last-Event-ID from an earlier
// process is always older than the ring and gets a reset, never a wrong
// resume (such ids stay below 2^53, exact in JavaScript).
func NewBrokerAfter(ringSize int, after uint64) *Broker {
	if ringSize < 0 {
		panic(fmt.Sprintf("events: negative ring size %d", ringSize))
	}
	return &Broker{ring: make([]*Event, ringSize), size: ringSize, first: after, last: after}
}

// Publish numbers e, encodes its SSE frame, keeps it in the ring and sends
// it to every matching subscriber without blocking, and returns its id.
// e.ID is ignored; e.Data is copied into the frame, and the published
// event's Data is that copy. After Close it does nothing and returns 0:
// publishers racing shutdown need not care. It returns ErrInvalidEvent,
// and publishes nothing, for an event WriteSSE could not frame.
func (b *Broker) Publish(e Event) (uint64, error) {
	if err := e.validate(); err != nil {
		return 0, err
	}
	// Everything of the frame but the id is written before taking the lock.
	p := &e
	buf := encodeTail(p)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, nil
	}
	b.last++
	p.ID = b.last
	p.frame = putID(buf, p.ID)
	if len(b.ring) > 0 {
		b.ring[b.next] = p
		b.next++
		if b.next == len(b.ring) {
			b.next = 0
		}
		if b.n < len(b.ring) {
			b.n++
		}
	}
	b.published.Add(1)

	for i := 0; i < len(b.subs); {
		s := b.subs[i]
		if !s.filter.match(p) {
			i++
			continue
		}
		if s.put(p) {
			i++
			continue
		}
		// Its buffer is full: cut it off rather than wait or drop
		// silently. detach moves the last subscriber into slot i, which
		// is then looked at in the next round.
		s.overflowed.Store(true)
		b.overflows.Add(1)
		b.detach(s)
	}
	return p.ID, nil
}

// idRoom is the longest id line, "id: " and a uint64's 20 digits and a
// newline, which encodeTail leaves room for in front of the frame.
const idRoom = len("id: \n") + 20

// encodeTail allocates e's frame with idRoom bytes in front for the id
// line and writes the rest: the event and data lines and the blank line.
// e.Data becomes the frame's copy of the data. Publish then only writes
// the id under its lock (putID).
func encodeTail(e *Event) []byte {
	data := e.Data
	if len(data) == 0 {
		data = emptyData
	}
	buf := make([]byte, idRoom, idRoom+len("event: \ndata: \n\n")+len(e.Type)+len(data))
	buf = append(buf, "event: "...)
	buf = append(buf, e.Type...)
	buf = append(buf, "\ndata: "...)
	at := len(buf)
	buf = append(buf, data...)
	if len(e.Data) > 0 {
		e.Data = buf[at:len(buf):len(buf)]
	}
	return append(buf, "\n\n"...)
}

var emptyData = []byte("{}")

// putID writes "id: <id>\n" right in front of the tail that encodeTail
// wrote and returns the whole frame.
func putID(buf []byte, id uint64) []byte {
	var digits [20]byte
	d := strconv.AppendUint(digits[:0], id, 10)
	start := idRoom - len("id: \n") - len(d)
	n := copy(buf[start:], "id: ")
	n += copy(buf[start+n:], d)
	buf[start+n] = '\n'
	return buf[start:]
}

// PublishJSON marshals payload once, then publishes it as Publish does.
// encoding/json compacts even a json.Marshaler's output, so the data is
// always one line. A marshalling error is returned and nothing published.
func (b *Broker) PublishJSON(typ string, factoryID, gatewayID uuid.UUID, payload any) (uint64, error) {
	data, err := json.Marshal(payload)
	if err != nil {
		return 0, fmt.Errorf("events: marshal %s: %w", typ, err)
	}
	return b.Publish(Event{Type: typ, FactoryID: factoryID, GatewayID: gatewayID, Data: data})
}

// Subscribe starts a subscription for the events that match f.
//
// lastID is the client's Last-Event-ID; 0 means live events only. Taken
// under the publishing lock, the subscription's Replay holds the ring's
// matching events with an id above lastID, and its buffer (Next) every
// matching event published afterwards: no gap, no duplicate. If events after
// lastID have already left the ring, or lastID is newer than any event
// (the client's id is from a previous process, whose ids also started at
// 1), Reset reports true and Replay holds every matching event in the
// ring: the client must discard what it knows and rebuild.
//
// buffer is how many live events the subscriber may fall behind before it
// is cut off (Overflowed); below 1 it is 1. The replay does not count
// against it: it is handed over as a slice, so a resume after a long gap
// neither overflows at once nor keeps a buffer sized for the replay for
// the rest of the stream. The buffer holds one pointer (8 bytes) per
// event it holds, in segments of 128 made as it fills (see Subscription):
// 2 KiB while the stream keeps up (the segment it reads and a spare),
// about 80 KiB at most for a buffer of 10,000.
//
// Publishers wait while the replay is copied (its slice is allocated
// before the lock, and one resume copies at a time): a few microseconds
// for a full ring of 10,000 events, more while the GC runs. An id
// from a previous process that is not above the newest id cannot be told
// from one of ours and resumes as if it were.
//
// After Close, Subscribe returns a subscription that has already ended.
func (b *Broker) Subscribe(f Filter, lastID uint64, buffer int) *Subscription {
	return b.subscribe(f, lastID, lastID > 0, buffer)
}

// Resume is Subscribe for a client that gave a Last-Event-ID, 0 included:
// 0 is before the first event, so it replays the whole ring, with a reset
// first unless the ring still holds event 1 (gatewayd's ids start from
// the process's start time, so its clients always get the reset), where
// Subscribe takes 0 as no resume.
func (b *Broker) Resume(f Filter, lastID uint64, buffer int) *Subscription {
	return b.subscribe(f, lastID, true, buffer)
}

func (b *Broker) subscribe(f Filter, lastID uint64, resume bool, buffer int) *Subscription {
	if buffer < 1 {
		buffer = 1
	}
	first := new(segment)
	s := &Subscription{b: b, filter: f.clone(), idx: -1, limit: uint64(buffer), wseg: first, rseg: first, ready: make(chan struct{}, 1)}
	// The replay's room is made before the lock: made under it (80 KiB
	// for a ring of 10,000, and what the GC made the allocation pay),
	// clients resuming in a loop held every publisher, the runtime's
	// actors among them, up to 300 ms (found by an audit, helper 4). One
	// resume copies at a time, so a publisher waits for one copy at most.
	var room []*Event
	if resume && b.size > 0 {
		// As many as were published after lastID, and some that may be
		// meanwhile (past it append grows it, under the lock); the whole
		// ring for a reset.
		need := b.size
		if newest := b.first + b.published.Load(); lastID <= newest && newest-lastID < uint64(b.size) {
			need = min(int(newest-lastID)+replaySlack, b.size)
		}
		room = make([]*Event, 0, need)
		b.replaying.Lock()
		defer b.replaying.Unlock()
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		s.end()
		return s
	}
	if resume {
		oldest := b.last - uint64(b.n) + 1 // b.last+1 when the ring is empty
		future := lastID > b.last          // from a previous process
		lost := lastID+1 < oldest          // events after lastID left the ring
		if future || lost {
			s.reset = true
			s.replay = b.replay(room, s.filter, 0)
		} else {
			s.replay = b.replay(room, s.filter, lastID)
		}
	}
	s.idx = len(b.subs)
	b.subs = append(b.subs, s)
	b.subscribers.Store(int64(len(b.subs)))
	return s
}

// replaySlack is the room a replay has for events published between its
// allocation and its copy.
const replaySlack = 64

// replay copies, oldest first, the ring's events that match f and have an
// id above after, into room (made by the caller before taking b.mu, with
// room for them: nothing is allocated under the lock, as a rule). The copy
// is bounded by the ring, not by any subscriber: an unfiltered replay is
// two bulk copies. b.mu must be held.
func (b *Broker) replay(room []*Event, f Filter, after uint64) []*Event {
	older, newer := b.since(after)
	if f.FactoryID == nil && f.GatewayID == nil {
		if len(older)+len(newer) == 0 {
			return nil
		}
		return append(append(room, older...), newer...)
	}
	out := room
	for _, part := range [2][]*Event{older, newer} {
		for i := range part {
			if f.match(part[i]) {
				out = append(out, part[i])
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// since returns the ring's events with an id above after, oldest first, as
// the two contiguous parts of the ring they occupy. b.mu must be held.
func (b *Broker) since(after uint64) (older, newer []*Event) {
	skip := 0
	if oldest := b.last - uint64(b.n) + 1; after >= oldest {
		skip = int(after - oldest + 1)
	}
	count := b.n - skip
	if count <= 0 {
		return nil, nil
	}
	begin := b.next - count // the ring's next slot follows its newest event
	if begin >= 0 {
		return b.ring[begin:b.next], nil
	}
	return b.ring[begin+len(b.ring):], b.ring[:b.next]
}

// detach removes s from the subscriber list and ends it. Every end
// happens under b.mu, so nothing is put into a subscription after it
// ended. b.mu must be held.
func (b *Broker) detach(s *Subscription) {
	if s.idx < 0 {
		return
	}
	last := len(b.subs) - 1
	moved := b.subs[last]
	b.subs[s.idx] = moved
	moved.idx = s.idx
	b.subs[last] = nil
	b.subs = b.subs[:last]
	s.idx = -1
	s.end()
	b.subscribers.Store(int64(len(b.subs)))
}

// Close ends every subscription, with Overflowed false, so that every
// stream finishes cleanly at shutdown; later Publish calls do nothing and
// later subscriptions start closed. Close is idempotent.
func (b *Broker) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	for _, s := range b.subs {
		s.idx = -1
		s.end()
	}
	b.subs = nil
	b.ring = nil // nothing can be replayed any more
	b.n, b.next = 0, 0
	b.subscribers.Store(0)
}

// Subscribers is the number of live subscriptions.
func (b *Broker) Subscribers() int { return int(b.subscribers.Load()) }

// Published is the number of events published, which is also the newest
// id.
func (b *Broker) Published() uint64 { return b.published.Load() }

// Overflows is the number of subscriptions cut off because they fell a
// full buffer behind.
func (b *Broker) Overflows() uint64 { return b.overflows.Load() }

// Subscription is one subscriber's view of the broker. Ready, Ended,
// Overflowed and Close may be used from any goroutine; Next, Reset and
// Replay belong to the goroutine that writes the stream.
//
// Its buffer is a queue with one writer, Publish (holding b.mu), and one
// reader, the stream: put stores a slot and then advances head, Next takes
// the slot at tail and then advances tail, so neither takes a lock. It
// replaced a buffered channel per subscriber: with 100 subscribers the
// channels' sends and receives, each taking the channel's lock while the
// stream drained it, cost Publish ~6 µs an event, on the goroutine of the
// actor that published it; now under 1 µs (BENCHMARKS.md, 2026-12-05
// second session; a watched reconnect storm did not end sooner: its cost
// is the bytes streamed).
//
// The queue is a chain of segments of segmentSize slots, made as it fills
// and dropped as the stream takes them (one spent segment is kept for the
// writer to reuse), so a subscriber holds memory for what it is behind,
// not for how far it may fall behind: a ring of EVENTS_CLIENT_BUFFER
// slots, made whole at the start, cost every stream 80 KiB, idle or not,
// and a client could open its share of connections as streams.
type Subscription struct {
	b      *Broker
	filter Filter
	idx    int // position in b.subs, -1 once detached; guarded by b.mu

	limit      uint64   // how many events it may fall behind
	wseg       *segment // the segment put writes into; guarded by b.mu
	rseg       *segment // the segment Next reads from; the stream's
	spare      atomic.Pointer[segment]
	head, tail atomic.Uint64 // events put (by Publish), events taken (by Next)
	// ready holds a token when the stream has something to look at: an
	// event put since it last took the token, or the end.
	ready      chan struct{}
	ended      atomic.Bool
	overflowed atomic.Bool
	reset      bool     // fixed by Subscribe
	replay     []*Event // handed over by Replay
}

// segmentSize is the slots of one segment of a subscription's queue:
// 1 KiB of pointers, a new one (or the spare) every 128 events put.
const segmentSize = 128

// segment is a piece of a subscription's queue. next is set by the
// writer before head moves past the segment's end, so the reader that
// sees head there sees next.
type segment struct {
	ev   [segmentSize]*Event
	next atomic.Pointer[segment]
}

// put appends e unless the buffer is full. b.mu must be held.
func (s *Subscription) put(e *Event) bool {
	h := s.head.Load()
	if h-s.tail.Load() >= s.limit {
		return false
	}
	i := h % segmentSize
	if i == 0 && h > 0 { // the segment is full: chain the next one
		n := s.spare.Swap(nil)
		if n == nil {
			n = new(segment)
		}
		s.wseg.next.Store(n)
		s.wseg = n
	}
	s.wseg.ev[i] = e
	s.head.Store(h + 1)
	s.wake()
	return true
}

// wake leaves a token in ready. When one is already there (the stream has
// not looked since), this is a check of the channel's length, no lock.
func (s *Subscription) wake() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// end marks the subscription ended and wakes the stream. b.mu must be
// held (or s not yet shared).
func (s *Subscription) end() {
	s.ended.Store(true)
	s.wake()
}

// Reset reports whether the client's Last-Event-ID could not be resumed
// from: events were lost, or the id is from another process. The stream
// then starts with "event: reset" (WriteReset) before the replay.
func (s *Subscription) Reset() bool { return s.reset }

// Replay hands over the events to send before any live one, oldest
// first. It gives the slice away: later calls return nil, so the backlog
// is garbage once the caller has written it. The events are shared: read
// them, never modify them.
func (s *Subscription) Replay() []*Event {
	r := s.replay
	s.replay = nil
	return r
}

// Ready receives a token when live events may be waiting or the
// subscription may have ended: then take them with Next until it returns
// nil, and look at Ended. A token can come with nothing new (it was left
// by events already taken).
func (s *Subscription) Ready() <-chan struct{} { return s.ready }

// Next takes the oldest live event the buffer holds, or returns nil when
// it holds none now. Events come in increasing id order, shared with the
// ring and every other subscriber: read them, never modify them.
func (s *Subscription) Next() *Event {
	t := s.tail.Load()
	if t == s.head.Load() {
		return nil
	}
	i := t % segmentSize
	if i == 0 && t > 0 { // on to the next segment; the writer is past this one
		spent := s.rseg
		s.rseg = spent.next.Load()
		spent.next.Store(nil)
		s.spare.Store(spent) // its slots were cleared as they were taken
	}
	e := s.rseg.ev[i]
	s.rseg.ev[i] = nil // the event is the ring's and the other subscribers' now
	s.tail.Store(t + 1)
	return e
}

// Len is how many live events the buffer holds.
func (s *Subscription) Len() int {
	t := s.tail.Load() // first: head only grows, so head read after it is not below it
	return int(s.head.Load() - t)
}

// Ended reports whether the subscription has ended: by Close, by
// Broker.Close, or because it overflowed. Nothing is put into it after
// that, so a stream that saw Ended true and then took every event with
// Next has all there will be.
func (s *Subscription) Ended() bool { return s.ended.Load() }

// Overflowed reports whether the subscription was cut off because its
// buffer filled. Read it once Ended: true means the stream should end with
// "event: overflow" (WriteOverflow); the client reconnects with its
// Last-Event-ID and resumes from the ring.
func (s *Subscription) Overflowed() bool { return s.overflowed.Load() }

// Close unsubscribes. It is idempotent and safe concurrently with Publish
// and Broker.Close; events still buffered stay readable with Next.
func (s *Subscription) Close() {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.detach(s)
}
