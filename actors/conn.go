package actors

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	neturl "net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
	"golang.org/x/sync/semaphore"

	"github.com/ctcgw/gatewayd/ctc"
	"github.com/ctcgw/gatewayd/internal/netutil"
)

// This file holds the two goroutines a gateway actor runs per connection
// (the dial and the reader) and what bounds them. Both report to the
// actor with messages stamped with the connection's generation; neither
// touches the actor's state.

// dialing is one dial: queued in the limiter until it has a slot, then
// run by its own goroutine. That goroutine hands the socket over through
// ws under mu; closed says the actor gave up on the attempt (or stopped),
// so a socket dialed after that is closed by the goroutine instead of
// leaking. done is closed when the attempt is over: by the goroutine, or
// by abandon when it never started.
type dialing struct {
	dialWait
	d      *deps
	ctx    context.Context
	cancel context.CancelFunc
	url    string
	report func(error)
	log    zerolog.Logger
	done   chan struct{}
	mu     sync.Mutex
	ws     *websocket.Conn
	closed bool
}

// startDial queues one connection attempt to url. A gateway whose last
// connection did not reach login (failing: new, or failing since) dials
// in the limiter's restricted lane, so hung peers cannot take every slot
// from healthy ones. report receives the result, unless the attempt is
// abandoned first.
func startDial(d *deps, url string, failing bool, report func(error), log zerolog.Logger) *dialing {
	ctx, cancel := context.WithCancel(context.Background())
	dl := &dialing{dialWait: dialWait{failing: failing}, d: d, ctx: ctx, cancel: cancel, url: url, report: report, log: log,
		done: make(chan struct{})}
	dl.start = dl.run
	d.limiter.submit(&dl.dialWait)
	return dl
}

// abandon makes the attempt's socket, dialed now or later, close itself;
// an attempt still waiting for its slot leaves the queue.
func (dl *dialing) abandon() {
	dl.cancel()
	if dl.d.limiter.cancel(&dl.dialWait) {
		close(dl.done)
	}
	dl.mu.Lock()
	dl.closed = true
	if dl.ws != nil {
		closeNormally(dl.ws)
		dl.ws = nil
	}
	dl.mu.Unlock()
}

// take returns the dialed socket to the actor, once.
func (dl *dialing) take() *websocket.Conn {
	dl.mu.Lock()
	defer dl.mu.Unlock()
	ws := dl.ws
	dl.ws, dl.closed = nil, true
	return ws
}

// aLongTimeAgo is a deadline that makes every pending read and write on a
// socket fail at once.
var aLongTimeAgo = time.Unix(1, 0)

// run is the attempt's goroutine, started by the limiter with a slot held.
func (dl *dialing) run() {
	defer close(dl.done)
	defer dl.cancel()
	ws, err := dl.attempt()
	dl.mu.Lock()
	if dl.closed {
		if ws != nil {
			closeNormally(ws)
		}
		dl.mu.Unlock()
		return
	}
	dl.ws = ws
	dl.mu.Unlock()
	dl.report(err)
}

// attempt dials with the slot held and gives it back, whatever happens.
func (dl *dialing) attempt() (ws *websocket.Conn, err error) {
	d := dl.d
	defer d.limiter.release(dl.failing)
	defer func() {
		if r := recover(); r != nil {
			dl.log.Error().Interface("panic", r).Msg("dialer panicked")
			ws, err = nil, fmt.Errorf("dialer panic: %v", r)
		}
	}()
	if err := dl.ctx.Err(); err != nil { // abandoned as its slot was granted
		return nil, err
	}
	start := time.Now()
	ws, err = handshake(dl.ctx, d, dl.url)
	if dl.ctx.Err() == nil { // an abandoned dial is no dial result
		d.cfg.Observer.Dialed(err, time.Since(start))
	}
	return ws, err
}

