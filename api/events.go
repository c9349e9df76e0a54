package api

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ctcgw/gatewayd/events"
)

// eventStream answers GET /api/events: Server-Sent Events, optionally of
// one factory or gateway, resumed from Last-Event-ID (header, or the
// last_event_id query parameter for clients that cannot set headers).
// A slow client is cut off with event: overflow; it never slows anyone.
func (s *server) eventStream(c *fiber.Ctx) error {
	var f events.Filter
	var last uint64
	resume := false
	lastID := func(v string) string {
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return "must be an event id"
		}
		last, resume = n, true
		return ""
	}
	if err := plainQuery(c, map[string]func(string) string{
		"factory_id":    uuidParam(&f.FactoryID),
		"gateway_id":    uuidParam(&f.GatewayID),
		"last_event_id": lastID,
		"access_token":  func(string) string { return "" }, // read by authorize
	}); err != nil {
		return err
	}
	if h := c.Get("Last-Event-ID"); h != "" {
		if msg := lastID(h); msg != "" {
			return validationError(Detail{Field: "Last-Event-ID", Message: msg})
		}
	}
	c.Set(fiber.HeaderContentType, "text/event-stream")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set("X-Accel-Buffering", "no") // proxies must not hold the stream back
	if s.streams.full() {
		return errTooManyStreams
	}
	// The stream takes the connection over once this handler and the
	// middleware are done (see streams): the response head is written
	// from there, with every header they set.
	fctx, keepAlive, buffer := c.Context(), s.opts.EventsKeepAlive, s.opts.EventsClientBuffer
	// A stream outlives its request's token check: the token is checked
	// again every token-cache lifetime, and a revoked or expired one ends
	// the stream (API.md §10: refused within 5 s).
	var allowed func() bool
	if hash, ok := requestToken(c); ok && s.auth != nil {
		last := time.Now() // the request's own check
		allowed = func() bool {
			ok := s.auth.allows(hash, viewer.role, s.opts.DBTimeout, last)
			last = time.Now()
			return ok
		}
	}
	fctx.HijackSetNoResponse(true)
	fctx.Hijack(func(conn net.Conn) {
		if !s.streams.enter() {
			return // shutting down: fasthttp closes the connection
		}
		defer s.streams.leave()
		var sub *events.Subscription
		if resume {
			sub = s.tel.Events.Resume(f, last, buffer) // 0 too: everything the ring holds
		} else {
			sub = s.tel.Events.Subscribe(f, last, buffer)
		}
		// Every write to the socket has its deadline, the head and a
		// resumed stream's backlog too: fasthttp cleared the connection's
		// deadlines when it handed it over, and a backlog larger than the
		// buffers blocked its write for good to a client that reads
		// nothing (a stream slot held for ever, shutdown waiting for it).
		w := newStreamWriter(deadlineWriter{conn, s.opts.EventsWriteTimeout}, s.streams.buffers)
		defer w.release()
		// Buffered: the stream's first flush sends it, and reports a
		// failure (a bufio.Writer's error is sticky).
		_, _ = w.buf().Write(streamHead(&fctx.Response.Header, time.Now()))
		ticker := time.NewTicker(keepAlive)
		defer ticker.Stop()
		timer := time.NewTimer(streamFlushInterval)
		defer timer.Stop()
		hold := func(d time.Duration) {
			timer.Reset(d)
			<-timer.C
		}
		gone, watched := watchClient(conn)
		defer func() {
			// Ends watchClient's read. (Close would not: fasthttp's
			// hijacked connection closes only after this returns.)
			_ = conn.SetReadDeadline(aLongTimeAgo)
			<-watched
		}()
		timing := streamTiming{keepAlive: ticker.C, interval: streamFlushInterval,
			hold: hold, stop: s.streams.stop, allowed: allowed, gone: gone}
		if allowed != nil {
			recheck := time.NewTicker(s.auth.ttl / 2) // see tokens.allows
			defer recheck.Stop()
			timing.recheck = recheck.C
		}
		_ = stream(w, sub, timing)
	})
	return nil
}

// deadlineWriter sets the write deadline before each write to the socket.
type deadlineWriter struct {
	conn    net.Conn
	timeout time.Duration
}

func (d deadlineWriter) Write(p []byte) (int, error) {
	_ = d.conn.SetWriteDeadline(time.Now().Add(d.timeout))
	return d.conn.Write(p)
}

