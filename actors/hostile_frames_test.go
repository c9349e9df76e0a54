package actors_test

// Hostile gateways at the frame level (found by an audit, helper 4,
// whose tests these are). The simulator
// (ctc/ctctest) writes whole messages through gorilla/websocket; these
// peers log in like a gateway and then write raw WebSocket frames
// (control frames, fragments) on the same real socket, which the
// simulator has no switch for.

import (
	"context"
	"encoding/binary"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/internal/testutil"
	"github.com/ctcgw/gatewayd/store"
)

// rawPeer is a gateway that accepts the WebSocket handshake, accepts any
// POST_LOGIN, and then runs after(conn) with the socket's raw TCP
// connection (server frames are unmasked, so they are easy to write by
// hand). Writes to the raw connection go under mu; a reader goroutine
// keeps reading (and answers pings under mu) until the socket ends.
type rawPeer struct {
	ln       net.Listener
	url      string
	mu       sync.Mutex
	accepted atomic.Int64
	logins   atomic.Int64
	pongs    atomic.Int64 // pongs received from gatewayd
	after    func(p *rawPeer, raw net.Conn)
	answer   bool          // answer pings
	done     chan struct{} // closed when the test ends
}

func newRawPeer(t *testing.T, addr string, after func(p *rawPeer, raw net.Conn)) *rawPeer {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	p := &rawPeer{ln: ln, url: "ws://" + ln.Addr().String() + "/gw", after: after, answer: true, done: make(chan struct{})}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		p.accepted.Add(1)
		defer ws.Close()
		raw := ws.NetConn()
		_, b, err := ws.ReadMessage()
		if err != nil || !strings.Contains(string(b), "POST_LOGIN") {
			return
		}
		p.mu.Lock()
		err = ws.WriteMessage(websocket.TextMessage,
			[]byte(`{"Type":"RTN_LOGIN","From":"SERV","Target":"UI","Data":{"Email":"e","Success":true}}`))
		p.mu.Unlock()
		if err != nil {
			return
		}
		p.logins.Add(1)
		ws.SetPingHandler(func(data string) error {
			if !p.answer {
				return nil
			}
			p.mu.Lock()
			defer p.mu.Unlock()
			_, err := raw.Write(append([]byte{0x8A, byte(len(data))}, data...))
			return err
		})
		ws.SetPongHandler(func(string) error {
			p.pongs.Add(1)
			return nil
		})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					return
				}
			}
		}()
		p.after(p, raw)
		_ = raw.Close()
		<-done
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		close(p.done)
		_ = srv.Close()
	})
	return p
}

// write writes b on the raw connection under mu.
func (p *rawPeer) write(raw net.Conn, b []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = raw.SetWriteDeadline(time.Now().Add(time.Minute))
	_, err := raw.Write(b)
	return err
}

// addRawGateway registers a gateway at url and tells the runtime.
func addRawGateway(t *testing.T, h *actorstest.Harness, name, url string) gatewayd.Gateway {
	t.Helper()
	g, err := h.Store.CreateGateway(context.Background(), store.NewGateway{FactoryID: h.Factory, GatewayID: name, Name: name,
		URL: url, Email: name + "@example.com", Password: "pw"})
	require.NoError(t, err)
	h.Runtime.GatewayStarted(g.Target("pw"))
	return g
}

// unmaskedFrame is one server frame: fin, opcode, payload (< 64 KiB).
func unmaskedFrame(fin bool, op byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	switch n := len(payload); {
	case n < 126:
		return append([]byte{b0, byte(n)}, payload...)
	default:
		h := []byte{b0, 126, 0, 0}
		binary.BigEndian.PutUint16(h[2:], uint16(n))
		return append(h, payload...)
	}
}

// floodResult is what a flooding peer saw.
type floodResult struct {
	sent int
	cut  bool  // its socket was closed by gatewayd before it was done
	err  error // why it stopped early
}

// floodPeer logs in and then writes lead once and chunk (holding
// perChunk frames) until it has written total frames or the socket ends,
// and then keeps the socket open until the test ends.
// Socket buffers hold a few MiB at most, so once a peer has written far
// more than that, gatewayd has read nearly all of it.
func floodPeer(t *testing.T, addr string, lead, chunk []byte, perChunk, total int) (*rawPeer, <-chan floodResult) {
	res := make(chan floodResult, 4)
	p := newRawPeer(t, addr, func(p *rawPeer, raw net.Conn) {
		var r floodResult
		if lead != nil && p.write(raw, lead) != nil {
			r.cut = true
			res <- r
			return
		}
		for r.sent < total {
			if err := p.write(raw, chunk); err != nil {
				r.cut, r.err = true, err
				res <- r
				return
			}
			r.sent += perChunk
		}
		res <- r
		<-p.done // the socket stays open until the test ends
	})
	return p, res
}