// handshake dials url within ConnectTimeout. Cancelling ctx ends it at
// once, whatever stage it is in: gorilla/websocket bounds the HTTP upgrade
// only by the socket's deadline, so a watcher moves that deadline into the
// past when ctx ends, and the dial slot is released right away instead of
// when the handshake timeout would have passed.
//
// The TCP connection is opened before gorilla/websocket is called, and
// handed to it: a gateway that is off or unreachable refuses or drops the
// dial, and gorilla builds its whole HTTP request (URL, headers, key)
// before it dials. Retrying unreachable gateways cost a third of
// gatewayd's CPU in the gateway create storm (BENCHMARKS.md, 2026-12-06
// third session); a refused dial no longer pays for a request it never
// sends. The error is the dial's own, as gorilla returned it.
func handshake(ctx context.Context, d *deps, url string) (*websocket.Conn, error) {
	dctx, dcancel := context.WithTimeout(ctx, d.cfg.ConnectTimeout)
	defer dcancel()
	dialer := *d.dialer // per attempt, for the closures below
	var stopWatch func() bool
	watch := func(c net.Conn) { stopWatch = context.AfterFunc(dctx, func() { _ = c.SetDeadline(aLongTimeAgo) }) }
	// The frame meter sits above TLS, so wss:// connections are made
	// here, with the dialer's TLS settings, rather than by gorilla.
	metered := func(ctx context.Context, c net.Conn, addr string, secure bool) (net.Conn, error) {
		probe, _ := c.(*quietProbe)
		if secure {
			if probe != nil {
				probe.records = true // from the first byte: the handshake is records too
			}
			host, _, _ := net.SplitHostPort(addr)
			tc, err := tlsClient(ctx, c, d.dialer.TLSClientConfig, host)
			if err != nil {
				return nil, err
			}
			c = tc
		}
		m := newFrameMeter(c, d.cfg)
		if probe != nil {
			probe.meter = m
		}
		return m, nil
	}
	if addr, ok := dialAddr(url); ok {
		raw, err := d.cfg.NetDial(dctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		conn := &quietProbe{Conn: raw}
		watch(conn)
		pending := conn // until gorilla takes it; it dials once
		take := func(ctx context.Context, secure bool) (net.Conn, error) {
			c := pending
			if c == nil {
				return nil, errors.New("websocket dialed twice")
			}
			pending = nil
			m, err := metered(ctx, c, addr, secure)
			if err != nil {
				_ = c.Close()
			}
			return m, err
		}
		dialer.NetDialContext = func(ctx context.Context, _, _ string) (net.Conn, error) { return take(ctx, false) }
		dialer.NetDialTLSContext = func(ctx context.Context, _, _ string) (net.Conn, error) { return take(ctx, true) }
		defer func() {
			if pending != nil { // gorilla failed before it took the connection
				_ = pending.Close()
			}
		}()
	} else {
		// A URL dialAddr does not read: gorilla refuses most of them
		// before it dials, and says what is wrong; one it does dial (no
		// host) goes through the same dialer as ever.
		dial := func(ctx context.Context, network, addr string, secure bool) (net.Conn, error) {
			raw, err := d.cfg.NetDial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			c := &quietProbe{Conn: raw}
			watch(c)
			m, err := metered(ctx, c, addr, secure)
			if err != nil {
				_ = c.Close()
			}
			return m, err
		}
		dialer.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dial(ctx, network, addr, false)
		}
		dialer.NetDialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dial(ctx, network, addr, true)
		}
	}
	ws, resp, err := dialer.DialContext(dctx, url, nil)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err == nil && namesExtension(resp.Header.Values("Sec-WebSocket-Extensions")) {
		// gatewayd offers none: a client must fail a connection whose
		// server names one it did not offer (RFC 6455 §9.1). gorilla
		// switched on permessage-deflate anyway, and a frame under the
		// read limit inflated past it, 1,000 to 1 (found by an audit,
		// helper 11).
		_ = ws.Close()
		ws, err = nil, fmt.Errorf("websocket: the gateway answered with an extension gatewayd did not offer (%s)",
			resp.Header.Get("Sec-WebSocket-Extensions")) // last_error is capped
	}
	if stopWatch != nil && !stopWatch() && ws != nil {
		// ctx ended just as the handshake completed: the socket's deadline
		// is already in the past.
		_ = ws.Close()
		ws, err = nil, context.Cause(dctx)
	}
	if err != nil && resp != nil {
		err = fmt.Errorf("%w (HTTP %d)", err, resp.StatusCode)
	}
	return ws, err
}

// namesExtension says whether the handshake's answer names a WebSocket
// extension in any of its Sec-WebSocket-Extensions lines: gorilla reads
// them all, and an empty first line hid a permessage-deflate second one
// (found by an audit, helper 13).
func namesExtension(values []string) bool {
	for _, v := range values {
		if strings.Trim(v, ", \t") != "" {
			return true
		}
	}
	return false
}

// dialAddr is the host:port gorilla/websocket dials for url: the URL's
// port, else 443 for wss and 80 for ws. ok is false for a URL it would
// refuse (another scheme, no host, user info), which then goes to gorilla
// to say so.
func dialAddr(raw string) (addr string, ok bool) {
	u, err := neturl.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil {
		return "", false
	}
	switch u.Scheme {
	case "ws":
		if u.Port() == "" {
			return net.JoinHostPort(u.Hostname(), "80"), true
		}
	case "wss":
		if u.Port() == "" {
			return net.JoinHostPort(u.Hostname(), "443"), true
		}
	default:
		return "", false
	}
	return u.Host, true
}

// closeNormally ends a socket with close code 1000, so the gateway sees an
// orderly close even for a socket the actor never used. The frame gets
// writeTimeout like any other: with 1 s, a loaded machine (the test suite
// on two cores) let the deadline pass before the write ran, and gateways
// saw 1006 after a delete. It only waits that long for a peer whose
// socket buffer is full, which a frame of 8 bytes after the actor's few small
// writes does not meet in practice.
func closeNormally(ws *websocket.Conn) {
	_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""),
		time.Now().Add(writeTimeout))
	_ = ws.Close()
}

// Flood limits: what one connection may send before it is cut off.
// A real gateway sends a few frames a second (answers, temperatures, a
// reading now and then); these leave room for bursts of readings while
// keeping one peer from taking a core or the heap.
const (
	defaultFloodFrameRate  = 200        // frames per second, sustained
	defaultFloodFrameBurst = 2000       // frames at once
	defaultFloodByteRate   = 8 << 20    // bytes per second, sustained
	defaultFloodByteBurst  = 32 << 20   // bytes at once
	defaultInboxBytes      = 1 << 20    // decoded frames waiting for the actor
	frameOverhead          = 4 << 10    // what a queued frame costs beyond its bytes
	readLimit              = 4 << 20    // the largest frame accepted
	errFloodText           = "flooding" // last_error starts with it
)

// errFlood ends a connection whose peer sends more than the flood limits.
var errFlood = errors.New(errFloodText)

