package ctctest

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/ctc"
)

func TestFlood(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	g := s.Add("flood", Config{Email: "e", Password: "p"})
	g.SetFaults(Faults{Flood: true})
	ws := dial(t, g.URL())
	require.Eventually(t, func() bool { return g.Stats().Open == 1 }, 10*time.Second, time.Millisecond)
	assert.False(t, workerRunning(g, workFlood), "not before login")
	m := login(t, ws, "e", "p")
	assert.IsType(t, &ctc.LoginResult{}, m, "the login answer comes first")

	deadline := time.Now().Add(5 * time.Second)
	received := 0
	for received < 2000 {
		require.True(t, time.Now().Before(deadline), "only %d frames in 5s", received)
		u := recv(t, ws).(*ctc.Unknown)
		assert.Equal(t, "NOT_SIM_FLOOD", u.Type)
		received++
	}
	assert.GreaterOrEqual(t, g.Stats().FloodSent, 2000)
	assert.Len(t, defaultFloodFrame, 62)

	g.SetFaults(Faults{})
	require.Eventually(t, func() bool { return !workerRunning(g, workFlood) }, 10*time.Second, time.Millisecond, "flood stops")
	sent := g.Stats().FloodSent
	send(t, ws, ctc.TypeGetDynConnected, nil)
	_, before := recvType(t, ws, ctc.TypeRtnDyn)
	assert.Equal(t, sent, received+len(before), "every frame sent was received, and no more")
	discover(t, ws)
	assert.Equal(t, sent, g.Stats().FloodSent)

	g.SetFaults(Faults{Flood: true, FloodFrame: `{"Type":"NOT_X"}`})
	assert.Equal(t, "NOT_X", recv(t, ws).MessageType(), "on again, with its own frame")
	g.SetFaults(Faults{})
}

func TestFloodOfAPeerThatDoesNotReadEndsWithClose(t *testing.T) {
	t.Parallel()
	base := runtime.NumGoroutine()
	s, err := NewServer("127.0.0.1:0")
	require.NoError(t, err)
	g := s.Add("deaf", Config{Email: "e", Password: "p"})
	g.SetFaults(Faults{Flood: true})
	ws := dial(t, g.URL())
	login(t, ws, "e", "p")
	require.Eventually(t, func() bool { return g.Stats().FloodSent > 1000 }, 5*time.Second, time.Millisecond)
	start := time.Now()
	s.Close()
	assert.Less(t, time.Since(start), writeTimeout/2, "a blocked flood write does not hold Close until its deadline")
	_ = ws.Close()
	settled(t, base)
}

func TestOversizeFrameAfterEveryLogin(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	g := s.Add("big", Config{Email: "e", Password: "p"})
	const size = 5 << 20
	g.SetFaults(Faults{OversizeAfterLogin: size})

	// A client with gatewayd's 4 MiB read limit fails right after login.
	for range 2 {
		ws := dial(t, g.URL())
		ws.SetReadLimit(4 << 20)
		ok, _ := ctc.LoginOutcome(login(t, ws, "e", "p"))
		require.True(t, ok)
		require.NoError(t, ws.SetReadDeadline(time.Now().Add(5*time.Second)))
		_, _, err := ws.ReadMessage()
		require.ErrorIs(t, err, websocket.ErrReadLimit)
		_ = ws.Close()
	}
	// Without a limit it is one frame of exactly that size.
	ws := dial(t, g.URL())
	login(t, ws, "e", "p")
	require.NoError(t, ws.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, b, err := ws.ReadMessage()
	require.NoError(t, err)
	assert.Len(t, b, size)
	m, err := ctc.Decode(b)
	require.NoError(t, err)
	assert.Equal(t, "NOT_SIM_OVERSIZE", m.MessageType())
	st := g.Stats()
	assert.Equal(t, 3, st.Logins)
	assert.Equal(t, 3, st.OversizeSent)
}

func TestBigLoginError(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	g := s.Add("verbose", Config{Email: "e", Password: "p"})
	const size = 3_500_000
	g.SetFaults(Faults{LoginErrorSize: size})
	ws := dial(t, g.URL())
	ok, reason := ctc.LoginOutcome(login(t, ws, "e", "p"))
	assert.False(t, ok)
	assert.Len(t, reason, size)
	assert.True(t, strings.HasPrefix(reason, "Invalid email or password. Invalid"), reason[:40])
	assert.Equal(t, 1, g.Stats().LoginsRefused)
	assert.Equal(t, 0, g.Stats().Logins)
	assert.Len(t, bigFrame(bigOversize, 10), 10, "tiny sizes are still that size")
}

// stallHandshakes opens n TCP connections to g and sends each a
// WebSocket upgrade request.
func stallHandshakes(t *testing.T, s *Server, g *Gateway, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			_ = c.Close()
		}
	})
	req := fmt.Sprintf("GET /gw/%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", g.Name(), s.Addr())
	for range n {
		c, err := net.Dial("tcp", s.Addr())
		require.NoError(t, err)
		conns = append(conns, c)
		_, err = c.Write([]byte(req))
		require.NoError(t, err)
	}
	return conns
}

// Not parallel: it counts the process's goroutines, which tests running
// beside it would move (a parallel run once counted 1,369 against 452).
func TestStalledHandshakesSleep(t *testing.T) {
	base := runtime.NumGoroutine()
	s, err := NewServer("127.0.0.1:0")
	require.NoError(t, err)
	defer s.Close()
	g := s.Add("stalled", Config{Email: "e", Password: "p"})
	g.SetFaults(Faults{StallHandshake: true})
	const n = 200
	wakeups := s.stallWakeups.Load()
	conns := stallHandshakes(t, s, g, n)
	require.Eventually(t, func() bool { return s.handshakes.Load() == n }, 10*time.Second, time.Millisecond)
	require.Eventually(t, func() bool { return s.stallWakeups.Load() == wakeups+n }, 10*time.Second, time.Millisecond)
	// net/http runs a handler and a background reader per connection;
	// waiting adds nothing to that.
	assert.LessOrEqual(t, runtime.NumGoroutine(), base+2*n+10)

	// Only a change of the switches wakes them, once each.
	g.SetFaults(Faults{StallHandshake: true, DropCode: 1001})
	require.Eventually(t, func() bool { return s.stallWakeups.Load() == wakeups+2*n }, 10*time.Second, time.Millisecond)
	assert.Equal(t, int64(n), s.handshakes.Load())
	assert.Equal(t, wakeups+2*n, s.stallWakeups.Load())

	// Cleared, every one completes.
	g.SetFaults(Faults{})
	for _, c := range conns {
		require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		require.NoError(t, err)
		assert.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
		_ = c.Close()
	}
	require.Eventually(t, func() bool { st := g.Stats(); return st.Accepted == n && st.Open == 0 }, 10*time.Second, time.Millisecond)

	// Stalled again, Close releases them.
	g.SetFaults(Faults{StallHandshake: true})
	stallHandshakes(t, s, g, n)
	require.Eventually(t, func() bool { return s.handshakes.Load() == n }, 10*time.Second, time.Millisecond)
	s.Close()
	assert.Zero(t, s.handshakes.Load())
	for _, c := range conns {
		_ = c.Close()
	}
	settled(t, base)
}
