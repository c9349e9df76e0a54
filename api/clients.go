package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
)

// App is the API's Fiber app. Its Listener serves through clientConns,
// which caps the connections one client holds.
type App struct {
	*fiber.App
	clients *clientConns
	silent  *silentConns
	srv     *server // for the tests (export_test.go)
}

// Listener serves on ln until the app shuts down. A connection from a
// client that already holds its share (Options.MaxClientConnections) is
// answered 429, and one past Options.MaxConnections 503, and closed
// before fasthttp sees it.
func (a *App) Listener(ln net.Listener) error {
	defer a.clients.stop() // the refusals still waiting, whatever ended the serving
	return a.App.Listener(a.silent.wrap(a.clients.wrap(ln)))
}

// clientConns counts the open connections of each client, keyed as the
// guess and answer budgets are (an IPv4 address, an IPv6 /64: guesser).
// API_MAX_CONNECTIONS alone let one address take every connection, idle
// keep-alive ones held for the 2 min idle timeout, and every other client
// got fasthttp's 503 (found by an audit, helper 3). Event streams keep
// their connection counted until they end: the stream closes it.
//
// Behind a reverse proxy every client is the proxy: set the share to
// API_MAX_CONNECTIONS there (README).
type clientConns struct {
	max int // a client's share; 0: no cap
	// limit is API_MAX_CONNECTIONS (0: none); exempt, if set, is how many
	// of the connections counted here the limit does not count (the
	// event streams, which streams counts against it on their own).
	// fasthttp answered a connection past its Concurrency with its own
	// plain-text 503 the moment it accepted it, before the request: the
	// failure below, for the 429 (found by an audit, helper 4). Its
	// Concurrency is now a little over the limit (ServerConcurrency),
	// a backstop, and the limit is kept here.
	limit  int
	exempt func() int
	// refused counts a refusal (full: past the limit) in the metrics;
	// nil: not counted.
	refused func(full bool)
	log     zerolog.Logger
	mu      sync.Mutex
	open    map[string]int
	all     int // open connections of every client; guarded by mu
	// warned is when a refusal over a client's share was last logged,
	// warnedFull one past the limit (unix ns): each at most once a minute.
	warned     atomic.Int64
	warnedFull atomic.Int64
	// pending are the refusals' connections, which stop closes (and
	// waits for) at shutdown: untracked, their goroutines outlived it
	// by up to a second, each holding its socket (found by an audit,
	// helper 1).
	// At most maxRefusing of them wait at once, and at most
	// maxRefusingPerClient of one client (refusingBy): past either a
	// refusal is written at once. With one pool for all, one address
	// that opened over-share connections and sent nothing took every
	// slot, and every other client's refusal was written before its
	// request (found by an audit, helper 4).
	rmu        sync.Mutex
	pending    map[net.Conn]struct{}
	refusingBy map[string]int
	stopped    bool
	wg         sync.WaitGroup
}

func newClientConns(max, limit int, log zerolog.Logger) *clientConns {
	return &clientConns{max: max, limit: limit, log: log, open: make(map[string]int),
		pending: make(map[net.Conn]struct{}), refusingBy: make(map[string]int)}
}

// ClientShare is a client's share of connections (API_MAX_CONNECTIONS_PER_CLIENT)
// as Options.MaxClientConnections, defaulted: perClient, else a quarter of
// maxConns (at least 1), else 0 (no cap).
func ClientShare(maxConns, perClient int) int {
	return clientShare(Options{MaxConnections: maxConns, MaxClientConnections: perClient})
}

// ServerConcurrency is the fasthttp Concurrency of a server whose
// listener is capped at maxConns connections (CapClients, App.Listener):
// a little more, so that a connection the cap let in is never refused
// by fasthttp's own plain-text 503, for the moment a worker that closed
// its connection is not yet free for the next. 0: fasthttp's default.
func ServerConcurrency(maxConns int) int {
	if maxConns <= 0 {
		return 0
	}
	return maxConns + concurrencySlack
}

const concurrencySlack = 64

// CapClients is ln with the caps App.Listener serves through (maxConns
// connections in all, share a client; 0: none), for another server on the
// API's port (the one that answers while serve starts, whose Concurrency
// is ServerConcurrency(maxConns)); refused, if set, counts each refusal
// (full: past maxConns, else over a client's share); stop ends the
// refusals still waiting (call it once ln is no longer served).
func CapClients(ln net.Listener, maxConns, share int, refused func(full bool), log zerolog.Logger) (_ net.Listener, stop func()) {
	cc := newClientConns(share, maxConns, log)
	cc.refused = refused
	return cc.wrap(ln), cc.stop
}

type slot int

const (
	slotTaken   slot = iota // the refusal waits for the request
	slotNone                // every slot, or the client's share of them, is taken: answer at once
	slotStopped             // shutting down
)