// bucket is a token bucket: rate per second, up to burst.
type bucket struct {
	rate, burst, level float64
	last               time.Time
}

func newBucket(rate, burst float64, now time.Time) bucket {
	return bucket{rate: rate, burst: burst, level: burst, last: now}
}

// take spends n tokens; false means the bucket is empty.
func (b *bucket) take(n float64, now time.Time) bool {
	b.level = min(b.burst, b.level+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if b.level < n {
		return false
	}
	b.level -= n
	return true
}

// reader runs a socket's only reader. It owns nothing but the read side;
// it ends when the socket is closed or ctx ends. What it may hand the
// actor is bounded twice: the socket's flood meter (frameMeter) cuts off
// a peer that sends more than the limits, failing the read, and the inbox (a byte budget the actor gives back as it
// handles each frame) makes the reader wait, so TCP pushes back on the
// peer, whenever the actor falls behind. Either way one gateway's memory
// stays bounded whatever it sends.
type reader struct {
	ws    *websocket.Conn
	inbox *semaphore.Weighted
	// share bounds the frames waiting for the actor together with every
	// other connection's (nil: by the inbox alone).
	share *inboxShare
	// intake holds the reader back while readings pile up (nil: never);
	// held tells the actor (nil: nobody asks).
	intake *intake
	// slow counts the large messages that stopped counting in the intake
	// because they trickle in (see openMessage); nil: unbounded.
	slow   *slowShare
	held   *holdClock
	crunch crunch // bounds the decoders of large frames
	cfg    Config
	// boundary, when set, is true while the reader waits for a new frame's
	// header (the socket's quietProbe looks only then).
	boundary *bool
	// deliver hands a decoded frame to the actor; cost is returned to the
	// inbox when the actor has handled it, and so are the intake's
	// reserved bytes if deliver reports that the actor took them (else
	// the reader gives them back).
	deliver func(msg ctc.Message, err error, cost, reserved int64, text *[]byte) (took bool)
	// end reports why reading stopped.
	end func(error)
	// taken counts the messages NextReader gave (see nextQueued).
	taken uint64
	log   zerolog.Logger
}

func (r *reader) run(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	defer func() {
		// A panic here would kill the process: Proto.Actor recovers only
		// inside Receive.
		if p := recover(); p != nil {
			r.log.Error().Interface("panic", p).Msg("reader panicked")
			r.end(fmt.Errorf("reader panic: %v", p))
		}
	}()
	capacity := int64(r.cfg.InboxBytes)
	for {
		kind, data, reserved, err := r.readFrame(ctx)
		if errors.Is(err, errReaderStopped) {
			return // the actor closed the connection while the reader waited
		}
		if err != nil {
			r.end(err)
			return
		}
		if !r.handle(ctx, kind, data, reserved, capacity) {
			return
		}
	}
}

// handle decodes and delivers one frame read by readFrame, and
// gives its buffer back, and its intake reservation unless the actor took
// it with the frame. It reports whether to read on.
func (r *reader) handle(ctx context.Context, kind int, data *[]byte, reserved int64, capacity int64) bool {
	if reserved > 0 {
		// A large frame, in hand since admitLarge until handed over; its
		// wait for the inbox or a decoding slot is gatewayd's (a reading
		// timer that ran out meanwhile failed a reading sent in time:
		// found by an audit, helper 8).
		r.hold(true)
		defer func() {
			r.hold(false)
			r.inHand(false)
		}()
	}
	took, inPlace := false, false
	defer func() {
		if !took {
			r.intake.add(-reserved)
		}
	}()
	defer func() {
		if !inPlace && data != nil {
			putFrame(data)
		}
	}()
	cost := min(int64(len(*data))+frameOverhead, capacity)
	if err := r.inbox.Acquire(ctx, cost); err != nil {
		return false // the actor closed the connection
	}
	if !r.share.charge(ctx, cost, reserved > 0) {
		r.inbox.Release(cost)
		return false // the actor closed the connection
	}
	if kind != websocket.TextMessage {
		took = r.deliver(nil, fmt.Errorf("%w: binary frame", ctc.ErrMalformed), cost, reserved, nil)
		return true
	}
	if !utf8.Valid(*data) {
		// gorilla does not check a text frame's UTF-8 (RFC 6455 §8.1),
		// and encoding/json turns each invalid byte of a string into
		// U+FFFD, three bytes: a 4 MiB frame of 0xFF decoded to 12 MiB
		// and allocated 44 (found by an audit, helper 10). Garbage, as
		// a frame that is not JSON.
		took = r.deliver(nil, fmt.Errorf("%w: text frame is not UTF-8", ctc.ErrMalformed), cost, reserved, nil)
		return true
	}
	// Decode keeps nothing of the frame (strings and raw JSON are copies),
	// so its buffer goes back to the pool right after; only a reading
	// decoded in place takes the buffer along.
	var msg ctc.Message
	var err error
	var text *[]byte
	if reserved > 0 { // a large frame: a reading's few milliseconds of work
		// A reading's samples stay in the frame's buffer (no 200 KB copy);
		// the buffer goes with them and back to the pool once decoded.
		r.crunch.do(func() { msg, inPlace, err = ctc.DecodeInPlace(*data) })
		if inPlace {
			text = data
		}
	} else {
		msg, err = ctc.Decode(*data)
		if _, ok := msg.(*ctc.Reading); ok && err == nil {
			// A reading that did not name itself in its first bytes and
			// ended within a small buffer: it waits for the intake now,
			// as every reading does. Read as a small frame, it never did,
			// and one gateway's pushed readings filled the processors'
			// queue until another gateway's failed "processing
			// overloaded" (found by an audit, helper 1). The message is
			// a copy: the buffer goes back before the wait.
			putFrame(data)
			data = nil
			if !r.admitDecoded(ctx) {
				return false
			}
			reserved = frameReserve
			defer func() {
				r.hold(false)
				r.inHand(false)
			}()
		}
	}
	took = r.deliver(msg, err, cost, reserved, text)
	return true
}

// admitDecoded waits for the intake to let in a reading already read and
// decoded, and reserves frameReserve for it, as admitLarge does for one
// known by its head; it reports false when the reader's context ended
// first. The reading is in hand meanwhile, and the reader held, as for
// a large frame.
func (r *reader) admitDecoded(ctx context.Context) bool {
	r.inHand(true)
	r.hold(true)
	if !r.intake.admit(ctx, frameReserve, intakeWait(r.cfg)) {
		r.hold(false)
		r.dropHand()
		return false
	}
	return true
}

// Read buffers. gorilla's ReadMessage reads a message with io.ReadAll,
// which grows its buffer by doubling: a reading's ~200 KB frame cost ~0.5
// MB of garbage, once per reading and gateway. Pooled buffers are reused
// instead, by whichever reader needs one, in two sizes: a frame is read
// into a small one (smallFrame bytes) unless its first bytes say it is a
// reading, and only a reading or a frame that outgrows the small buffer,
// once the intake has let it in, moves to a large one. A reader waiting
// for the intake therefore holds 64 bytes or 32 KiB, not whatever buffer
// it happened to take from the pool: with one pool, in a burst of 2,000
// readings, the readers waiting for the intake held readings' 256 KiB
// buffers (49 MB of the 90 MB live at a collection; BENCHMARKS.md,
// 2026-12-04 fourth session).
var (
	smallPool = sync.Pool{New: func() any { b := make([]byte, 0, smallFrame); return &b }}
	framePool = sync.Pool{New: func() any { return new([]byte) }}
)

// poolFrameLimit is the largest buffer put back: a rare frame near the
// read limit (4 MiB) is not kept for the next small one.
const poolFrameLimit = 1 << 20

// putFrame gives a buffer back to the pool of its size.
func putFrame(b *[]byte) {
	switch c := cap(*b); {
	case c == smallFrame:
		*b = (*b)[:0]
		smallPool.Put(b)
	case c <= poolFrameLimit:
		*b = (*b)[:0]
		framePool.Put(b)
	}
}

func (r *reader) hold(v bool) {
	if r.held != nil {
		r.held.set(v)
	}
}

// inHand records that the reader has a large frame in hand (from its
// head on), or has handed it over.
func (r *reader) inHand(v bool) {
	if r.held != nil {
		r.held.setInHand(v)
	}
}

// dropHand records that the reader gave up the large frame it had in
// hand: no run of frames goes on.
func (r *reader) dropHand() {
	if r.held != nil {
		r.held.drained()
	}
}

// lookBehind is called as the reader comes back for its next frame: if
// it handed a large frame over and has not yet found the socket drained
// since, the run of frames queued behind it ends unless more of the
// gateway's data is already here.
func (r *reader) lookBehind() {
	if r.held != nil && r.held.behind && !r.nextQueued() {
		r.held.drained()
	}
}

// nextQueued reports whether more of the gateway's data has arrived than
// the reader has taken: a message begun past the last one it got (the
// frame meter counts them as they come off the socket; gorilla may have
// them buffered), part of a frame or of a TLS record, or bytes in the
// kernel's buffer. Whole TLS records read ahead into crypto/tls's own
// buffer it cannot see (holdClock's chainGap covers those). Only the
// reader goroutine calls it: the meter and the probe are its own.
func (r *reader) nextQueued() bool {
	if r.ws == nil {
		return false
	}
	if m := meterOf(r.ws.NetConn()); m != nil && (m.messages > r.taken || !m.between()) {
		return true
	}
	p := probeOf(r.ws)
	return p != nil && (p.recHeadN > 0 || p.recLeft > 0 || netutil.Pending(p.Conn))
}

// holdClock is what the actor's timers need to know of its reader. Times
// are kept on the monotonic clock, from base: a wall clock set back must
// not stretch a wait.
//
// For the pong timer: whether gatewayd itself holds the reader (the
// reading intake, a decoding slot or the actor's inbox makes it wait),
// and when it last let it go. The gateway's pongs wait unread behind the
// frame meanwhile. Reading the frame off the network is no such wait: a
// gateway that stops half-way through a large frame is dead, and its pong
// timer must say so (found by an audit, helper 10).
//
// For a reading timer: whether the reader has a large frame in hand,
// since when, counting a run of them back to back as one: a frame that
// was already arriving when the reader handed the last one over (the
// reader looks: nextQueued) was queued behind it, and the run goes on
// until the reader finds nothing more of the gateway's data waiting. The
// frame, or one queued behind it, may be the reading that timer waits
// for, sent in time (found by audits, helpers 8 and 10). (The run was
// first told by time, a frame begun within chainGap of the last one's
// handover; on a loaded box the reader came back later than that, and a
// reading queued behind a held one failed: make test under load. The gap
// stays for what the reader cannot see.)
type holdClock struct {
	base time.Time // the clock's zero: when the reader was started
	// v is, while held, minus when the hold began, else the last
	// release (0: never held); in ns after base, at least 1.
	v atomic.Int64
	// mu guards total, and v's writes (v is also read without it).
	mu sync.Mutex
	// total is how long the reader was held, in the holds it was let go
	// of (ns).
	total int64
	// hand is, while a frame is in hand, when its run began, else 0.
	hand atomic.Int64
	// The reader's own: the last handover and its run's start, and
	// whether it has found the socket drained since that handover (the
	// run's end) or not yet (behind).
	handedAt, runStart int64
	behind             bool
}

// chainGap is how soon after a frame's handover the next one, not seen
// queued, must begin to count as queued behind it all the same.
const chainGap = 5 * time.Millisecond

func newHoldClock() *holdClock { return &holdClock{base: time.Now()} }

func (h *holdClock) now() int64 { return max(int64(time.Since(h.base)), 1) }

// set records that the reader is now held, or let go.
func (h *holdClock) set(held bool) {
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	if held {
		h.v.Store(-now)
		return
	}
	if v := h.v.Load(); v < 0 {
		h.total += now + v // now − the hold's start
	}
	h.v.Store(now)
}

// heldFor is how long the reader has been held in all, up to now (ns).
// Read with the hold under one lock: read apart, a release between them
// counted its hold twice, once in total and once as still running (found
// by an audit, helper 11).
func (h *holdClock) heldFor(now time.Time) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.total
	if v := h.v.Load(); v < 0 {
		t += max(int64(now.Sub(h.base))+v, 0)
	}
	return t
}

