package ctctest

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ctcgw/gatewayd/ctc"
)

// Faults are a gateway's fault switches. They may be changed while the
// gateway runs; a change applies to the next frame, connection or tick.
type Faults struct {
	// RefuseLogins answers every POST_LOGIN with RTN_ERR.
	RefuseLogins bool
	// IgnoreLogins never answers POST_LOGIN.
	IgnoreLogins bool
	// DropAfter closes each new socket this long after it opened.
	DropAfter time.Duration
	// DropCode is the close code DropAfter sends; 0 (or 1005, 1006, 1015,
	// which cannot be sent) closes the TCP connection without a close frame.
	DropCode int
	// Garbage sends malformed, unknown and unsolicited frames every
	// GarbageEvery (default 20ms) while a socket is open.
	Garbage      bool
	GarbageEvery time.Duration
	// StallHandshake holds HTTP upgrades until it is cleared or the client
	// gives up.
	StallHandshake bool
	// WithholdPongs leaves WebSocket pings unanswered.
	WithholdPongs bool
}

// Frame is one frame a gateway received.
type Frame struct {
	Type string // "" when the frame had no readable Type
	Raw  string
	At   time.Time
}

// Stats are a gateway's records.
type Stats struct {
	Accepted      int // sockets accepted
	Open          int // sockets open now
	Logins        int // logins accepted
	LoginsRefused int // logins answered with RTN_ERR
	Frames        []Frame
	CloseCodes    []int // close codes received; 1006 for a socket that ended without one
	Pings         int
	Violations    int // CorrelationId, a request before login, unknown types, malformed frames
	GarbageSent   int // frames sent by the Garbage fault
}

// defaultKeep is how many frames and close codes a gateway keeps.
const defaultKeep = 1000

// appendCapped appends v and drops the oldest entries past keep.
func appendCapped[T any](list []T, v T, keep int) []T {
	if keep <= 0 {
		return list[:0]
	}
	list = append(list, v)
	if over := len(list) - keep; over > 0 {
		list = append(list[:0], list[over:]...)
	}
	return list
}

// Gateway is one simulated CTC gateway.
type Gateway struct {
	name   string
	url    string
	server *Server

	mu     sync.Mutex
	cfg    Config
	faults Faults
	stats  Stats
	conns  map[*conn]struct{}
}

// Name is the gateway's path segment.
func (g *Gateway) Name() string { return g.name }

// URL is the gateway's ws:// URL.
func (g *Gateway) URL() string { return g.url }

// SetFaults replaces the fault switches.
func (g *Gateway) SetFaults(f Faults) {
	g.mu.Lock()
	g.faults = f
	var start []*conn
	if f.Garbage {
		for c := range g.conns {
			start = append(start, c)
		}
	}
	g.mu.Unlock()
	for _, c := range start {
		c.startGarbage()
	}
}

// Faults returns the current fault switches.
func (g *Gateway) Faults() Faults {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.faults
}

// Stats returns a copy of the records.
func (g *Gateway) Stats() Stats {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.stats
	s.Open = len(g.conns)
	s.Frames = append([]Frame(nil), g.stats.Frames...)
	s.CloseCodes = append([]int(nil), g.stats.CloseCodes...)
	return s
}

// ResetStats clears the records (Open still counts live sockets).
func (g *Gateway) ResetStats() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stats = Stats{}
}

// Drop closes every open socket now, with a close frame of code, or
// abruptly when code is 0.
func (g *Gateway) Drop(code int) {
	g.mu.Lock()
	conns := make([]*conn, 0, len(g.conns))
	for c := range g.conns {
		conns = append(conns, c)
	}
	g.mu.Unlock()
	for _, c := range conns {
		c.kill(code)
	}
}

func (g *Gateway) waitHandshake(ctx context.Context, closing <-chan struct{}) bool {
	for g.Faults().StallHandshake {
		select {
		case <-ctx.Done():
			return false
		case <-closing:
			return false
		case <-time.After(10 * time.Millisecond):
		}
	}
	return true
}

func (g *Gateway) attach(ws *websocket.Conn) *conn {
	c := &conn{g: g, ws: ws, done: make(chan struct{})}
	g.mu.Lock()
	g.conns[c] = struct{}{}
	g.stats.Accepted++
	f := g.faults
	g.mu.Unlock()
	if f.DropAfter > 0 {
		code := f.DropCode
		c.dropTimer = time.AfterFunc(f.DropAfter, func() { c.kill(code) })
	}
	if f.Garbage {
		c.startGarbage()
	}
	return c
}