// track takes a waiting refusal's slot for c, of client key.
func (cc *clientConns) track(c net.Conn, key string) slot {
	cc.rmu.Lock()
	defer cc.rmu.Unlock()
	switch {
	case cc.stopped:
		return slotStopped
	case len(cc.pending) >= maxRefusing || cc.refusingBy[key] >= maxRefusingPerClient:
		return slotNone
	}
	cc.pending[c] = struct{}{}
	cc.refusingBy[key]++
	cc.wg.Add(1)
	return slotTaken
}

func (cc *clientConns) untrack(c net.Conn, key string) {
	cc.rmu.Lock()
	delete(cc.pending, c)
	if cc.refusingBy[key]--; cc.refusingBy[key] <= 0 {
		delete(cc.refusingBy, key)
	}
	cc.rmu.Unlock()
	cc.wg.Done()
}

// refusing is how many refusals wait now.
func (cc *clientConns) refusing() int {
	cc.rmu.Lock()
	defer cc.rmu.Unlock()
	return len(cc.pending)
}

// stop closes the connections of the refusals still waiting (their
// reads and writes then fail at once) and waits for their goroutines.
// Safe to call more than once, and on a nil clientConns.
func (cc *clientConns) stop() {
	if cc == nil {
		return
	}
	cc.rmu.Lock()
	cc.stopped = true
	for c := range cc.pending {
		_ = c.Close()
	}
	cc.rmu.Unlock()
	cc.wg.Wait()
}

// clientShare is Options.MaxClientConnections, defaulted: a quarter of
// MaxConnections (at least 1), or no cap without MaxConnections.
func clientShare(opts Options) int {
	switch {
	case opts.MaxClientConnections > 0:
		return opts.MaxClientConnections
	case opts.MaxConnections > 0:
		return max(opts.MaxConnections/4, 1)
	}
	return 0
}

func (cc *clientConns) wrap(ln net.Listener) net.Listener {
	if cc == nil || (cc.max <= 0 && cc.limit <= 0) {
		return ln
	}
	return &capListener{Listener: ln, cc: cc}
}

// entry is what enter decides about a new connection.
type entry int

const (
	admitted  entry = iota
	overShare       // its client holds its share: 429
	overLimit       // API_MAX_CONNECTIONS are open: 503
)

// enter counts a new connection of client key, unless it holds its share
// or the limit is reached.
func (cc *clientConns) enter(key string) entry {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.max > 0 && cc.open[key] >= cc.max {
		return overShare
	}
	if cc.limit > 0 {
		counted := cc.all
		if cc.exempt != nil {
			counted -= cc.exempt()
		}
		if counted >= cc.limit {
			return overLimit
		}
	}
	cc.open[key]++
	cc.all++
	return admitted
}

func (cc *clientConns) leave(key string) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.all--
	if cc.open[key]--; cc.open[key] <= 0 {
		delete(cc.open, key) // the map holds only clients with connections
	}
}

var errTooManyConnections = &Error{Status: fiber.StatusTooManyRequests, Code: "TOO_MANY_REQUESTS",
	Message: "Too many connections from this client: API_MAX_CONNECTIONS_PER_CLIENT reached"}

// errServerFull answers a connection past API_MAX_CONNECTIONS (with
// Retry-After: 1), as errTooManyStreams a stream.
var errServerFull = &Error{Status: fiber.StatusServiceUnavailable, Code: "SERVICE_UNAVAILABLE",
	Message: "Too many connections: API_MAX_CONNECTIONS reached"}

// refusalAnswer is an answer of refusal's but for its request id, which
// goes between head and tail.
type refusalAnswer struct{ head, tail string }

func newRefusalAnswer(e *Error, extra string) refusalAnswer {
	b, err := json.Marshal(fiber.Map{"error": e})
	if err != nil { // cannot happen: the envelope is plain data
		panic(err)
	}
	return refusalAnswer{
		head: "HTTP/1.1 " + strconv.Itoa(e.Status) + " " + fasthttp.StatusMessage(e.Status) +
			"\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(b)) +
			"\r\nConnection: close\r\n" + extra + "X-Request-Id: ",
		tail: "\r\nX-Content-Type-Options: nosniff\r\nX-Frame-Options: " + headerFrameOptions +
			"\r\nReferrer-Policy: " + headerReferrerPolicy + "\r\nContent-Security-Policy: " + headerCSP +
			"\r\n\r\n" + string(b),
	}
}

var (
	overShareAnswer = newRefusalAnswer(errTooManyConnections, "")
	overLimitAnswer = newRefusalAnswer(errServerFull, "Retry-After: 1\r\n")
)

// refusal is the whole answer to a connection over its client's share
// (or past the limit: full), with the request id (the client's, if the
// request's first bytes carry an acceptable one, else a new one) and the
// security headers every answer has (API.md; found by an audit, helper 1:
// the answer had neither, nor the envelope's statusCode).
func refusal(request []byte, full bool) []byte {
	id := requestIDIn(request)
	if !acceptableRequestID(id) {
		id = uuid.NewString()
	}
	a := overShareAnswer
	if full {
		a = overLimitAnswer
	}
	return []byte(a.head + id + a.tail)
}