// setInHand records that a large frame is now in hand, or handed over.
// A handover leaves the run standing until the reader has looked behind
// it (drained ends it).
func (h *holdClock) setInHand(v bool) {
	now := h.now()
	if !v {
		h.handedAt, h.behind = now, true
		return
	}
	if !h.behind && (h.handedAt == 0 || now-h.handedAt > int64(chainGap)) {
		h.runStart = now
	}
	h.behind = false
	h.hand.Store(h.runStart)
}

// drained records that no frame is in hand and none queued behind the
// last: the run is over.
func (h *holdClock) drained() {
	h.behind = false
	h.hand.Store(0)
}

// inHandSince says whether the reader has a large frame in hand now, or
// one queued behind the last it handed over, and since when its run of
// frames began.
func (h *holdClock) inHandSince() (time.Time, bool) {
	if v := h.hand.Load(); v > 0 {
		return h.base.Add(time.Duration(v)), true
	}
	return time.Time{}, false
}

// pongWait is how much longer to wait, at now, for a pong that was due
// at due, mark being heldFor when its ping went out: all of timeout
// while the reader is held; else as long as the reader was held since
// the ping (the pong may have waited behind the held frame as long),
// less what has passed since due. A pong timer that ran out just after a
// release failed a healthy connection whose pongs were being read (make
// test under load); then each release granted a whole timeout more, and
// a gateway that answered no ping but pushed a small reading (a hold of
// microseconds) more often than that was never found dead (found by an
// audit, helper 9).
func (h *holdClock) pongWait(now, due time.Time, mark int64, timeout time.Duration) time.Duration {
	if h.v.Load() < 0 {
		return timeout
	}
	return due.Add(time.Duration(h.heldFor(now) - mark)).Sub(now)
}