func (g *Gateway) detach(c *conn) {
	if c.dropTimer != nil {
		c.dropTimer.Stop()
	}
	c.gmu.Lock()
	c.ended = true
	c.gmu.Unlock()
	close(c.done)
	c.garbage.Wait()
	_ = c.ws.Close()
	g.mu.Lock()
	delete(g.conns, c)
	if !c.closeSeen {
		g.stats.CloseCodes = appendCapped(g.stats.CloseCodes, websocket.CloseAbnormalClosure, int(g.server.keep.Load()))
	}
	g.mu.Unlock()
}

func (g *Gateway) record(f func(*Stats)) {
	g.mu.Lock()
	f(&g.stats)
	g.mu.Unlock()
}

// conn is one accepted socket. Its handler goroutine is the only reader;
// writes are serialised by wmu because garbage and drop timers write too.
type conn struct {
	g         *Gateway
	ws        *websocket.Conn
	wmu       sync.Mutex
	done      chan struct{}
	dropTimer *time.Timer
	garbage   sync.WaitGroup
	// gmu guards the garbage sender's start against the socket's end, so
	// no sender starts after detach waited for them.
	gmu            sync.Mutex
	ended          bool
	garbageRunning bool

	// Owned by the reader goroutine (closeSeen under g.mu).
	loggedIn   bool
	subscribed bool
	closeSeen  bool
}

func (c *conn) serve() {
	c.ws.SetReadLimit(1 << 20)
	c.ws.SetPingHandler(func(data string) error {
		var withhold bool
		c.g.mu.Lock()
		c.g.stats.Pings++
		withhold = c.g.faults.WithholdPongs
		c.g.mu.Unlock()
		if withhold {
			return nil
		}
		err := c.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		if err == websocket.ErrCloseSent {
			return nil
		}
		return err
	})
	c.ws.SetCloseHandler(func(code int, text string) error {
		keep := int(c.g.server.keep.Load())
		c.g.record(func(s *Stats) { s.CloseCodes = appendCapped(s.CloseCodes, code, keep) })
		c.g.mu.Lock()
		c.closeSeen = true
		c.g.mu.Unlock()
		msg := websocket.FormatCloseMessage(code, "")
		if code == websocket.CloseNoStatusReceived {
			msg = websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
		}
		_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
		return nil
	})
	for {
		kind, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		if kind != websocket.TextMessage {
			c.g.record(func(s *Stats) { s.Violations++ })
			continue
		}
		c.handle(data)
	}
}

func (c *conn) handle(data []byte) {
	var fields map[string]json.RawMessage
	parseErr := json.Unmarshal(data, &fields)
	var typ string
	if parseErr == nil {
		_ = json.Unmarshal(fields["Type"], &typ)
	}
	keep := int(c.g.server.keep.Load())
	var f Frame
	if keep > 0 {
		f = Frame{Type: typ, Raw: string(data), At: time.Now()}
	}
	c.g.record(func(s *Stats) { s.Frames = appendCapped(s.Frames, f, keep) })
	switch {
	case parseErr != nil || typ == "":
		c.violation("malformed request")
		return
	case fields["CorrelationId"] != nil:
		// Real gateways fail on a CorrelationId.
		c.violation("unexpected field CorrelationId")
		return
	}
	c.g.mu.Lock()
	cfg, faults := c.g.cfg, c.g.faults
	c.g.mu.Unlock()

	if typ == ctc.TypePostLogin {
		if faults.IgnoreLogins {
			return
		}
		var login ctc.Login
		_ = json.Unmarshal(fields["Data"], &login)
		if faults.RefuseLogins || login.Email != cfg.Email || login.Password != cfg.Password {
			c.g.record(func(s *Stats) { s.LoginsRefused++ })
			c.reply(ctc.TypeRtnErr, map[string]any{"Attempt": nil, "Error": "Invalid email or password"})
			return
		}
		c.loggedIn = true
		c.g.record(func(s *Stats) { s.Logins++ })
		c.g.server.logins.Add(1)
		c.reply(ctc.TypeRtnLogin, ctc.LoginResult{Email: login.Email, First: "Sim", Last: c.g.name, Success: true, AccessLevel: 1, Verified: true})
		return
	}
	if !c.loggedIn {
		c.violation("not logged in")
		return
	}
	switch typ {
	case ctc.TypeGetDynConnected:
		if len(cfg.Sensors) == 0 {
			c.reply(ctc.TypeRtnDyn, []any{})
			return
		}
		byKey := make(map[string]ctc.Sensor, len(cfg.Sensors))
		for _, s := range cfg.Sensors {
			byKey[strconv.FormatInt(s.Serial, 10)] = s
		}
		c.reply(ctc.TypeRtnDyn, byKey)
	case ctc.TypePostSubChanges:
		c.subscribed = true
		c.reply(ctc.TypeRtnDyn, map[string]any{})
	case ctc.TypePostUnsubChanges:
		c.subscribed = false
		c.reply(ctc.TypeRtnDyn, map[string]any{})
	case ctc.TypeTakeDynReading:
		var req ctc.TakeReading
		_ = json.Unmarshal(fields["Data"], &req)
		found := false
		for _, s := range cfg.Sensors {
			found = found || s.Serial == req.Serial
		}
		if !found {
			c.reply(ctc.TypeRtnErr, map[string]any{"Attempt": ctc.TypeTakeDynReading, "Error": "Unknown sensor"})
			return
		}
		c.reply(ctc.TypeRtnDyn, map[string]any{})
		if c.subscribed {
			serial := strconv.FormatInt(req.Serial, 10)
			c.reply(ctc.TypeNotDynReadingStarted, ctc.ReadingStarted{Serial: req.Serial, Success: true})
			c.reply(ctc.TypeNotDynReading, ctc.Reading{ID: 1, Serial: serial, Time: time.Now().UTC().Format("2006-01-02 15:04:05"),
				X: "0.012,0.015,-0.011", Y: "0.021,0.019,-0.020", Z: "0.101,0.099,0.102"})
			c.reply(ctc.TypeNotDynTemp, ctc.Temperature{Serial: serial, Temp: 23.5})
		}
	default:
		c.violation("unknown type " + typ)
	}
}

