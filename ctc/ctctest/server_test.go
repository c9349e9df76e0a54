package ctctest

import (
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/ctc"
)

func newServer(t *testing.T) *Server {
	t.Helper()
	s, err := NewServer("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

// dial and recv expect to succeed: their limits only bound how long a
// broken test hangs, and are generous because a loaded machine running
// other packages' tests beside these has taken over 2 s for a handshake.
func dial(t testing.TB, url string) *websocket.Conn {
	t.Helper()
	// Generous bounds: they catch a server that stops answering, not a
	// slow one. With 10 s, 7 of 2,000 logins missed them once under -race
	// while the rest of the suite kept both cores busy (load ~11).
	const patience = 30 * time.Second
	d := websocket.Dialer{HandshakeTimeout: patience}
	ws, _, err := d.Dial(url, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = ws.Close() })
	return ws
}

func send(t testing.TB, ws *websocket.Conn, typ string, data any) {
	t.Helper()
	b, err := ctc.Encode(typ, data)
	require.NoError(t, err)
	require.NoError(t, ws.WriteMessage(websocket.TextMessage, b))
}

func recv(t testing.TB, ws *websocket.Conn) ctc.Message {
	t.Helper()
	require.NoError(t, ws.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, b, err := ws.ReadMessage()
	require.NoError(t, err)
	m, err := ctc.Decode(b)
	require.NoError(t, err, string(b))
	return m
}

func login(t testing.TB, ws *websocket.Conn, email, password string) ctc.Message {
	t.Helper()
	send(t, ws, ctc.TypePostLogin, ctc.Login{Email: email, Password: password})
	return recv(t, ws)
}

func TestSessionLoginSensorsReading(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	g := s.Add("alpha", Config{Email: "ops@example.com", Password: "pw"})
	ws := dial(t, g.URL())

	m := login(t, ws, "ops@example.com", "pw")
	ok, _ := ctc.LoginOutcome(m)
	require.True(t, ok, "%#v", m)

	send(t, ws, ctc.TypeGetDynConnected, nil)
	dyn, isDyn := recv(t, ws).(*ctc.DynResult)
	require.True(t, isDyn)
	sensors, _, err := ctc.Sensors(dyn.Data)
	require.NoError(t, err)
	require.Len(t, sensors, 2)
	assert.Equal(t, int64(10001), sensors[0].Serial)

	send(t, ws, ctc.TypePostSubChanges, nil)
	assert.IsType(t, &ctc.DynResult{}, recv(t, ws))
	send(t, ws, ctc.TypeTakeDynReading, ctc.TakeReading{Serial: 10001})
	assert.IsType(t, &ctc.DynResult{}, recv(t, ws))
	started := recv(t, ws).(*ctc.ReadingStarted)
	assert.Equal(t, ctc.ReadingStarted{Serial: "10001", Success: true}, *started)
	reading := recv(t, ws).(*ctc.Reading)
	assert.Equal(t, ctc.Text("10001"), reading.Serial)
	assert.Len(t, strings.Split(reading.X, ","), DefaultSamples)

	send(t, ws, ctc.TypeTakeDynReading, ctc.TakeReading{Serial: 999})
	assert.IsType(t, &ctc.ErrorResult{}, recv(t, ws), "unknown sensor")

	send(t, ws, ctc.TypePostUnsubChanges, nil)
	assert.IsType(t, &ctc.DynResult{}, recv(t, ws))
	send(t, ws, ctc.TypeTakeDynReading, ctc.TakeReading{Serial: 10002})
	assert.IsType(t, &ctc.DynResult{}, recv(t, ws))

	require.NoError(t, ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second)))
	require.Eventually(t, func() bool { return g.Stats().Open == 0 }, 10*time.Second, 5*time.Millisecond)
	st := g.Stats()
	assert.Equal(t, 1, st.Accepted)
	assert.Equal(t, 1, st.Logins)
	assert.Equal(t, []int{websocket.CloseNormalClosure}, st.CloseCodes)
	assert.Equal(t, 0, st.Violations)
	types := []string{}
	for _, f := range st.Frames {
		types = append(types, f.Type)
	}
	assert.Equal(t, []string{"POST_LOGIN", "GET_DYN_CONNECTED", "POST_SUB_CHANGES", "TAKE_DYN_READING", "TAKE_DYN_READING", "POST_UNSUB_CHANGES", "TAKE_DYN_READING"}, types)
	assert.Contains(t, st.Frames[0].Raw, `"Password":"pw"`)
}