// intakeWait is how long a reader waits for the reading intake before it
// reads its frame anyway: half the reading timeout, since the frame is
// almost always a reading whose timer is running (a longer hold would
// fail it), and never less than a quarter of the pong timeout. The pong
// timeout does not run out meanwhile: the actor knows the reader is held.
// (With the quarter pong timeout alone, 2.5 s by default, readers of a
// 2,000-reading burst gave up waiting, read anyway, and overflowed the
// processor's queue into FAILED "processing overloaded".)
func intakeWait(cfg Config) time.Duration {
	return max(cfg.ReadingTimeout/2, cfg.PongTimeout/4, 100*time.Millisecond)
}

// errReaderStopped: the reader's context ended while it waited.
var errReaderStopped = errors.New("reader stopped")

// frameReserve is what the intake counts for a large frame being read,
// before its size is known: about a reading of 3 × 8192 samples in CSV.
const frameReserve = 256 << 10

// smallFrame is the most of a frame read before the intake is asked. A
// frame that ends within it (a login answer, a sensor list, a
// temperature: everything but a reading) never waits there, so a burst
// of readings, however large, does not hold up any other gateway's
// traffic. A reading that ends within it waits once decoded (handle).
const smallFrame = 32 << 10

// readFrame reads the next message whole into a pooled buffer, which the
// caller gives back with putFrame once nothing refers to it. A reading,
// known by its first bytes, or any message that does not fit in a small
// buffer (smallFrame bytes), waits for the intake before it is read on,
// and reserves frameReserve there (reserved), which goes with the frame to
// the actor (see ledger) or, if the frame is not delivered, back from the
// caller. A reading waits holding only its first bytes, any other large
// message its small buffer. On error nothing is held.
func (r *reader) readFrame(ctx context.Context) (kind int, data *[]byte, reserved int64, err error) {
	r.lookBehind()
	if r.boundary != nil {
		*r.boundary = true // between frames: see quietProbe
	}
	kind, rd, err := r.ws.NextReader()
	if r.boundary != nil {
		*r.boundary = false
	}
	if err != nil {
		return 0, nil, 0, err
	}
	r.taken++
	small := smallPool.Get().(*[]byte)
	b, err := readUpTo(rd, (*small)[:0:headSize])
	*small = (*small)[:len(b)] // b's capacity is the head's; the buffer keeps its own
	switch {
	case err == io.EOF:
		return kind, small, 0, nil
	case err != nil:
		putFrame(small)
		return 0, nil, 0, err
	case readingHead(b):
		// All a reading holds while it waits: its head, not the buffer.
		head := append([]byte(nil), b...)
		putFrame(small)
		data, err = r.admitLarge(ctx, head)
	default:
		b, err = readUpTo(rd, *small)
		*small = b
		if err == io.EOF {
			return kind, small, 0, nil
		}
		if err == nil { // the small buffer is full: does the message go on?
			var next [1]byte
			var n int
			n, err = io.ReadFull(rd, next[:])
			if err == io.EOF {
				return kind, small, 0, nil // exactly smallFrame bytes
			}
			if err == nil {
				data, err = r.admitLarge(ctx, b, next[:n])
			}
		}
		putFrame(small)
	}
	if err != nil {
		return 0, nil, 0, err
	}
	// A pooled buffer may be larger than the reserve (up to
	// poolFrameLimit): the intake counts the buffer, at once (it is held
	// already).
	reserved = max(frameReserve, int64(cap(*data)))
	r.intake.add(reserved - frameReserve)
	// From here the frame holds its reservation: it must keep coming.
	open := newOpenMessage(r.ws, rd, r.cfg, time.Now(), r.intake, r.slow, reserved)
	defer open.close()
	rd = open
	b = *data
	for {
		b, err = readUpTo(rd, b)
		*data = b
		if err == io.EOF {
			open.recount()
			return kind, data, reserved, nil
		}
		var next [1]byte
		var n int
		if err == nil { // full: does the message go on?
			n, err = io.ReadFull(rd, next[:])
			if err == io.EOF { // exactly the buffer's size: a 4 MiB frame was charged, and grew, to 8
				open.recount()
				return kind, data, reserved, nil
			}
		}
		// It does: double, so a 4 MiB frame costs a few copies, not ~30;
		// the intake counts what the frame grows to (intake.grow), or, once
		// the message is slow, the slow messages' share (see openMessage).
		more := int64(cap(b))
		if err == nil && open.slow {
			err = open.growSlow(more)
		}
		if err != nil {
			putFrame(data)
			open.release()
			r.dropHand()
			return 0, nil, 0, err
		}
		if !open.slow {
			r.hold(true)
			heldSince := time.Now()
			ok := r.intake.grow(ctx, more, reserved, intakeWait(r.cfg))
			open.held(time.Since(heldSince))
			r.hold(false)
			if !ok {
				putFrame(data)
				open.release()
				r.dropHand()
				return 0, nil, 0, errReaderStopped
			}
			open.counted += more
		}
		reserved += more
		nb := make([]byte, len(b), 2*cap(b))
		copy(nb, b)
		b = append(nb, next[:n]...)
	}
}

