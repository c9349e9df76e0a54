package api

import (
	"bytes"
	"encoding/json"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
)

// App is the API's Fiber app. Its Listener serves through clientConns,
// which caps the connections one client holds.
type App struct {
	*fiber.App
	clients *clientConns
	srv     *server // for the tests (export_test.go)
}

// Listener serves on ln until the app shuts down. A connection from a
// client that already holds its share (Options.MaxClientConnections) is
// answered 429 and closed before fasthttp sees it.
func (a *App) Listener(ln net.Listener) error {
	defer a.clients.stop() // the refusals still waiting, whatever ended the serving
	return a.App.Listener(a.clients.wrap(ln))
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
	max  int // a client's share; 0: no cap
	log  zerolog.Logger
	mu   sync.Mutex
	open map[string]int
	// refusing bounds the refusals that wait for their request (refuse);
	// past it a refusal is written at once.
	refusing chan struct{}
	// warned is when a refusal was last logged (unix ns): at most once a
	// minute, as fasthttp's own 503s.
	warned atomic.Int64
	// pending are the refusals' connections, which stop closes (and
	// waits for) at shutdown: untracked, their goroutines outlived it
	// by up to a second, each holding its socket (found by an audit,
	// helper 1).
	rmu     sync.Mutex
	pending map[net.Conn]struct{}
	stopped bool
	wg      sync.WaitGroup
}

func newClientConns(max int, log zerolog.Logger) *clientConns {
	return &clientConns{max: max, log: log, open: make(map[string]int), refusing: make(chan struct{}, maxRefusing),
		pending: make(map[net.Conn]struct{})}
}

// ClientShare is a client's share of connections (API_MAX_CONNECTIONS_PER_CLIENT)
// as Options.MaxClientConnections, defaulted: perClient, else a quarter of
// maxConns (at least 1), else 0 (no cap).
func ClientShare(maxConns, perClient int) int {
	return clientShare(Options{MaxConnections: maxConns, MaxClientConnections: perClient})
}

// CapClients is ln with the per-client cap App.Listener serves through,
// for another server on the API's port (the one that answers while serve
// starts); stop ends the refusals still waiting (call it once ln is no
// longer served).
func CapClients(ln net.Listener, share int, log zerolog.Logger) (_ net.Listener, stop func()) {
	cc := newClientConns(share, log)
	return cc.wrap(ln), cc.stop
}

// track adds a refusal's connection; false once stop has begun.
func (cc *clientConns) track(c net.Conn) bool {
	cc.rmu.Lock()
	defer cc.rmu.Unlock()
	if cc.stopped {
		return false
	}
	cc.pending[c] = struct{}{}
	cc.wg.Add(1)
	return true
}

func (cc *clientConns) untrack(c net.Conn) {
	cc.rmu.Lock()
	delete(cc.pending, c)
	cc.rmu.Unlock()
	cc.wg.Done()
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
	if cc == nil || cc.max <= 0 {
		return ln
	}
	return &capListener{Listener: ln, cc: cc}
}

// enter counts a new connection of client key, unless it holds its share.
func (cc *clientConns) enter(key string) bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.open[key] >= cc.max {
		return false
	}
	cc.open[key]++
	return true
}

func (cc *clientConns) leave(key string) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.open[key]--; cc.open[key] <= 0 {
		delete(cc.open, key) // the map holds only clients with connections
	}
}

// refusalBody is the answer's body, in the error envelope.
var refusalBody = func() string {
	b, err := json.Marshal(fiber.Map{"error": errTooManyConnections})
	if err != nil { // cannot happen: the envelope is plain data
		panic(err)
	}
	return string(b)
}()

var errTooManyConnections = &Error{Status: fiber.StatusTooManyRequests, Code: "TOO_MANY_REQUESTS",
	Message: "Too many connections from this client: API_MAX_CONNECTIONS_PER_CLIENT reached"}

// refusal is the whole answer to a connection over its client's share,
// with the request id (the client's, if the request's first bytes carry
// an acceptable one, else a new one) and the security headers every
// answer has (API.md; found by an audit, helper 1: the answer had neither,
// nor the envelope's statusCode).
func refusal(request []byte) []byte {
	id := requestIDIn(request)
	if !acceptableRequestID(id) {
		id = uuid.NewString()
	}
	return []byte("HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(refusalBody)) + "\r\nConnection: close\r\nX-Request-Id: " + id +
		"\r\nX-Content-Type-Options: nosniff\r\nX-Frame-Options: " + headerFrameOptions +
		"\r\nReferrer-Policy: " + headerReferrerPolicy + "\r\nContent-Security-Policy: " + headerCSP +
		"\r\n\r\n" + refusalBody)
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
// request (refusalWait each at most).
const maxRefusing = 64

// refusalWait bounds each of a refusal's waits: for the request, and for
// the client to read the answer and close.
const refusalWait = 500 * time.Millisecond

// refuse answers c 429 and closes it, off the accept loop. It waits for
// the request's first bytes before it answers, and closes its side first
// and reads what is left before it closes: written the moment the
// connection was accepted, the answer came before the request, and Go's
// HTTP client took it for a stray answer and failed the request with a
// transport error; closed with the request unread, the socket sent a
// reset, with which a client may lose the answer (found by an audit,
// helper 11). Past maxRefusing refusals at once (a flood), the answer is
// written at once, as before.
func (cc *clientConns) refuse(c net.Conn, key string) {
	select {
	case cc.refusing <- struct{}{}:
		if !cc.track(c) { // shutting down
			<-cc.refusing
			_ = c.Close()
			return
		}
		go func() {
			defer cc.untrack(c)
			defer func() { <-cc.refusing }()
			var buf [4096]byte
			_ = c.SetReadDeadline(time.Now().Add(refusalWait))
			n, _ := c.Read(buf[:]) // the request's first bytes, or nothing in time
			_ = c.SetWriteDeadline(time.Now().Add(refusalWait))
			_, _ = c.Write(refusal(buf[:n]))
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
		_, _ = c.Write(refusal(nil))
		_ = c.Close()
	}
	now := time.Now().UnixNano()
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
		if l.cc.enter(key) {
			return &clientConn{Conn: c, cc: l.cc, key: key}, nil
		}
		l.cc.refuse(c, key)
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

func (c *clientConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.cc.leave(c.key)
	}
	return c.Conn.Close()
}