// requestIDIn is the X-Request-Id of the head that begins request, if
// that line arrived whole; "" otherwise.
func requestIDIn(request []byte) string {
	head, _, whole := bytes.Cut(request, []byte("\r\n\r\n"))
	_, raw, ok := bytes.Cut(head, []byte("\n")) // past the request line
	if !ok {
		return ""
	}
	for len(raw) > 0 {
		var line []byte
		line, raw = cutLine(raw)
		if k, v, ok := bytes.Cut(line, []byte{':'}); ok && bytes.EqualFold(k, []byte(fiber.HeaderXRequestID)) {
			if len(raw) == 0 && !whole && !bytes.HasSuffix(line, []byte{'\r'}) {
				return "" // cut off by the read: maybe not all of it
			}
			return string(bytes.TrimSpace(v))
		}
	}
	return ""
}

// maxRefusing is how many refused connections at once wait for their
// request (refusalWait each at most), maxRefusingPerClient how many of
// one client (a quarter, as with the other shares).
const (
	maxRefusing          = 64
	maxRefusingPerClient = maxRefusing / 4
)

// refusalWait bounds each of a refusal's waits: for the request, and for
// the client to read the answer and close.
const refusalWait = 500 * time.Millisecond

// refuse answers c 429 (503 past the limit: full) and closes it, off the
// accept loop. It waits for
// the request's first bytes before it answers, and closes its side first
// and reads what is left before it closes: written the moment the
// connection was accepted, the answer came before the request, and Go's
// HTTP client took it for a stray answer and failed the request with a
// transport error; closed with the request unread, the socket sent a
// reset, with which a client may lose the answer (found by an audit,
// helper 11). Past maxRefusing refusals at once, or a client's share of
// them (a flood), the answer is written at once, as before.
func (cc *clientConns) refuse(c net.Conn, key string, full bool) {
	if cc.refused != nil {
		cc.refused(full)
	}
	switch cc.track(c, key) {
	case slotStopped:
		_ = c.Close()
		return
	case slotTaken:
		go func() {
			defer cc.untrack(c, key)
			var buf [4096]byte
			_ = c.SetReadDeadline(time.Now().Add(refusalWait))
			n, _ := c.Read(buf[:]) // the request's first bytes, or nothing in time
			_ = c.SetWriteDeadline(time.Now().Add(refusalWait))
			_, _ = c.Write(refusal(buf[:n], full))
			if cw, ok := c.(interface{ CloseWrite() error }); ok {
				_ = cw.CloseWrite()
				_ = c.SetReadDeadline(time.Now().Add(refusalWait))
				for { // the rest of the request, until the client closes
					if _, err := c.Read(buf[:]); err != nil {
						break
					}
				}
			}
			_ = c.Close()
		}()
	default:
		_ = c.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
		_, _ = c.Write(refusal(nil, full))
		_ = c.Close()
	}
	now := time.Now().UnixNano()
	if full {
		if last := cc.warnedFull.Load(); now-last >= int64(time.Minute) && cc.warnedFull.CompareAndSwap(last, now) {
			cc.log.Warn().Str("component", "http").Int("max", cc.limit).
				Msg("connections reached API_MAX_CONNECTIONS: new ones are refused (503); logged at most once a minute")
		}
		return
	}
	if last := cc.warned.Load(); now-last >= int64(time.Minute) && cc.warned.CompareAndSwap(last, now) {
		cc.log.Warn().Str("component", "http").Str("client", key).Int("max", cc.max).
			Msg("a client's connections reached API_MAX_CONNECTIONS_PER_CLIENT: new ones are refused (429); logged at most once a minute")
	}
}

// capListener counts each accepted connection against its client.
type capListener struct {
	net.Listener
	cc *clientConns
}

func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := clientOf(c.RemoteAddr())
		switch l.cc.enter(key) {
		case admitted:
			return &clientConn{Conn: c, cc: l.cc, key: key}, nil
		case overShare:
			l.cc.refuse(c, key, false)
		case overLimit:
			l.cc.refuse(c, key, true)
		}
	}
}

// clientOf is the budget key of a connection's remote address.
func clientOf(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return guesser(t.IP.String())
	}
	return a.String()
}

// clientConn gives its client's count back when closed, once: fasthttp
// closes it, or the event stream that took it over.
type clientConn struct {
	net.Conn
	cc     *clientConns
	key    string
	closed atomic.Bool
}

// SyscallConn is the connection's own, if it has one (pending peeks
// through it).
func (c *clientConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

func (c *clientConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.cc.leave(c.key)
	}
	return c.Conn.Close()
}
