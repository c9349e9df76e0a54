package ctctest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ctcgw/gatewayd/ctc"
)

// Faults are a gateway's fault switches. They may be changed while the
// gateway runs; a change applies to the next frame, connection or tick.
//
// As JSON (the control surface, MarshalJSON, UnmarshalJSON) the fields
// have the snake_case names of their tags and durations are Go duration
// strings.
type Faults struct {
	// RefuseLogins answers every POST_LOGIN with RTN_ERR.
	RefuseLogins bool `json:"refuse_logins"`
	// IgnoreLogins never answers POST_LOGIN.
	IgnoreLogins bool `json:"ignore_logins"`
	// AnswerLoginTwice sends an accepted login's RTN_LOGIN twice.
	AnswerLoginTwice bool `json:"answer_login_twice"`
	// DropAfter closes each new socket this long after it opened.
	DropAfter time.Duration `json:"drop_after"`
	// DropCode is the close code DropAfter sends; 0 (or 1005, 1006, 1015,
	// which cannot be sent) closes the TCP connection without a close frame.
	DropCode int `json:"drop_code"` // see CheckDropCode
	// Garbage sends malformed, unknown and unsolicited frames every
	// GarbageEvery (default 20ms) while a socket is open.
	Garbage      bool          `json:"garbage"`
	GarbageEvery time.Duration `json:"garbage_every"`
	// StallHandshake holds HTTP upgrades until it is cleared or the client
	// gives up.
	StallHandshake bool `json:"stall_handshake"`
	// WithholdPongs leaves WebSocket pings unanswered.
	WithholdPongs bool `json:"withhold_pongs"`

	// TempEvery pushes NOT_DYN_TEMP for every listed sensor this often on
	// each subscribed socket (0: never); see SimulatedTemperature.
	TempEvery time.Duration `json:"temp_every"`
	// IgnoreDiscovery never answers GET_DYN_CONNECTED.
	IgnoreDiscovery bool `json:"ignore_discovery"`
	// IgnoreSubscribe never answers POST_SUB_CHANGES (nor subscribes).
	IgnoreSubscribe bool `json:"ignore_subscribe"`
	// GarbageDiscovery answers GET_DYN_CONNECTED with RTN_DYN whose Data is
	// no sensor list: "oops" and {"1":"x"} in turn.
	GarbageDiscovery bool `json:"garbage_discovery"`
	// DiscoveryDelay holds each GET_DYN_CONNECTED answer this long; the
	// sensor list is the one at the request (a slow gateway). Later
	// requests on the socket wait behind it.
	DiscoveryDelay time.Duration `json:"discovery_delay"`

	// Readings: TAKE_DYN_READING is answered RTN_DYN, then, on a
	// subscribed socket, NOT_DYN_READING_STARTED comes StartDelay later
	// and NOT_DYN_READING CaptureDelay after that (CaptureRealtime: the
	// sensor's Samples/ReadRate). Zero delays suit tests; ctcsim uses
	// 20ms and CaptureRealtime. Each reading uses the switches as they
	// were when it was asked for.
	StartDelay   time.Duration `json:"start_delay"`
	CaptureDelay time.Duration `json:"capture_delay"`
	// Encoding of the samples: EncodingCSV (also "", and any value
	// ParseEncoding rejects), EncodingJSON or EncodingBase64.
	Encoding Encoding `json:"encoding"`
	// RefuseReadings answers NOT_DYN_READING_STARTED with Success false and
	// Error RefusalText ("Sensor busy" when empty).
	RefuseReadings bool   `json:"refuse_readings"`
	RefusalText    string `json:"refusal_text"`
	// NeverDeliverReadings starts readings that never end.
	NeverDeliverReadings bool `json:"never_deliver_readings"`
	// MalformedSamples makes Y one sample shorter than X and puts a
	// non-number at Z[1] (base64: a dangling odd byte).
	MalformedSamples bool `json:"malformed_samples"`
	// DropMidCapture closes the socket abruptly right after
	// NOT_DYN_READING_STARTED.
	DropMidCapture bool `json:"drop_mid_capture"`
	// IgnoreTakeReading never answers TAKE_DYN_READING.
	IgnoreTakeReading bool `json:"ignore_take_reading"`

	// Hostile peers. Flood sends FloodFrame (default: a 62-byte unknown
	// NOT_SIM_FLOOD frame; read when a flood starts) on each logged-in
	// socket as fast as the socket takes it, until switched off.
	Flood      bool   `json:"flood"`
	FloodFrame string `json:"flood_frame"`
	// OversizeAfterLogin sends one text frame of this many bytes right
	// after every successful login reply (0: none): past a client's read
	// limit, the client drops the socket after each login.
	OversizeAfterLogin int `json:"oversize_after_login"`
	// LoginErrorSize answers every POST_LOGIN with RTN_ERR whose Error text
	// is this many bytes (0: normal logins).
	LoginErrorSize int `json:"login_error_size"`
	// GreetOnOpen is a text frame sent on every new socket as soon as it
	// opens, before anything is read (empty: none): a gateway that speaks
	// first, so a client must not take it for an answer.
	GreetOnOpen string `json:"greet_on_open"`
	// GreetSplit sends GreetOnOpen (at most 125 bytes) in two writes this
	// far apart, the frame's head and half its text first.
	GreetSplit time.Duration `json:"greet_split"`
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

	DiscoveriesAnswered int // GET_DYN_CONNECTED answered (GarbageDiscovery's answers too)
	TemperaturesPushed  int // NOT_DYN_TEMP frames sent (TempEvery and PushTemperature)
	ReadingsRequested   int // TAKE_DYN_READING received after login (unknown serials and ignored ones too)
	ReadingsDelivered   int // NOT_DYN_READING frames sent (requested and PushReading)
	FloodSent           int // frames sent by the Flood fault
	OversizeSent        int // frames OversizeAfterLogin sent or began to send
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
//
// Lock order: Server.mu before Gateway.mu. A conn's wmu and gmu are
// leaves: nothing else is locked while either is held, and neither is
// taken while Gateway.mu is held.
type Gateway struct {
	name   string
	url    string
	server *Server

	// faults is written under mu (together with changed) and read
	// anywhere without a lock.
	faults atomic.Pointer[Faults]

	mu  sync.Mutex
	cfg Config
	// changed is closed and replaced by every UpdateFaults (and so
	// SetFaults): whoever waits for a switch (a stalled handshake, a
	// conn's workers) selects on it instead of polling.
	changed chan struct{}
	stats   Stats
	conns   map[*conn]struct{}
	signals map[int64]Signal // SetSignal's overrides
	// nextSignals are SetSignalAfterNextReading's: applied once the next
	// reading of their serial is built, before it is sent.
	nextSignals map[int64]Signal

	readingID atomic.Int64
	// acquiring counts acquisitions in progress: tests wait for 0 to know
	// that a reading that did not come will not come.
	acquiring atomic.Int64
	// floodSent is Stats.FloodSent, counted without the lock.
	floodSent atomic.Int64

	// withheld counts notifications not sent because their socket was not
	// subscribed: the signal tests wait for to prove one was not sent.
	withheld atomic.Int64
}

func newGateway(s *Server, name string, cfg Config) *Gateway {
	g := &Gateway{name: name, url: s.base + "/gw/" + name, cfg: cfg, conns: make(map[*conn]struct{}), server: s,
		changed: make(chan struct{})}
	g.faults.Store(&Faults{})
	return g
}

// Name is the gateway's path segment.
func (g *Gateway) Name() string { return g.name }

// URL is the gateway's ws:// URL.
func (g *Gateway) URL() string { return g.url }

// SetFaults replaces the fault switches.
func (g *Gateway) SetFaults(f Faults) { g.UpdateFaults(func(cur *Faults) { *cur = f }) }

// Faults returns the current fault switches.
func (g *Gateway) Faults() Faults { return *g.faults.Load() }

// watch returns the current faults and a channel closed at their next
// change, read together so no change falls between them.
func (g *Gateway) watch() (Faults, <-chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return *g.faults.Load(), g.changed
}

// connList returns the open sockets; g.mu must be held.
func (g *Gateway) connList() []*conn {
	conns := make([]*conn, 0, len(g.conns))
	for c := range g.conns {
		conns = append(conns, c)
	}
	return conns
}

// Stats returns a copy of the records.
func (g *Gateway) Stats() Stats {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.stats
	s.Open = len(g.conns)
	s.FloodSent = int(g.floodSent.Load())
	s.Frames = append([]Frame(nil), g.stats.Frames...)
	s.CloseCodes = append([]int(nil), g.stats.CloseCodes...)
	return s
}

// Drop closes every open socket now, with a close frame of code, or
// abruptly when code is 0. It returns how many sockets it closed.
func (g *Gateway) Drop(code int) int {
	g.mu.Lock()
	conns := g.connList()
	g.mu.Unlock()
	for _, c := range conns {
		c.kill(code)
	}
	return len(conns)
}

// waitHandshake holds an HTTP upgrade while StallHandshake is on. It
// sleeps on the change channel, so a thousand stalled handshakes cost
// their goroutines and nothing else.
func (g *Gateway) waitHandshake(ctx context.Context, closing <-chan struct{}) bool {
	for {
		f, changed := g.watch()
		if !f.StallHandshake {
			return true
		}
		g.server.stallWakeups.Add(1)
		select {
		case <-ctx.Done():
			return false
		case <-closing:
			return false
		case <-changed:
		}
	}
}

func (g *Gateway) attach(ws *websocket.Conn) *conn {
	c := &conn{g: g, ws: ws, done: make(chan struct{})}
	g.mu.Lock()
	g.conns[c] = struct{}{}
	g.stats.Accepted++
	g.mu.Unlock()
	// Close closes closing before it drops every gateway's sockets: a
	// socket attached too late for that drop sees closing here.
	select {
	case <-g.server.closing:
		c.kill(0)
	default:
	}
	if f := g.Faults(); f.DropAfter > 0 {
		c.spawn(func() { c.dropAfter(f.DropAfter, f.DropCode) })
	}
	c.startWorkers()
	return c
}

func (g *Gateway) detach(c *conn) {
	c.gmu.Lock()
	c.ended = true
	c.gmu.Unlock()
	close(c.done)
	_ = c.ws.Close() // a worker blocked in a write fails now
	c.workers.Wait()
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

// conn is one accepted socket. Its handler goroutine is the only reader.
// Every other goroutine of the socket (fault workers, readings, the drop
// timer) is started by spawn, counted in workers, ends when done closes,
// and is waited for by detach.
type conn struct {
	g    *Gateway
	ws   *websocket.Conn
	done chan struct{}

	// wmu serialises data frames; subscribed changes only under it, so a
	// notification is never written after the answer to
	// POST_UNSUB_CHANGES.
	wmu        sync.Mutex
	subscribed atomic.Bool
	loggedIn   atomic.Bool

	// gmu guards ended and running: a worker that decides to stop clears
	// its flag in the same critical section in which start checks it, so
	// a switch turned off and on again never ends with no worker, and no
	// goroutine starts after detach waited for them.
	gmu     sync.Mutex
	ended   bool
	running [numWorkers]bool
	workers sync.WaitGroup

	// closeSeen is written under g.mu.
	closeSeen bool
}

// worker names a background loop of a socket that a fault switch starts.
type worker int

const (
	workGarbage worker = iota
	workTemp
	workFlood
	numWorkers
)

// wants says whether the switches ask for worker w on this socket now.
func (c *conn) wants(w worker) bool {
	f := c.g.faults.Load()
	switch w {
	case workGarbage:
		return f.Garbage
	case workTemp:
		return f.TempEvery > 0 && c.subscribed.Load()
	case workFlood:
		return f.Flood && c.loggedIn.Load()
	}
	return false
}

// startWorkers starts every worker the switches ask for that is not
// running yet.
func (c *conn) startWorkers() {
	for w := range worker(numWorkers) {
		c.start(w)
	}
}

func (c *conn) start(w worker) {
	c.gmu.Lock()
	defer c.gmu.Unlock()
	if c.ended || c.running[w] || !c.wants(w) {
		return
	}
	c.running[w] = true
	c.workers.Add(1)
	go func() {
		defer c.workers.Done()
		switch w {
		case workGarbage:
			c.garbageLoop()
		case workTemp:
			c.tempLoop()
		case workFlood:
			c.floodLoop()
		}
	}()
}

// stopped marks worker w stopped when it ends for a reason of its own (a
// failed write).
func (c *conn) stopped(w worker) {
	c.gmu.Lock()
	c.running[w] = false
	c.gmu.Unlock()
}

// keepGoing says whether worker w should go on; when it should not, it
// marks it stopped.
func (c *conn) keepGoing(w worker) bool {
	c.gmu.Lock()
	defer c.gmu.Unlock()
	if c.ended || !c.wants(w) {
		c.running[w] = false
		return false
	}
	return true
}

// spawn runs f in a goroutine owned by the socket, unless the socket
// ended. f must return soon after c.done closes.
func (c *conn) spawn(f func()) bool {
	c.gmu.Lock()
	defer c.gmu.Unlock()
	if c.ended {
		return false
	}
	c.workers.Add(1)
	go func() {
		defer c.workers.Done()
		f()
	}()
	return true
}

// sleep waits d or until the socket ends; it says whether d passed.
func (c *conn) sleep(d time.Duration) bool {
	if d <= 0 {
		select {
		case <-c.done:
			return false
		default:
			return true
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.done:
		return false
	case <-t.C:
		return true
	}
}

func (c *conn) dropAfter(d time.Duration, code int) {
	if c.sleep(d) {
		c.kill(code)
	}
}

func (c *conn) serve() {
	c.ws.SetReadLimit(1 << 20)
	c.ws.SetPingHandler(func(data string) error {
		var withhold bool
		c.g.record(func(s *Stats) { s.Pings++ })
		withhold = c.g.Faults().WithholdPongs
		if withhold {
			return nil
		}
		// As gorilla's own ping handler does, a pong that cannot be
		// written is dropped, not a reason to stop reading: on a loaded
		// test machine, a pong waiting behind a reading's large frame for
		// its deadline used to end the read loop, and the simulator reset
		// a healthy gateway's socket; and a pong to a peer that pinged and
		// then closed (a deleted gateway) failed on the reset socket and
		// ended the loop one frame before the peer's close frame, so its
		// 1000 was recorded as 1006. A dead socket's next read ends the
		// loop anyway. (A pong that timed out waiting for the write lock
		// did not break the socket: no deadline for the reader here.)
		_ = c.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(writeTimeout))
		return nil
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
	if f := c.g.Faults(); f.GreetOnOpen != "" {
		if f.GreetSplit > 0 && len(f.GreetOnOpen) <= 125 {
			c.greetSplit(f.GreetOnOpen, f.GreetSplit)
		} else {
			_ = c.write(websocket.TextMessage, []byte(f.GreetOnOpen))
		}
	}
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
	cfg := c.g.cfg
	c.g.mu.Unlock()
	faults := c.g.Faults()

	if typ == ctc.TypePostLogin {
		c.login(faults, cfg, fields["Data"])
		return
	}
	if !c.loggedIn.Load() {
		c.violation("not logged in")
		return
	}
	switch typ {
	case ctc.TypeGetDynConnected:
		c.discover(faults, cfg.Sensors)
	case ctc.TypePostSubChanges:
		if faults.IgnoreSubscribe {
			return
		}
		c.setSubscribed(true)
	case ctc.TypePostUnsubChanges:
		c.setSubscribed(false)
	case ctc.TypeTakeDynReading:
		c.takeReading(faults, cfg.Sensors, fields["Data"])
	default:
		c.violation("unknown type " + typ)
	}
}

// greetSplit writes one text frame by hand (a server's frames are not
// masked: FIN and text, then a one-byte length) in two writes, pause
// apart: a peer reads its first half without the rest.
func (c *conn) greetSplit(text string, pause time.Duration) {
	frame := append([]byte{0x81, byte(len(text))}, text...)
	half := 2 + len(text)/2
	c.wmu.Lock()
	defer c.wmu.Unlock()
	raw := c.ws.NetConn()
	if _, err := raw.Write(frame[:half]); err != nil {
		return
	}
	time.Sleep(pause)
	_, _ = raw.Write(frame[half:])
}

func (c *conn) violation(reason string) {
	c.g.record(func(s *Stats) { s.Violations++ })
	c.reply(ctc.TypeRtnErr, map[string]any{"Attempt": nil, "Error": reason})
}

// frame encodes a frame from the gateway; nil when data cannot be JSON
// (a NaN a caller pushed), which is then not sent.
func frame(typ string, data any) []byte {
	b, err := json.Marshal(struct {
		Type   string
		From   string
		Target string
		Data   any
	}{typ, "SERV", "UI", data})
	if err != nil {
		return nil
	}
	return b
}

func (c *conn) reply(typ string, data any) {
	if b := frame(typ, data); b != nil {
		_ = c.write(websocket.TextMessage, b)
	}
}

// notify writes a notification if the socket is subscribed and says
// whether it did.
func (c *conn) notify(b []byte) bool {
	if b == nil {
		return false
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !c.subscribed.Load() {
		c.g.withheld.Add(1)
		return false
	}
	return c.writeLocked(websocket.TextMessage, b) == nil
}

// setSubscribed switches notifications on or off and answers RTN_DYN, in
// one critical section of wmu.
func (c *conn) setSubscribed(on bool) {
	b := frame(ctc.TypeRtnDyn, map[string]any{})
	c.wmu.Lock()
	c.subscribed.Store(on)
	_ = c.writeLocked(websocket.TextMessage, b)
	c.wmu.Unlock()
	if on {
		c.startWorkers()
	}
}

// write sends one frame. A write that fails leaves the socket unusable
// (gorilla/websocket keeps the error), so it closes the connection: the
// reader sees it and detaches.
func (c *conn) write(kind int, b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(kind, b)
}

func (c *conn) writeLocked(kind int, b []byte) error {
	_ = c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	err := c.ws.WriteMessage(kind, b)
	if err != nil {
		c.broken(err)
	}
	return err
}

// broken ends a connection a write failed on: its reader stops, after
// reading what the peer had sent before it went away. Closing the socket
// here instead made the reader fail before it got to a close frame already
// received, so a peer that closed with 1000 while an answer was on its way
// was recorded as 1006. A write that timed out means a peer that stopped
// reading, perhaps for good: its reader gets a second. Any other failure
// means a socket already dead (reset or closed), whose reads end by
// themselves once what was received is read; the deadline is only a
// backstop there, long enough that a reader delayed on a loaded machine
// still gets to the close frame.
func (c *conn) broken(err error) {
	wait := writeTimeout
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		wait = time.Second
	}
	_ = c.ws.UnderlyingConn().SetReadDeadline(time.Now().Add(wait))
}

// writeTimeout bounds every write, so a peer that stops reading costs a
// worker ten seconds, not forever. Generous, because a write that only
// waits its turn on a test machine loaded enough to take seconds over a
// login must not cost a healthy gateway its connection.
const writeTimeout = 10 * time.Second

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

func (c *conn) garbageLoop() {
	for i := 0; ; i++ {
		if !c.keepGoing(workGarbage) {
			return
		}
		every := c.g.Faults().GarbageEvery
		if every <= 0 {
			every = 20 * time.Millisecond
		}
		if !c.sleep(every) {
			return
		}
		g := garbageFrames[i%len(garbageFrames)]
		if c.write(g.kind, []byte(g.data)) != nil {
			return
		}
		c.g.record(func(s *Stats) { s.GarbageSent++ })
	}
}

// CheckDropCode says what is wrong with n as a DropCode: 0, 1005, 1006 or
// 1015 (no close frame: those cannot be sent), or a close code a peer may
// send and gorilla (gatewayd's library) reads as a close: 1000–1003,
// 1007–1013 and 3000–4999 (RFC 6455 §7.4 and IANA's registry add 1014,
// which gorilla refuses). Another number was sent as it was, or cut to 16
// bits (99999 became 34463), and the peer saw a protocol error instead of
// the drop it was to simulate (found by audits, helpers 4, 5 and 8).
func CheckDropCode(n int) error {
	switch {
	case n == 0, n == 1005, n == 1006, n == 1015:
	case n >= 1000 && n <= 1003, n >= 1007 && n <= 1013, n >= 3000 && n <= 4999:
	default:
		return fmt.Errorf("want 0 (no close frame) or a close code a peer may send (1000–1003, 1007–1013, 3000–4999), got %d", n)
	}
	return nil
}