func TestEmptySensorListIsAnArray(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	g := s.Add("empty", Config{Email: "e", Password: "p", Sensors: []ctc.Sensor{}})
	ws := dial(t, g.URL())
	login(t, ws, "e", "p")
	send(t, ws, ctc.TypeGetDynConnected, nil)
	dyn := recv(t, ws).(*ctc.DynResult)
	assert.JSONEq(t, `[]`, string(dyn.Data))
}

func TestProtocolViolations(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	g := s.Add("strict", Config{Email: "e", Password: "p"})
	ws := dial(t, g.URL())
	send(t, ws, ctc.TypeGetDynConnected, nil)
	assert.IsType(t, &ctc.ErrorResult{}, recv(t, ws), "request before login")
	login(t, ws, "e", "p")
	require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte(`{"Type":"GET_DYN_CONNECTED","From":"UI","To":"SERV","Data":{},"CorrelationId":"1"}`)))
	e := recv(t, ws).(*ctc.ErrorResult)
	assert.Contains(t, e.Error, "CorrelationId")
	send(t, ws, "PING", nil)
	assert.IsType(t, &ctc.ErrorResult{}, recv(t, ws), "a JSON ping fails")
	require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte(`{oops`)))
	assert.IsType(t, &ctc.ErrorResult{}, recv(t, ws))
	assert.Equal(t, 4, g.Stats().Violations)
}

func TestWrongCredentialsAndRefuseSwitch(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	g := s.Add("r", Config{Email: "e", Password: "p"})
	ws := dial(t, g.URL())
	ok, reason := ctc.LoginOutcome(login(t, ws, "e", "wrong"))
	assert.False(t, ok)
	assert.Equal(t, "Invalid email or password", reason)

	g.SetFaults(Faults{RefuseLogins: true})
	ok, _ = ctc.LoginOutcome(login(t, ws, "e", "p"))
	assert.False(t, ok, "right credentials refused by the switch")
	g.SetFaults(Faults{})
	ok, _ = ctc.LoginOutcome(login(t, ws, "e", "p"))
	assert.True(t, ok)
	assert.Equal(t, 2, g.Stats().LoginsRefused)
}

func TestIgnoreLogins(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	g := s.Add("mute", Config{Email: "e", Password: "p"})
	g.SetFaults(Faults{IgnoreLogins: true})
	ws := dial(t, g.URL())
	send(t, ws, ctc.TypePostLogin, ctc.Login{Email: "e", Password: "p"})
	require.NoError(t, ws.SetReadDeadline(time.Now().Add(200*time.Millisecond)))
	_, _, err := ws.ReadMessage()
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	assert.True(t, ne.Timeout(), "no answer at all")
}

func TestDropAfterWithCode(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	g := s.Add("flaky", Config{Email: "e", Password: "p"})
	g.SetFaults(Faults{DropAfter: 50 * time.Millisecond, DropCode: websocket.CloseGoingAway})
	ws := dial(t, g.URL())
	require.NoError(t, ws.SetReadDeadline(time.Now().Add(2*time.Second)))
	_, _, err := ws.ReadMessage()
	assert.True(t, websocket.IsCloseError(err, websocket.CloseGoingAway), "%v", err)

	g.SetFaults(Faults{DropAfter: 50 * time.Millisecond})
	ws2 := dial(t, g.URL())
	require.NoError(t, ws2.SetReadDeadline(time.Now().Add(2*time.Second)))
	_, _, err = ws2.ReadMessage()
	require.Error(t, err)
	assert.False(t, websocket.IsCloseError(err, websocket.CloseGoingAway, websocket.CloseNormalClosure), "abrupt: %v", err)
	require.Eventually(t, func() bool { return g.Stats().Open == 0 }, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, 2, g.Stats().Accepted)
}

func TestDropNow(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	g := s.Add("d", Config{Email: "e", Password: "p"})
	ws := dial(t, g.URL())
	require.Eventually(t, func() bool { return g.Stats().Open == 1 }, 10*time.Second, 5*time.Millisecond)
	g.Drop(websocket.CloseServiceRestart)
	require.NoError(t, ws.SetReadDeadline(time.Now().Add(2*time.Second)))
	_, _, err := ws.ReadMessage()
	assert.True(t, websocket.IsCloseError(err, websocket.CloseServiceRestart), "%v", err)
}