func (c *conn) violation(reason string) {
	c.g.record(func(s *Stats) { s.Violations++ })
	c.reply(ctc.TypeRtnErr, map[string]any{"Attempt": nil, "Error": reason})
}

func (c *conn) reply(typ string, data any) {
	b, err := json.Marshal(map[string]any{"Type": typ, "From": "SERV", "Target": "UI", "Data": data})
	if err != nil {
		return
	}
	c.write(websocket.TextMessage, b)
}

func (c *conn) write(kind int, b []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(2 * time.Second))
	_ = c.ws.WriteMessage(kind, b)
}

// kill closes the socket with a close frame of code, or abruptly.
func (c *conn) kill(code int) {
	switch code {
	case 0, websocket.CloseNoStatusReceived, websocket.CloseAbnormalClosure, websocket.CloseTLSHandshake:
	default:
		_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, "simulated drop"), time.Now().Add(time.Second))
	}
	_ = c.ws.UnderlyingConn().Close()
}

var garbageFrames = []struct {
	kind int
	data string
}{
	{websocket.TextMessage, `{not json`},
	{websocket.TextMessage, `null`},
	{websocket.TextMessage, `[1,2,3]`},
	{websocket.TextMessage, `{"Type":42}`},
	{websocket.TextMessage, `{"Type":"NOT_FROM_THE_FUTURE","From":"SERV","Target":"UI","Data":{"x":1}}`},
	{websocket.TextMessage, `{"Type":"RTN_DYN","From":"SERV","Target":"UI","Data":{"unsolicited":true}}`},
	{websocket.TextMessage, `{"Type":"NOT_DYN_TEMP","From":"SERV","Target":"UI","Data":[]}`},
	{websocket.BinaryMessage, "\x00\x01\x02\xff"},
	{websocket.TextMessage, "\xff\xfe invalid utf-8"},
}

func (c *conn) startGarbage() {
	c.gmu.Lock()
	defer c.gmu.Unlock()
	if c.ended || c.garbageRunning {
		return
	}
	c.garbageRunning = true
	c.garbage.Add(1)
	go func() {
		defer c.garbage.Done()
		defer func() {
			c.gmu.Lock()
			c.garbageRunning = false
			c.gmu.Unlock()
		}()
		for i := 0; ; i++ {
			f := c.g.Faults()
			if !f.Garbage {
				return
			}
			every := f.GarbageEvery
			if every <= 0 {
				every = 20 * time.Millisecond
			}
			select {
			case <-c.done:
				return
			case <-time.After(every):
			}
			g := garbageFrames[i%len(garbageFrames)]
			c.write(g.kind, []byte(g.data))
			c.g.record(func(s *Stats) { s.GarbageSent++ })
		}
	}()
}