// errStreamRevoked ends a stream whose token may no longer read it.
var errStreamRevoked = errors.New("event stream: token revoked or expired")

// errTooManyStreams refuses a stream past API_MAX_CONNECTIONS.
var errTooManyStreams = &Error{Status: fiber.StatusServiceUnavailable, Code: "SERVICE_UNAVAILABLE",
	Message: "Too many connections: API_MAX_CONNECTIONS reached"}

// streamBufferSize is a stream's write buffer: what a flush interval of
// a storm brings (10,000 gateway.state events a second, ~330 bytes each,
// is ~33 KB per 10 ms) goes out in one write(2).
const streamBufferSize = 32 << 10

// streamWriter is a stream's write buffer, held only while the stream
// has something to send: taken from the streams' pool by the first write
// after a flush, given back by the flush that empties it. Held for the
// stream's life, the 32 KiB were most of what an idle stream cost (a
// dashboard's stream is idle nearly always), and once a storm had filled
// them they stayed resident.
type streamWriter struct {
	dst  io.Writer
	pool *writerPool
	w    *bufio.Writer
	err  error // the failed flush's; w is then kept
}

func newStreamWriter(dst io.Writer, pool *writerPool) *streamWriter {
	return &streamWriter{dst: dst, pool: pool}
}

// writerPool keeps idle write buffers for the streams' next flushes, up
// to keep of them. Not a sync.Pool, which drops what it holds at every
// collection: in a reconnect storm, collecting every few tens of
// milliseconds, the streams made a new buffer at nearly every flush, and
// 100 subscribers seemed to cost gatewayd ~1.7 times the CPU they had
// cost with a buffer each (BENCHMARKS.md, 2026-12-07 seventeenth
// session).
type writerPool struct {
	size, keep int
	mu         sync.Mutex
	idle       []*bufio.Writer
}

func newWriterPool(size, keep int) *writerPool { return &writerPool{size: size, keep: keep} }

// get returns an idle buffer, or a new one.
func (p *writerPool) get() *bufio.Writer {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return w
	}
	p.mu.Unlock()
	return bufio.NewWriterSize(nil, p.size)
}

// put keeps w for a later get, unless keep are kept already.
func (p *writerPool) put(w *bufio.Writer) {
	p.mu.Lock()
	if len(p.idle) < p.keep {
		p.idle = append(p.idle, w)
	}
	p.mu.Unlock()
}

// streamBuffersKept is how many idle stream buffers the pool keeps: 2 MiB
// of 32 KiB buffers, what 64 streams flushing at once need.
const streamBuffersKept = 64

// buf is the buffer to write into, taken from the pool if the stream
// holds none. After a failed flush it is the failed buffer, whose every
// write fails.
func (s *streamWriter) buf() *bufio.Writer {
	if s.w == nil {
		s.w = s.pool.get()
		s.w.Reset(s.dst)
	}
	return s.w
}

// flush sends what the buffer holds and gives the buffer back.
func (s *streamWriter) flush() error {
	if s.w == nil {
		return nil
	}
	if err := s.w.Flush(); err != nil {
		s.err = err // kept, never pooled: it holds unsent bytes and its error
		return err
	}
	s.release()
	return nil
}

// release gives the buffer back, whatever it holds: the stream is over,
// or it has just been flushed.
func (s *streamWriter) release() {
	if s.w != nil && s.err == nil {
		s.w.Reset(nil) // clears a write's error too
		s.pool.put(s.w)
		s.w = nil
	}
}

// streamWriteTimeout is the default of Options.EventsWriteTimeout, which
// bounds each flush: a client that stops reading is noticed within it, and
// its stream ends.
const streamWriteTimeout = 10 * time.Second

// streamFlushInterval is how often at most a stream flushes: an event that
// comes within it of the last flush waits for the rest of it, together
// with everything published meanwhile, so a burst costs one write per
// interval and subscriber, not one per event. An event is therefore sent
// at most this long after it was published (plus scheduling); one after a
// quiet spell goes out at once.
const streamFlushInterval = 10 * time.Millisecond

// streamTiming is what drives a stream besides its events: the keep-alive
// ticks, the flush interval, and hold, which waits (a timer in
// production).
type streamTiming struct {
	keepAlive <-chan time.Time
	interval  time.Duration
	hold      func(time.Duration)
	// stop ends the stream (shutdown): what it holds is flushed first.
	stop <-chan struct{}
	// At each recheck, a stream that is no longer allowed (its token was
	// revoked or expired) ends at once, without what it holds.
	recheck <-chan time.Time
	allowed func() bool
	// gone is closed when the client has closed its side (see
	// watchClient); the stream ends at once.
	gone <-chan struct{}
}