func TestGarbage(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	g := s.Add("noisy", Config{Email: "e", Password: "p"})
	ws := dial(t, g.URL())
	g.SetFaults(Faults{Garbage: true, GarbageEvery: time.Millisecond})
	kinds := map[string]int{}
	for i := 0; i < len(garbageFrames); i++ {
		require.NoError(t, ws.SetReadDeadline(time.Now().Add(2*time.Second)))
		_, b, err := ws.ReadMessage()
		require.NoError(t, err)
		m, err := ctc.Decode(b)
		switch {
		case err != nil:
			kinds["malformed"]++
		case m.MessageType() == "NOT_FROM_THE_FUTURE":
			kinds["unknown"]++
		case m.MessageType() == ctc.TypeRtnDyn:
			kinds["unsolicited"]++
		}
	}
	assert.GreaterOrEqual(t, kinds["malformed"], 5)
	assert.Equal(t, 1, kinds["unknown"])
	assert.Equal(t, 1, kinds["unsolicited"])

	// Off, then on again on the same socket: the sender stops, then resumes.
	g.SetFaults(Faults{})
	require.Eventually(t, func() bool { return !garbageRunning(g) }, 10*time.Second, time.Millisecond, "sender stopped")
	sent := g.Stats().GarbageSent
	g.SetFaults(Faults{Garbage: true, GarbageEvery: time.Millisecond})
	require.Eventually(t, func() bool { return g.Stats().GarbageSent > sent }, 10*time.Second, time.Millisecond,
		"garbage resumes after being switched off and on")
	g.SetFaults(Faults{})
}

// garbageRunning says whether any socket of g has a garbage sender.
func garbageRunning(g *Gateway) bool { return workerRunning(g, workGarbage) }

// workerRunning says whether any socket of g runs worker w.
func workerRunning(g *Gateway, w worker) bool {
	g.mu.Lock()
	conns := g.connList()
	g.mu.Unlock()
	for _, c := range conns {
		c.gmu.Lock()
		running := c.running[w]
		c.gmu.Unlock()
		if running {
			return true
		}
	}
	return false
}

func TestKeepRecords(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	g := s.Add("k", Config{Email: "e", Password: "p"})
	s.KeepRecords(2)
	ws := dial(t, g.URL())
	for range 5 {
		login(t, ws, "e", "p")
	}
	st := g.Stats()
	assert.Len(t, st.Frames, 2, "only the most recent frames")
	assert.Equal(t, 5, st.Logins, "counters still count everything")
	s.KeepRecords(0)
	login(t, ws, "e", "p")
	assert.Empty(t, g.Stats().Frames)
}

func TestStallHandshake(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	g := s.Add("stall", Config{Email: "e", Password: "p"})
	g.SetFaults(Faults{StallHandshake: true})
	// The upgrade request is written by hand, with no deadline, so that it
	// reaches the server however loaded the machine is (a Dialer's
	// handshake timeout also covers the TCP connect and the write, and a
	// client that gave up before writing leaves the server nothing to
	// stall on); only the wait for the answer is bounded.
	u := strings.TrimPrefix(g.URL(), "ws://")
	host, path, _ := strings.Cut(u, "/")
	conn, err := net.Dial("tcp", host)
	require.NoError(t, err)
	_, err = fmt.Fprintf(conn, "GET /%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", path, host)
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(150*time.Millisecond)))
	_, err = conn.Read(make([]byte, 1))
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	assert.True(t, ne.Timeout(), "no answer to a stalled handshake")
	// The server has the request; it notices the client give up (else
	// clearing the switch could still upgrade the abandoned handshake into
	// a socket). On a loaded machine its handler may start only after the
	// client gave up: wait until it has seen the handshake, then until it
	// let go.
	require.Eventually(t, func() bool { return s.HandshakePeak() >= 1 }, 10*time.Second, time.Millisecond)
	require.NoError(t, conn.Close())
	assert.Equal(t, 0, g.Stats().Accepted)
	require.Eventually(t, func() bool { return s.handshakes.Load() == 0 }, 10*time.Second, time.Millisecond)
	g.SetFaults(Faults{})
	dial(t, g.URL())
	require.Eventually(t, func() bool { return g.Stats().Accepted == 1 }, 10*time.Second, time.Millisecond)
}