// errStalled ends a connection whose peer began a large message (one
// let into the intake) and did not go on with it: no data for the pong
// timeout, or the whole message not read within the reading timeout
// (time the reader was held back by the intake does not count). Its
// reservation would otherwise be held for as long as the peer keeps the
// connection alive with pongs: two such gateways filled the 8 MiB intake
// and every other gateway's readings waited half the reading timeout.
var errStalled = errors.New("message stalled")

// openMessage reads the rest of a large message, bounding how long it
// may stay open with read deadlines on the socket (as gorilla reads
// control frames inside a message's Read, a pong does not count as
// data). It is read only by the reader's goroutine.
//
// A message still open half the pong timeout after it was let in (time
// held back by the intake does not count) is slow: an honest gateway
// sends a reading at the network's speed, in milliseconds. A slow
// message stops counting in the intake all gateways share and counts,
// until it is whole, in the slow messages' share instead (as large as
// the intake); when that has no room, at the change or as the message
// grows, the message takes the place of larger ones (see slowShare) or
// is stalled, and its connection ends. Bounded only by
// the reading timeout, a gateway that sent a byte of its message every
// few seconds held its share of the intake for half a minute and more,
// renewed at each connection: every other gateway's readings outwaited
// the intake, and a burst of them overflowed the processors' queue into
// FAILED "processing overloaded" (found by an audit, helper 1). Counted
// nowhere, as slow messages first were, a few hundred gateways trickling
// 4 MiB messages held gigabytes.
type openMessage struct {
	ws    *websocket.Conn
	rd    io.Reader
	stall time.Duration // the longest wait for the message's next bytes
	whole time.Duration // the longest the whole message may take
	until time.Time     // when it has taken that long; later by the time held
	read  int64
	set   bool // a deadline is set on the socket
	// The intake, the slow messages' share, what the message counts in
	// the one it is in (slow: the share), and when it becomes slow (later
	// by the time held).
	in        *intake
	slowIn    *slowShare
	counted   int64
	slowAfter time.Time
	slow      bool
	// What the share counts for it, and whether a smaller message took
	// its place there (see slowShare); guarded by slowIn.mu, evicted
	// also read without it.
	inShare int64
	evicted atomic.Bool
	// progressAt is when the message last had progressEvery more bytes
	// read (unix ns; read by other messages' take), from markRead.
	progressAt atomic.Int64
	markRead   int64
	// window is how recent a progress counts: a quarter of the pong
	// timeout, half the time a message takes to turn slow, so that one
	// that came in at once and then trickles has stopped progressing by
	// the time it is slow.
	window time.Duration
}