// stream writes a subscription until it ends (shutdown, overflow) or the
// client goes away (a write fails; w bounds each one, see deadlineWriter).
// While it holds a flush it sleeps, not woken by each event, and then
// takes everything the subscription holds.
func stream(w *streamWriter, sub *events.Subscription, t streamTiming) error {
	defer sub.Close()
	var flushed time.Time
	flush := func() error {
		err := w.flush()
		flushed = time.Now()
		return err
	}
	// A comment first, so clients and proxies see the stream open at once.
	if err := events.WriteKeepAlive(w.buf()); err != nil {
		return err
	}
	if sub.Reset() {
		if err := events.WriteReset(w.buf()); err != nil {
			return err
		}
	}
	for _, e := range sub.Replay() {
		if err := events.WriteSSE(w.buf(), *e); err != nil {
			return err
		}
	}
	for {
		if err := flush(); err != nil {
			return err
		}
		select {
		case <-sub.Ready():
			// Ended is read before the last take: nothing is put after
			// the end, so that take gets everything there will be.
			ended := sub.Ended()
			wrote, err := writeBuffered(w, sub)
			if err != nil {
				return err
			}
			if ended {
				if sub.Overflowed() {
					if err := events.WriteOverflow(w.buf()); err != nil {
						return err
					}
				}
				return flush()
			}
			if wrote == 0 {
				continue // a token left by events already taken
			}
			if wait := t.interval - time.Since(flushed); wait > 0 {
				t.hold(wait)
			}
			// What came meanwhile goes in the same flush; an end that
			// came meanwhile left a token, seen in the next round.
			if _, err := writeBuffered(w, sub); err != nil {
				return err
			}
		case <-t.keepAlive:
			if err := events.WriteKeepAlive(w.buf()); err != nil {
				return err
			}
		case <-t.recheck:
			if !t.allowed() {
				return errStreamRevoked
			}
		case <-t.gone:
			return errClientGone
		case <-t.stop:
			// What was published before the stop still goes out.
			if _, err := writeBuffered(w, sub); err != nil {
				return err
			}
			return flush()
		}
	}
}

// aLongTimeAgo is a deadline in the past: it ends a blocked read at once.
var aLongTimeAgo = time.Unix(1, 0)

// errClientGone ends a stream whose client closed its connection.
var errClientGone = errors.New("event stream: the client closed the connection")

// watchClient reads the stream's connection until it fails: a client
// that goes away closes it (FIN or RST), which only a write noticed
// before, at the next keep-alive, so a departed client kept its
// goroutine, buffer, descriptor and connection slot 15–30 s (a burst of
// reconnecting dashboards could fill API_MAX_CONNECTIONS with dead ones).
// Whatever the client sends after its request is read and dropped, up
// to streamInputLimit: past it the stream ends as if the client had gone.
// Nothing a stream's client sends is ever used (a request pipelined
// behind it would never be answered), and a client that sent junk
// without end kept this goroutine reading it flat out, a core's worth a
// stream (found by an audit, helper 4). The returned channel is closed
// when the read fails or the limit is passed; done when the reading
// goroutine has ended, which a read deadline in the past brings about.
func watchClient(conn net.Conn) (gone, done <-chan struct{}) {
	g, d := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(d)
		var b [64]byte
		sent := 0
		for {
			n, err := conn.Read(b[:])
			if sent += n; err != nil || sent > streamInputLimit {
				close(g)
				return
			}
		}
	}()
	return g, d
}

// streamInputLimit is how much an event stream's client may send after
// its request: as much as a request's head may be.
const streamInputLimit = 16 << 10

// writeBuffered writes the live events the subscription holds now and
// says how many.
func writeBuffered(w *streamWriter, sub *events.Subscription) (int, error) {
	n := 0
	for e := sub.Next(); e != nil; e = sub.Next() {
		if err := events.WriteSSE(w.buf(), *e); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// serveMetrics serves the Prometheus text format.
func (s *server) serveMetrics(c *fiber.Ctx) error {
	s.metricsOnce.Do(func() {
		s.metricsHandler = adaptor.HTTPHandler(promhttp.HandlerFor(s.tel.Metrics.Registry, promhttp.HandlerOpts{}))
	})
	return s.metricsHandler(c)
}