// README, "What a hostile peer can and cannot do": "more than 200 frames
// or 8 MiB per second sustained (bursts of 2,000 frames / 32 MiB), cuts
// its connection off into BACKOFF". A peer that sends its frames as the
// continuation fragments of one message that never ends (empty ones,
// which never reach the 4 MiB read limit either) went unmetered while the
// meter counted whole messages after they were read: 8,000,000 such frames
// (16 MB, 2,500 times the burst) went through, the gateway AUTHENTICATED.
// Counted as frames on the socket (frameMeter), they are cut off as the
// same flood of whole (empty) text messages is.
func TestEmptyContinuationFramesAreAFlood(t *testing.T) {
	cfg := actorstest.FastConfig()
	cfg.BackoffInitial, cfg.BackoffMax = 2*time.Second, 2*time.Second
	cfg.PongTimeout = time.Minute // only a flood cut-off ends the connection
	h := newHarness(t, cfg)
	const total = 8_000_000
	const perChunk = 4096

	t.Run("whole messages (control)", func(t *testing.T) {
		chunk := []byte(strings.Repeat("\x81\x00", perChunk)) // FIN text, empty
		p, res := floodPeer(t, "127.0.0.1:6141", nil, chunk, perChunk, total)
		g := addRawGateway(t, h, "whole", p.url)
		r := <-res
		require.True(t, r.cut, "whole-message flood was cut off (sent %d)", r.sent)
		st := h.Status(g.ID)
		require.NotNil(t, st.LastError)
		require.Contains(t, *st.LastError, "flooding")
		t.Logf("cut off after %d frames: %s", r.sent, *st.LastError)
	})

	t.Run("continuation fragments", func(t *testing.T) {
		lead := unmaskedFrame(false, websocket.TextMessage, []byte("{")) // a text message begins, FIN unset
		chunk := []byte(strings.Repeat("\x00\x00", perChunk))            // continuation, not FIN, empty
		p, res := floodPeer(t, "127.0.0.1:6142", lead, chunk, perChunk, total)
		g := addRawGateway(t, h, "fragments", p.url)
		start := time.Now()
		r := <-res
		st := h.Status(g.ID)
		t.Logf("peer sent %d frames in %s, cut off: %v; gateway state %s, last_error %v",
			r.sent, time.Since(start), r.cut, st.State, deref(st.LastError))
		require.True(t, r.cut, "a peer that sent %d frames (burst 2,000, 200/s) was never cut off", r.sent)
		require.NotNil(t, st.LastError)
		require.Contains(t, *st.LastError, "flooding")
	})
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// README: "more than 200 frames ... per second sustained (bursts of 2,000
// frames ...) cuts its connection off into BACKOFF; decoded frames waiting
// for its actor are bounded at 1 MiB ..., so a flood costs bounded
// memory". Pong control frames bypassed both: gorilla/websocket hands each
// one to the pong handler inside NextReader, and the handler sent the
// actor a message per pong, with no meter and no inbox budget: a peer
// sending unsolicited pongs as fast as the socket took them was never cut
// off, and its actor's mailbox grew by 124–144 MiB. Now the socket's meter
// counts them and at most one waits for the actor. In a process of its
// own: it measures the heap.
func TestPongFloodIsMeteredAndBounded(t *testing.T) {
	if testutil.OwnProcess(t) {
		return
	}
	cfg := actorstest.FastConfig()
	h := actorstest.New(t, tmpl, cfg)
	const total = 8_000_000
	const perChunk = 4096
	chunk := []byte(strings.Repeat("\x8A\x00", perChunk)) // FIN pong, empty
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	baseline := ms.HeapInuse
	p, res := floodPeer(t, "127.0.0.1:6143", nil, chunk, perChunk, total)
	g := addRawGateway(t, h, "pongs", p.url)
	r := <-res
	// What the peer wrote is read by now, but maybe not yet handled.
	eventually(t, func() bool { return h.Status(g.ID).State != "" }, 30*time.Second, "status answers")
	close(stop)
	<-sampled
	st := h.Status(g.ID)
	grew := peak.Load() - min(peak.Load(), baseline)
	t.Logf("peer sent %d pongs, cut off: %v (%v); gateway %s, last_error %v; heap in use grew by %d MiB at its peak",
		r.sent, r.cut, r.err, st.State, deref(st.LastError), grew>>20)
	require.True(t, r.cut, "a peer that sent %d pong frames (burst 2,000, 200/s) was never cut off", r.sent)
	require.Less(t, grew, uint64(32<<20), "one gateway's pongs held %d MiB", grew>>20)
}

// The same for pings: README's flood limits ("more than 200 frames ...
// per second sustained (bursts of 2,000 frames ...) cuts its connection
// off") did not see them either. gorilla/websocket answers each ping with
// a pong, written from gatewayd's reader goroutine (one write(2) each), so
// a peer that pinged as fast as it could kept gatewayd writing for ever.
func TestPingFloodIsMetered(t *testing.T) {
	cfg := actorstest.FastConfig()
	// The peer's answer to gatewayd's own ping waits behind its flood:
	// long enough that only a flood cut-off can end the connection.
	cfg.PongTimeout = time.Minute
	h := newHarness(t, cfg)
	const total = 400_000 // 200 times the burst
	const perChunk = 4096
	chunk := []byte(strings.Repeat("\x89\x00", perChunk)) // FIN ping, empty
	p, res := floodPeer(t, "127.0.0.1:6148", nil, chunk, perChunk, total)
	g := addRawGateway(t, h, "pings", p.url)
	r := <-res
	// 400,000 pings are 800 KB: the socket buffers may take them all
	// before gatewayd cuts the peer off, so the cut-off is read from the
	// gateway's state, not from the peer's writes.
	eventually(t, func() bool {
		st := h.Status(g.ID)
		return st.LastError != nil && strings.Contains(*st.LastError, "flooding")
	}, 60*time.Second, "the ping flood cut off (the peer sent %d pings and got %d pongs)", r.sent, p.pongs.Load())
	assert.Less(t, p.pongs.Load(), int64(r.sent), "not every ping was answered")
}