// progressEvery is the bytes a message reads between two marks of its
// progress (openMessage.progressAt).
const progressEvery = 64 << 10

// progressing reports whether m had progressEvery bytes read within its
// window before now.
func (m *openMessage) progressing(now time.Time) bool {
	return now.UnixNano()-m.progressAt.Load() < int64(m.window)
}

func newOpenMessage(ws *websocket.Conn, rd io.Reader, cfg Config, now time.Time, in *intake, slowIn *slowShare, counted int64) *openMessage {
	m := &openMessage{ws: ws, rd: rd, stall: cfg.PongTimeout, whole: cfg.ReadingTimeout, until: now.Add(cfg.ReadingTimeout),
		in: in, slowIn: slowIn, counted: counted, slowAfter: now.Add(cfg.PongTimeout / 2), window: cfg.PongTimeout / 4}
	m.progressAt.Store(now.UnixNano())
	return m
}

// held moves the whole message's deadline on by d, a time the reader was
// held back and read nothing.
func (m *openMessage) held(d time.Duration) {
	m.until = m.until.Add(d)
	m.slowAfter = m.slowAfter.Add(d)
}

// errSlowFull is why a slow message is stalled when the slow messages'
// share has no room for it, or gave its place to a smaller one.
func (m *openMessage) errSlowFull() error {
	if m.evicted.Load() {
		return fmt.Errorf("%w: slow, and a smaller slow message took its place in their share (%d KiB read)", errStalled, m.read>>10)
	}
	return fmt.Errorf("%w: slow, and other slow messages hold their share (%d KiB read)", errStalled, m.read>>10)
}

// growSlow counts n more bytes of a slow message in the slow messages'
// share, or reports that it has no room.
func (m *openMessage) growSlow(n int64) error {
	if !m.slowIn.take(m, n) {
		return m.errSlowFull()
	}
	m.counted += n
	return nil
}

// recount counts a slow message in the intake again, now whole: what it
// grew to goes on with it (to the actor, then back). Evicted meanwhile,
// it is whole all the same: the share gave its bytes back already.
func (m *openMessage) recount() {
	if m.slow {
		m.slowIn.give(m)
		m.in.add(m.counted)
		m.slow = false
	}
}

// release gives back what the message counts, wherever it is counted,
// when it is dropped unread.
func (m *openMessage) release() {
	if m.slow {
		m.slowIn.give(m)
	} else {
		m.in.add(-m.counted)
	}
	m.counted = 0
}

func (m *openMessage) Read(b []byte) (int, error) {
	now := time.Now()
	if !m.slow && now.After(m.slowAfter) {
		if !m.slowIn.take(m, m.counted) {
			return 0, m.errSlowFull()
		}
		m.slow = true
		m.in.add(-m.counted)
	}
	deadline, whole := now.Add(m.stall), false
	if m.until.Before(deadline) {
		deadline, whole = m.until, true
	}
	m.set = true
	if err := m.ws.SetReadDeadline(deadline); err != nil {
		return 0, err
	}
	// Evicted before the deadline above was set, its past one was
	// overwritten: seen here. Evicted after, the read ends at once.
	if m.evicted.Load() {
		return 0, m.errSlowFull()
	}
	n, err := m.rd.Read(b)
	m.read += int64(n)
	if m.read-m.markRead >= progressEvery {
		m.markRead = m.read
		m.progressAt.Store(time.Now().UnixNano())
	}
	if err != nil && m.evicted.Load() {
		return n, m.errSlowFull()
	}
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() {
		if whole {
			return n, fmt.Errorf("%w: not read whole within %s (%d KiB read)", errStalled, m.whole, m.read>>10)
		}
		return n, fmt.Errorf("%w: no data for %s (%d KiB read)", errStalled, m.stall, m.read>>10)
	}
	return n, err
}

// close clears the deadline: between messages a gateway may be quiet
// for as long as it answers pings.
func (m *openMessage) close() {
	if m.set {
		_ = m.ws.SetReadDeadline(time.Time{})
	}
}

// headSize is how much of a message is read before the reader decides
// how to read the rest: enough for a reading's {"Type":"NOT_DYN_READING"
// with some spaces.
const headSize = 64

// readingHead reports whether a message's first bytes name it a reading:
// {"Type":"NOT_DYN_READING", with JSON whitespace allowed between the
// tokens. Gateways write Type first (API.md §6); a reading that names its
// type later is known by its size instead, as any large message, or once
// decoded, if it ends within a small buffer. Knowing
// it early matters in a burst: a thousand readers waiting for the intake
// held 32 KiB each, 16 MB of the 69 MB live at a collection (BENCHMARKS.md,
// 2026-12-04 fourth session); now they hold 64 bytes.
func readingHead(b []byte) bool {
	for _, tok := range readingTokens {
		b = bytes.TrimLeft(b, " \t\r\n")
		if !bytes.HasPrefix(b, tok) {
			return false
		}
		b = b[len(tok):]
	}
	return true
}

var readingTokens = [][]byte{[]byte("{"), []byte(`"Type"`), []byte(":"), []byte(`"` + ctc.TypeNotDynReading + `"`)}

// readUpTo fills b from rd up to its capacity. It returns io.EOF if the
// message ended first, nil if b is full.
func readUpTo(rd io.Reader, b []byte) ([]byte, error) {
	for len(b) < cap(b) {
		n, err := rd.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			return b, err
		}
	}
	return b, nil
}