func TestPingsAndWithheldPongs(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	g := s.Add("pong", Config{Email: "e", Password: "p"})
	ws := dial(t, g.URL())
	pongs := make(chan string, 4)
	ws.SetPongHandler(func(d string) error { pongs <- d; return nil })
	go func() {
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	require.NoError(t, ws.WriteControl(websocket.PingMessage, []byte("1"), time.Now().Add(time.Second)))
	select {
	case d := <-pongs:
		assert.Equal(t, "1", d)
	case <-time.After(2 * time.Second):
		t.Fatal("no pong")
	}
	g.SetFaults(Faults{WithholdPongs: true})
	require.NoError(t, ws.WriteControl(websocket.PingMessage, []byte("2"), time.Now().Add(time.Second)))
	require.Eventually(t, func() bool { return g.Stats().Pings == 2 }, 10*time.Second, 5*time.Millisecond)
	select {
	case d := <-pongs:
		t.Fatalf("pong %q while withheld", d)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestUnknownPathIs404(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	// Generous bounds: they catch a server that stops answering, not a
	// slow one. With 10 s, 7 of 2,000 logins missed them once under -race
	// while the rest of the suite kept both cores busy (load ~11).
	const patience = 30 * time.Second
	d := websocket.Dialer{HandshakeTimeout: patience} // not a test of the timeout: a loaded machine once took over 1 s to dial
	_, resp, err := d.Dial("ws://"+s.Addr()+"/gw/nobody", nil)
	require.ErrorIs(t, err, websocket.ErrBadHandshake)
	assert.Equal(t, 404, resp.StatusCode)
}

func TestTwoThousandConcurrentConnections(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	const n = 2000
	gws := make([]*Gateway, n)
	for i := range gws {
		gws[i] = s.Add(fmt.Sprintf("gw-%04d", i), Config{Email: "e", Password: fmt.Sprintf("p%d", i)})
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	conns := make([]*websocket.Conn, n)
	// Generous bounds: they catch a server that stops answering, not a
	// slow one. With 10 s, 7 of 2,000 logins missed them once under -race
	// while the rest of the suite kept both cores busy (load ~11).
	const patience = 30 * time.Second
	d := websocket.Dialer{HandshakeTimeout: patience}
	for i := range gws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ws, _, err := d.Dial(gws[i].URL(), nil)
			if err != nil {
				errs <- err
				return
			}
			conns[i] = ws
			b, _ := ctc.Encode(ctc.TypePostLogin, ctc.Login{Email: "e", Password: fmt.Sprintf("p%d", i)})
			if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
				errs <- err
				return
			}
			_ = ws.SetReadDeadline(time.Now().Add(patience))
			_, raw, err := ws.ReadMessage()
			if err != nil {
				errs <- err
				return
			}
			var env struct{ Type string }
			_ = json.Unmarshal(raw, &env)
			if env.Type != ctc.TypeRtnLogin {
				errs <- fmt.Errorf("gateway %d answered %s", i, raw)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	logins := 0
	for _, g := range gws {
		st := g.Stats()
		logins += st.Logins
		assert.Equal(t, 1, st.Open)
	}
	assert.Equal(t, n, logins)
	for _, c := range conns {
		if c != nil {
			_ = c.Close()
		}
	}
}

func TestCloseEndsEverything(t *testing.T) {
	t.Parallel()
	s, err := NewServer("127.0.0.1:0")
	require.NoError(t, err)
	g := s.Add("x", Config{Email: "e", Password: "p"})
	g.SetFaults(Faults{Garbage: true})
	ws := dial(t, g.URL())
	s.Close()
	require.NoError(t, ws.SetReadDeadline(time.Now().Add(2*time.Second)))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			break
		}
	}
	assert.Equal(t, 0, g.Stats().Open)
	s.Close() // twice is fine
}

// A peer that pings and then closes with 1000 at once (gatewayd deleting
// a gateway between two pings) is recorded as closing with 1000, even
// though its socket is reset by then and the pong cannot be written.
func TestCloseRightAfterAPingIsRecorded(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	g := s.Add("ping-close", Config{Email: "e", Password: "p"})
	for i := range 20 {
		ws := dial(t, g.URL())
		ok, _ := ctc.LoginOutcome(login(t, ws, "e", "p"))
		require.True(t, ok)
		require.NoError(t, ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second)))
		require.NoError(t, ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second)))
		// Reset, not FIN: the pong finds the socket dead.
		require.NoError(t, ws.UnderlyingConn().(*net.TCPConn).SetLinger(0))
		require.NoError(t, ws.Close())
		require.Eventually(t, func() bool { return g.Stats().Open == 0 && len(g.Stats().CloseCodes) == i+1 },
			10*time.Second, 5*time.Millisecond)
	}
	codes := g.Stats().CloseCodes
	assert.Equal(t, slices.Repeat([]int{1000}, 20), codes)
}