// admitLarge waits for the intake to let a large frame in, then copies
// what was read of it (parts) to a large buffer. A large buffer starts at
// frameReserve, which a reading fits in: no doubling on the way.
func (r *reader) admitLarge(ctx context.Context, parts ...[]byte) (*[]byte, error) {
	// In hand until handed to the actor (handle), or given up.
	r.inHand(true)
	r.hold(true)
	ok := r.intake.admit(ctx, frameReserve, intakeWait(r.cfg))
	r.hold(false)
	if !ok {
		r.dropHand()
		return nil, errReaderStopped
	}
	data := framePool.Get().(*[]byte)
	b := (*data)[:0]
	if cap(b) < frameReserve {
		b = make([]byte, 0, frameReserve)
	}
	for _, p := range parts {
		b = append(b, p...)
	}
	*data = b
	return data, nil
}

// quietProbe tells, once, when a new socket has nothing more to read: the
// gateway's actor writes POST_LOGIN only then, so that a frame the
// gateway sent as the socket opened has been read, and dropped as an
// answer nobody asked for, before the login goes out; read after it, it
// was taken for the login's answer (answers carry no id): an RTN_DYN
// greeting made a refused login AUTHENTICATED, an RTN_ERR one a good
// login AUTH_FAILED, with no retries.
//
// Armed by the actor once the handshake is done, it looks, before a read
// made between frames (boundary: the reader waits for a header, so the
// buffers above hold no part of a frame), whether the kernel holds bytes
// for the socket (a peek that does not wait); when it does not (and no
// more comes within Config.QuietWait, which tests set), everything the
// gateway sent so far has been read. (Looking in the
// middle of a frame, whose rest was still on its way, let a greeting sent
// in two writes be completed after the login and taken for its answer.)
// A peer that keeps sending is taken as quiet after quietLimit. A frame
// later than the wait still cannot be told from the login's answer:
// answers carry no correlation id.
//
// It needs no lock: the actor arms it before it starts the connection's
// reader (the handshake's reads, in the dial's goroutine, came before
// that), and from then on only the reader reads, and sets boundary.
//
// Between frames is also where the frame meter above stands (a frame's
// header that arrived in two pieces has it wait for the second: found by
// an audit, helper 7), and under TLS between records (records: TLS asks
// for the rest of a record while the reader still waits for a header, and
// a greeting whose record arrived in two segments was taken for the
// login's answer). The probe follows the record headers of the bytes it
// passes up.
type quietProbe struct {
	net.Conn
	boundary bool   // set by the reader, around its wait for a header
	onQuiet  func() // armed; nil once told
	until    time.Time
	wait     time.Duration // Config.QuietWait
	meter    *frameMeter   // the socket's, above (and above TLS)
	records  bool          // under TLS: follow the records
	recHead  [5]byte       // a record's header, as far as read
	recHeadN int
	recLeft  int // bytes of the current record still to come
}

// between reports whether nothing of a frame (and under TLS, nothing of a
// record) has been read that the reader has not had whole.
func (p *quietProbe) between() bool {
	return p.boundary && (p.meter == nil || p.meter.between()) && (!p.records || p.recHeadN == 0 && p.recLeft == 0)
}

// read reads from the socket, following the TLS records read.
func (p *quietProbe) read(b []byte) (int, error) {
	n, err := p.Conn.Read(b)
	if p.records {
		for rest := b[:n]; len(rest) > 0; {
			if p.recLeft > 0 {
				k := min(p.recLeft, len(rest))
				p.recLeft -= k
				rest = rest[k:]
				continue
			}
			k := copy(p.recHead[p.recHeadN:], rest)
			p.recHeadN += k
			rest = rest[k:]
			if p.recHeadN == len(p.recHead) { // type, version, length (RFC 8446 §5.1)
				p.recLeft, p.recHeadN = int(binary.BigEndian.Uint16(p.recHead[3:5])), 0
			}
		}
	}
	return n, err
}

// quietLimit bounds how long a peer that keeps sending delays its login.
const quietLimit = time.Second

// arm makes the next reads look; onQuiet is called once, from the
// reading goroutine. It is called before that goroutine starts.
func (p *quietProbe) arm(onQuiet func(), wait time.Duration) {
	p.onQuiet, p.until, p.wait = onQuiet, time.Now().Add(quietLimit), wait
}

func (p *quietProbe) Read(b []byte) (int, error) {
	told, wait := p.onQuiet, p.wait
	if told == nil || !p.between() && time.Now().Before(p.until) {
		return p.read(b)
	}
	if time.Now().Before(p.until) {
		if netutil.Pending(p.Conn) {
			return p.read(b) // more of what the gateway sent
		}
		if wait > 0 {
			// Nothing yet: a little longer, for a frame on its way.
			_ = p.Conn.SetReadDeadline(time.Now().Add(wait))
			n, err := p.read(b)
			_ = p.Conn.SetReadDeadline(time.Time{})
			var ne net.Error
			if n > 0 || err == nil || !errors.As(err, &ne) || !ne.Timeout() {
				return n, err // something came (or the socket failed): not quiet
			}
		}
	}
	p.onQuiet = nil
	told()
	return p.read(b)
}

// probeOf is the quietProbe under ws, if any (under TLS too).
func probeOf(ws *websocket.Conn) *quietProbe {
	c := ws.NetConn()
	if m := meterOf(c); m != nil {
		c = m.Conn
	}
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	p, _ := c.(*quietProbe)
	return p
}
