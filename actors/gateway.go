package actors

import (
	"cmp"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
	"golang.org/x/sync/semaphore"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/ctc"
	"github.com/ctcgw/gatewayd/internal/netguard"
)

// wanted is what the supervisor wants of one gateway. It outlives actor
// restarts: a restarted actor is rebuilt from it (fields reset, PID kept),
// so it always starts from the latest settings and restart count. Only the
// supervisor writes it; the actor reads it under the lock.
type wanted struct {
	mu       sync.Mutex
	target   gatewayd.Target
	restarts int32 // beside proven: the struct stays in its 192-byte size class
	// proven: the gateway's last connection reached an accepted login. It
	// outlives a crash, so a healthy gateway's restart dials in the open
	// lane while peers that never logged in wait in theirs.
	proven bool
	// unread: the supervisor changed target's credentials or desired
	// state and the actor has not read it yet (its reconfigure is on the
	// way). A crash in between must not hand the restarted actor the
	// refusal of the settings it never used (see HandleFailure). In
	// proven's padding: the struct keeps its size class.
	unread bool
	// failures is the actor's count of failed attempts in a row (its
	// backoff's), kept here so that a crash does not reset the backoff
	// the gateway earned: the status's reconnect_attempts clears at each
	// login, and a gateway that crashed right after a login on a long
	// backoff retried from the first step (found by an audit, helper 6).
	// In proven's padding: the struct keeps its size class.
	failures uint16
	// before is the status the supervisor knew when the actor crashed,
	// for the restarted one to go on from (taken once, at its start).
	before *gatewayd.Status
}

func (w *wanted) get() (gatewayd.Target, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.target, int(w.restarts)
}

// peekBefore returns the status the next actor goes on from, leaving it
// for that actor to take.
func (w *wanted) peekBefore() *gatewayd.Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.before
}

// takeBefore returns the status left by a crash, once.
func (w *wanted) takeBefore() *gatewayd.Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	b := w.before
	w.before = nil
	return b
}

func (w *wanted) set(f func(*wanted)) {
	w.mu.Lock()
	f(w)
	w.mu.Unlock()
}

const (
	// closeWait bounds how long a stopping actor waits for its reader and
	// dialer goroutines once the socket is closed.
	closeWait = 2 * time.Second
	// writeTimeout bounds one frame write; only small frames are written.
	writeTimeout = 5 * time.Second
	// markEvery throttles last_seen_at marks from ordinary frames.
	markEvery = 10 * time.Second
	// maxErrorBytes caps last_error: a gateway decides what its error
	// texts say, and one 3.5 MB RTN_ERR must not be copied into every
	// status list and log line.
	maxErrorBytes = 1024
)

// command is one request to the gateway. Answers carry no correlation
// id, so commands go one at a time: the next is sent only when the
// previous one was answered or, if it timed out, when its late answer
// came or a second timeout passed (see pump). Otherwise one unanswered
// request would shift every later answer onto the wrong request.
type command struct {
	typ     string
	data    any
	timeout time.Duration
	// waiters are the requests to answer when a discovery ends.
	waiters []answer[gatewayd.Discovery]
	// reading is the acquisition a TAKE_DYN_READING belongs to.
	reading *acquisition
	// sent: the request is on the wire; its answer was made before
	// anything asked after that moment.
	sent bool
}

// gatewayActor owns one gateway's socket and state machine.
type gatewayActor struct {
	d      *deps
	w      *wanted
	id     uuid.UUID
	self   *actor.PID
	parent *actor.PID

	target   gatewayd.Target
	restarts int
	status   gatewayd.Status
	// failures counts failed attempts in a row for the backoff: unlike
	// status.ReconnectAttempts (failures since the last successful login,
	// API.md §4) it resets only once a connection has stayed healthy for
	// a ping interval, so a gateway that drops every connection right
	// after login keeps backing off.
	failures int

	gen        uint64
	dial       *dialing
	ws         *websocket.Conn
	inbox      *semaphore.Weighted
	stopReader context.CancelFunc
	readerDone chan struct{}
	// readerHeld says whether and when the reader waited for the reading
	// intake in the middle of a frame: the gateway's pongs are queued
	// behind that frame, unread, so no pong is missed (see onTimer).
	readerHeld *holdClock
	// pongDue is when the pong of the oldest unanswered ping was due,
	// pongMark the reader's heldFor then (see holdClock.pongWait).
	pongDue  time.Time
	pongMark int64
	// ledger holds the intake's bytes of this connection's frames on
	// their way through the mailbox.
	ledger *ledger
	// share holds the fleet's inbox share of this connection's frames on
	// their way to the actor (see inboxShare).
	share   *inboxShare
	matcher ctc.Matcher[*command]
	queue   []*command // waiting to be sent
	// discovering is the latest discovery queued or in flight; a new
	// request joins it while it is still queued.
	discovering *command
	subscribed  bool
	// subscribing: a POST_SUB_CHANGES is queued or in flight.
	subscribing bool
	// reachedLogin: the last connection got as far as an accepted login
	// (kept in w across restarts). A gateway that has not, because it is
	// new or its attempts fail before that, dials in the limiter's lane
	// for unproven gateways.
	reachedLogin bool // beside subscribed and subscribing: one word for the four
	// subscribeFailures counts POST_SUB_CHANGES refused or unanswered in a
	// row on this connection; each doubles the wait before the next.
	subscribeFailures uint8
	// discoveryFailures counts discoveries in a row that failed; each
	// doubles the wait before the next (see rediscoverSoon). A byte, as
	// subscribeFailures: the struct stays in its size class.
	discoveryFailures uint8
	// sensorRates are the read rates of the last discovery, by serial (0:
	// none reported); it holds the serials that discovery listed. Made
	// when first written, as schedules: most gateways of a large fleet
	// are at some moment not connected, and two empty maps were a tenth
	// of such a gateway's memory.
	sensorRates listedRates

	readings      []*acquisition // the current acquisition first, then the queue
	readingTimer  *time.Timer
	late          map[int64]*lateNotes // made when first written
	schedules     map[uuid.UUID]*scheduled
	scheduleEpoch uint64
	timers        [numTimers]*time.Timer
	lastMark      time.Time

	dropped     int // bad frames not yet logged
	lastDropLog time.Time

	// State changes logged in the current window, and those not logged.
	stateLogStart time.Time
	stateLogged   int
	stateUnlogged int
	// For the log line of the next state: the retry delay just chosen,
	// and when the current attempt started.
	retryIn     time.Duration
	dialStarted time.Time
}

func newGatewayActor(d *deps, w *wanted) *gatewayActor {
	w.mu.Lock()
	t, restarts, proven := w.target, int(w.restarts), w.proven
	w.unread = false
	w.mu.Unlock()
	// A restarted actor keeps its mailbox, which may still hold messages
	// of the incarnation before (a dial that finished, a frame): its
	// generations start past all of that one's, so they are dropped as
	// stale instead of taken for this incarnation's (a crash's leftover
	// "dialed" once took over a new dial and threw its socket away).
	gen := uint64(restarts) << 32
	return &gatewayActor{d: d, w: w, id: t.ID, target: t, restarts: restarts, reachedLogin: proven, gen: gen}
}

// Receive never blocks on the network: dials and reads run in goroutines
// that report back with messages stamped with the connection generation.
func (a *gatewayActor) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *actor.Started:
		a.self, a.parent = c.Self(), c.Parent()
		a.status = gatewayd.Status{ID: a.id, FactoryID: a.target.FactoryID, GatewayID: a.target.GatewayID, Name: a.target.Name,
			Desired: a.target.Desired, Restarts: a.restarts, LastSeenAt: a.target.LastSeenAt}
		if a.goOnFrom(a.w.takeBefore()) {
			return
		}
		if a.target.Desired == gatewayd.DesiredConnected {
			a.connect()
		} else {
			a.setState(gatewayd.StateDisconnected)
			a.settled()
		}
	case *actor.Restarting:
		a.teardown(true)
	case *actor.Stopping:
		a.teardown(true)
	case *reconfigure:
		a.reconfigure()
	case *connectGateway:
		a.target.Desired = gatewayd.DesiredConnected
		a.status.Desired = a.target.Desired
		switch a.status.State {
		case gatewayd.StateDisconnected, gatewayd.StateAuthFailed, gatewayd.StateFailed, gatewayd.StateBackoff:
			a.connect()
		}
		m.ans.send(a.status, nil)
	case *disconnectGateway:
		a.disconnect()
		m.ans.send(a.status, nil)
	case *getStatus:
		m.ans.send(a.status, nil)
	case *discoverSensors:
		if a.status.State != gatewayd.StateAuthenticated {
			m.ans.fail(fmt.Errorf("%w (state %s)", gatewayd.ErrNotConnected, a.status.State))
			return
		}
		a.discover(m.ans)
	case *takeReading:
		m.ans.send(struct{}{}, a.onTakeReading(m))
	case *lateEnded:
		a.onLateEnded(m)
	case *readingTimer:
		if m.gen == a.gen {
			a.onReadingTimer(m)
		}
	case *scheduleFired:
		a.onScheduleFired(m)
	case *crash:
		panic(ChaosPanic)
	case *dialed:
		a.onDialed(m)
	case *frame:
		// The inbox budget goes back to the connection the frame came on,
		// current or not.
		m.inbox.Release(m.cost)
		m.share.done()
		if m.gen == a.gen && a.ws != nil {
			a.onFrame(m)
		}
		// After onFrame: a reading has been counted as a processor job by
		// now, so the intake never undercounts it.
		m.ledger.done(m.reserved)
	case *quiet:
		if m.gen == a.gen && a.awaitingLogin() {
			a.login()
		}
	case *readEnded:
		if m.gen == a.gen && a.ws != nil {
			if errors.Is(m.err, errFlood) {
				a.d.cfg.Observer.FloodCutOff()
			}
			a.fail("connection lost: " + describe(m.err))
		}
	case *pong:
		m.pending.Store(false)
		if m.gen == a.gen && a.ws != nil {
			a.stopTimer(timerPong)
			// Only an authenticated gateway is seen: a pong nobody asked
			// for before the login is accepted set last_seen_at, which
			// then put a peer that never logged in into the dial
			// limiter's open lane (found by an audit, helper 6).
			if a.status.State == gatewayd.StateAuthenticated {
				a.seen(time.Now(), true)
			}
		}
	case *timerFired:
		if m.gen == a.gen {
			a.onTimer(m.kind)
		}
	}
}

// reconfigure applies new wanted settings: a change of url, email or
// password reconnects (and leaves AUTH_FAILED); a change of the desired
// state connects or disconnects; anything else does not touch the
// connection.
func (a *gatewayActor) reconfigure() {
	a.w.mu.Lock()
	t := a.w.target
	a.w.unread = false
	a.w.mu.Unlock()
	changed := t.Credentials.Differs(a.target.Credentials)
	desiredChanged := t.Desired != a.target.Desired
	schedulesChanged := !slices.Equal(t.Schedules, a.target.Schedules)
	a.target = t
	if schedulesChanged && a.status.State == gatewayd.StateAuthenticated {
		a.updateSchedules()
	}
	a.status.FactoryID, a.status.GatewayID, a.status.Name, a.status.Desired = t.FactoryID, t.GatewayID, t.Name, t.Desired
	reconnect := false
	switch {
	case desiredChanged && t.Desired == gatewayd.DesiredDisconnected:
		a.disconnect()
	case desiredChanged:
		reconnect = true
		a.connect()
	case changed && t.Desired == gatewayd.DesiredConnected:
		a.event(zerolog.InfoLevel).Msg("connection settings changed; reconnecting")
		a.status.ReconnectAttempts = 0
		a.setFailures(0)
		a.setReachedLogin(false) // a new address or login has proven nothing yet
		reconnect = true
		a.connect()
	default:
		// Nothing the connection depends on changed; tell the supervisor
		// about the new names.
		a.d.root.Send(a.parent, &statusChanged{status: a.status})
	}
	if h := a.d.cfg.Hooks.Reconfigured; h != nil {
		h(a.id, reconnect)
	}
}

func (a *gatewayActor) disconnect() {
	a.target.Desired = gatewayd.DesiredDisconnected
	a.status.Desired = a.target.Desired
	a.teardown(false)
	a.status.ReconnectAttempts = 0
	a.setFailures(0)
	a.status.NextRetryAt = nil
	a.setState(gatewayd.StateDisconnected)
	a.settled()
}

// settled tells the test hook that nothing is scheduled for this gateway.
func (a *gatewayActor) settled() {
	if h := a.d.cfg.Hooks.Settled; h != nil {
		h(a.id, a.status.State)
	}
}

// goOnFrom carries over what a crashed incarnation knew (its status as
// the supervisor last saw it): when the gateway was last seen, and the
// failures since its last login (so the backoff keeps growing). A gateway
// that had refused the login stays AUTH_FAILED, without retrying, as it
// would have without the crash; it reports whether it did.
func (a *gatewayActor) goOnFrom(before *gatewayd.Status) bool {
	if before == nil {
		return false
	}
	if before.LastSeenAt != nil && (a.status.LastSeenAt == nil || before.LastSeenAt.After(*a.status.LastSeenAt)) {
		a.status.LastSeenAt = before.LastSeenAt
	}
	a.status.ReconnectAttempts, a.status.LastError = before.ReconnectAttempts, before.LastError
	// The backoff's own count (it outlives the login that cleared the
	// status's), or the status's when a caller made before up.
	a.w.mu.Lock()
	kept := int(a.w.failures)
	a.w.mu.Unlock()
	a.failures = max(before.ReconnectAttempts, kept)
	if before.State == gatewayd.StateAuthFailed && a.target.Desired == gatewayd.DesiredConnected {
		a.setState(gatewayd.StateAuthFailed)
		a.settled()
		return true
	}
	return false
}

// connect starts a new connection attempt with a new generation.
func (a *gatewayActor) connect() {
	a.teardown(false)
	a.gen++
	a.status.NextRetryAt = nil
	a.dialStarted = time.Now()
	a.setState(gatewayd.StateConnecting)

	gen, root, self := a.gen, a.d.root, a.self
	a.dial = startDial(a.d, a.target.URL, !a.reachedLogin, func(err error) { root.Send(self, &dialed{gen: gen, err: err}) }, a.logger())
}

func (a *gatewayActor) onDialed(m *dialed) {
	if m.gen != a.gen || a.dial == nil {
		return // a cancelled attempt's socket was closed by its goroutine
	}
	ws := a.dial.take()
	a.dial = nil
	if errors.Is(m.err, netguard.ErrNotAllowed) {
		a.fail(netguard.ErrNotAllowed.Error()) // the contract's words: "address not allowed"
		return
	}
	if m.err != nil || ws == nil {
		a.fail("dial failed: " + describe(m.err))
		return
	}
	a.ws = ws
	probe := probeOf(ws)
	if probe != nil {
		gen, root, self := a.gen, a.d.root, a.self
		probe.arm(func() { root.Send(self, &quiet{gen: gen}) }, a.d.cfg.QuietWait)
	}
	a.startReader(ws)
	a.setState(gatewayd.StateConnected)
	if probe == nil {
		a.login()
	} else {
		// Should the reader never get to read (held by the readings
		// intake), the login goes anyway.
		a.armTimer(timerDeadline, quietLimit)
	}
	// Else on quiet, once what the gateway sent as the socket opened has
	// been read: such a frame is then known to be no answer.
}

// awaitingLogin: connected, and POST_LOGIN not yet queued or sent (in
// CONNECTED it is the only request there is).
func (a *gatewayActor) awaitingLogin() bool {
	return a.ws != nil && a.status.State == gatewayd.StateConnected && a.matcher.Len() == 0 && len(a.queue) == 0
}

// login sends POST_LOGIN: the first message on a new socket.
func (a *gatewayActor) login() {
	a.enqueue(&command{typ: ctc.TypePostLogin, data: ctc.Login{Email: a.target.Email, Password: a.target.Password},
		timeout: a.d.cfg.AuthTimeout})
}

// enqueue queues a command and sends it if the line is free.
func (a *gatewayActor) enqueue(cmd *command) {
	a.queue = append(a.queue, cmd)
	a.pump()
}

// pump sends the next queued command when no earlier request can still be
// answered (the matcher is empty, tombstones included).
func (a *gatewayActor) pump() {
	if a.ws == nil || a.matcher.Len() > 0 || len(a.queue) == 0 {
		return
	}
	cmd := a.queue[0]
	a.queue[0] = nil
	a.queue = a.queue[1:]
	b, err := ctc.Encode(cmd.typ, cmd.data)
	if err == nil {
		err = a.write(b)
	}
	if err != nil {
		a.queue = append([]*command{cmd}, a.queue...) // teardown answers its waiters
		if errors.Is(err, websocket.ErrCloseSent) {
			// The socket is closing on its own (gorilla sends a close when
			// a frame is over the read limit); the reader's end tells why.
			return
		}
		a.fail("sending " + cmd.typ + " failed: " + describe(err))
		return
	}
	cmd.sent = true
	a.matcher.Add(cmd, time.Now(), cmd.timeout)
	a.armDeadline()
}

// discover asks the gateway for its sensors; waiter (if not nil) is told
// the answer. A discovery still queued is joined; one already sent is not,
// because its answer may predate a sensor added since (an operator who
// asks "now" must get the gateway's answer from after the asking).
func (a *gatewayActor) discover(waiter answer[gatewayd.Discovery]) {
	if a.discovering == nil || a.discovering.sent {
		a.discovering = &command{typ: ctc.TypeGetDynConnected, timeout: a.d.cfg.CommandTimeout}
		defer a.enqueue(a.discovering)
	}
	if waiter != nil {
		a.discovering.waiters = append(a.discovering.waiters, waiter)
	}
}

// finished ends a command: a discovery's waiters get d or err.
func (a *gatewayActor) finished(cmd *command, d gatewayd.Discovery, err error) {
	if cmd == a.discovering {
		a.discovering = nil
	}
	for _, w := range cmd.waiters {
		w.send(d, err)
	}
	cmd.waiters = nil
}

// startReader starts the socket's only reader; its messages carry the
// generation so a late one is dropped.
func (a *gatewayActor) startReader(ws *websocket.Conn) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	held := newHoldClock()
	a.stopReader, a.readerDone, a.readerHeld = cancel, done, held
	a.inbox = semaphore.NewWeighted(int64(a.d.cfg.InboxBytes))
	gen, root, self, inbox := a.gen, a.d.root, a.self, a.inbox
	ws.SetReadLimit(readLimit)
	// At most one pong waits for the actor: the peer's pongs (the frame
	// meter bounds how many) all say the same, and one message each grew
	// the mailbox without bound behind a flood (found by an audit,
	// helper 4).
	pongPending := new(atomic.Bool)
	ws.SetPongHandler(func(string) error {
		if pongPending.CompareAndSwap(false, true) {
			root.Send(self, &pong{gen: gen, pending: pongPending})
		}
		return nil
	})
	led := newLedger(a.d.intake)
	a.ledger = led
	share := newInboxShare(a.d.inboxes)
	a.share = share
	r := &reader{ws: ws, inbox: inbox, share: share, intake: a.d.intake, slow: a.d.slow, crunch: a.d.crunch, held: held, cfg: a.d.cfg, log: a.logger(),
		deliver: func(msg ctc.Message, err error, cost, reserved int64, text *[]byte) bool {
			took := led.hold(reserved)
			if !took {
				reserved = 0
			}
			root.Send(self, &frame{gen: gen, msg: msg, err: err, inbox: inbox, cost: cost, share: share, ledger: led, reserved: reserved, text: text})
			return took
		},
		end: func(err error) { root.Send(self, &readEnded{gen: gen, err: err}) },
	}
	if p := probeOf(ws); p != nil {
		r.boundary = &p.boundary
	}
	go r.run(ctx, done)
}

func (a *gatewayActor) onFrame(m *frame) {
	now := time.Now()
	if m.err != nil {
		a.drop(now, m.err.Error())
		return
	}
	a.seen(now, false)
	if !ctc.IsAnswer(m.msg) {
		if a.status.State != gatewayd.StateAuthenticated {
			// Nothing from a peer is trusted before its login is accepted:
			// a session whose login was then refused had its temperatures,
			// sensors and readings stored.
			a.drop(now, "notification before login: "+m.msg.MessageType())
			return
		}
		a.onNotification(now, m.msg, m.text)
		return
	}
	if _, login := m.msg.(*ctc.LoginResult); login && a.status.State == gatewayd.StateAuthenticated {
		// Its type says what it answers, and the one login of this
		// connection is answered: a gateway that answered it twice had
		// the second taken for the sensor list's answer, and the real
		// list for the subscription's (found by an audit, helper 6).
		a.drop(now, "RTN_LOGIN after the login was answered")
		return
	}
	cmd, ok, late := a.matcher.Take()
	if late && cmd.typ == ctc.TypeTakeDynReading {
		a.onTakeLateAnswer(cmd.reading, m.msg)
	}
	if !ok || late {
		a.drop(now, "answer nobody asked for (or too late): "+m.msg.MessageType())
		a.pump()
		return
	}
	a.armDeadline()
	switch cmd.typ {
	case ctc.TypePostLogin:
		a.onLogin(now, m.msg)
	case ctc.TypeGetDynConnected:
		a.onDiscovery(now, cmd, m.msg)
	case ctc.TypePostSubChanges:
		a.subscribing = false
		if _, ok := m.msg.(*ctc.DynResult); ok {
			a.subscribed, a.subscribeFailures = true, 0
		} else {
			a.drop(now, "subscribing to changes refused: "+m.msg.MessageType())
			a.resubscribeSoon()
		}
	case ctc.TypeTakeDynReading:
		a.onTakeAnswer(cmd.reading, m.msg)
	}
	a.pump()
}

// onNotification handles what the gateway pushes unasked.
func (a *gatewayActor) onNotification(now time.Time, msg ctc.Message, text *[]byte) {
	switch n := msg.(type) {
	case *ctc.Temperature:
		serial, serialOK := n.Serial.Int64()
		celsius, ok := n.Temp.Text().Float()
		if !serialOK || !ok {
			a.drop(now, "malformed NOT_DYN_TEMP")
			return
		}
		a.d.writer.temperature(gatewayd.Temperature{GatewayID: a.id, Serial: serial, Celsius: celsius, At: now})
	case *ctc.ReadingStarted:
		a.onReadingStarted(now, n)
	case *ctc.Reading:
		a.onReading(now, n, text)
	case *ctc.Unknown:
		if strings.HasPrefix(n.Type, "NOT_") {
			a.drop(now, "unknown notification "+n.Type)
		} else {
			a.drop(now, "unknown frame type "+n.Type)
		}
	}
}

// rediscoverSoon brings the next discovery forward after one failed (no
// answer in time, or not a sensor list): a gateway busy at login would
// otherwise stay without its sensors for a whole refresh interval. Three
// command timeouts leave a slow gateway room to recover, doubled for each
// failure in a row, so one that never answers is not asked every 30 s.
func (a *gatewayActor) rediscoverSoon() {
	a.discoveryFailures = min(a.discoveryFailures, math.MaxUint8-1) + 1
	a.refreshSoon(int(a.discoveryFailures))
}

// refreshSoon arms the refresh three command timeouts from now, doubled
// for each of failures in a row after the first, unless the regular
// refresh comes sooner or the gateway is not authenticated.
func (a *gatewayActor) refreshSoon(failures int) {
	if a.status.State != gatewayd.StateAuthenticated {
		return
	}
	// Doubled step by step, and no further than the regular refresh: a
	// shift of a long timeout wrapped around.
	d := 3 * a.d.cfg.CommandTimeout
	for i := 1; i < min(failures, 17) && d < a.d.cfg.SensorRefreshInterval; i++ {
		d *= 2
	}
	if d < a.d.cfg.SensorRefreshInterval {
		a.armTimer(timerRefresh, d)
	}
}

// onDiscovery merges a discovery answer (through the writer) and tells
// whoever asked. A garbled answer is logged and dropped; it never touches
// the connection.
func (a *gatewayActor) onDiscovery(now time.Time, cmd *command, msg ctc.Message) {
	dyn, ok := msg.(*ctc.DynResult)
	if !ok {
		a.drop(now, "sensor discovery refused: "+msg.MessageType())
		a.finished(cmd, gatewayd.Discovery{}, fmt.Errorf("%w: it answered %s", gatewayd.ErrGatewayError, msg.MessageType()))
		a.rediscoverSoon()
		return
	}
	list, skipped, dropped, err := ctc.SensorsUpTo(dyn.Data, maxListedSensors)
	if err != nil {
		a.drop(now, "malformed sensor list: "+err.Error())
		a.finished(cmd, gatewayd.Discovery{}, fmt.Errorf("%w: malformed sensor list", gatewayd.ErrGatewayError))
		a.rediscoverSoon()
		return
	}
	if skipped > 0 {
		a.drop(now, fmt.Sprintf("sensor list: %d entries without a readable serial skipped", skipped))
	}
	if dropped > 0 {
		// The lowest serials are kept, so that each list keeps the same ones.
		a.drop(now, fmt.Sprintf("sensor list: %d sensors past the first %d (by serial) dropped", dropped, maxListedSensors))
	}
	d := gatewayd.Discovery{GatewayID: a.id, At: now, Sensors: make([]gatewayd.SensorReport, len(list))}
	rates := a.sensorRates.reuse(len(list))
	for i, s := range list {
		// Every listed serial, with or without a rate: a pushed reading of
		// one listed without a rate was taken for a serial the list did
		// not name, and recorded a sighting each time (found by an audit,
		// helper 11).
		rate := 0.0
		if s.ReadRate != nil {
			rate = *s.ReadRate
		}
		rates = append(rates, listedRate{serial: s.Serial, rate: rate})
		d.Sensors[i] = gatewayd.SensorReport{Serial: s.Serial, Name: sensorText(s.Name, maxSensorName),
			PartNumber: sensorText(s.PartNum, maxSensorName), ReadRateHz: s.ReadRate, Samples: s.Samples, Connected: s.Connected}
	}
	a.sensorRates = rates.sorted()
	a.discoveryFailures = 0
	a.d.writer.discovered(d)
	a.finished(cmd, d, nil)
}

func (a *gatewayActor) onLogin(now time.Time, msg ctc.Message) {
	accepted, reason := ctc.LoginOutcome(msg)
	if !accepted {
		a.d.cfg.Observer.LoginAnswered("refused")
		reason := capError(reason)
		a.teardown(false)
		a.status.ReconnectAttempts++
		a.status.LastError = reason
		a.status.NextRetryAt = nil
		a.setState(gatewayd.StateAuthFailed)
		a.settled()
		return
	}
	a.d.cfg.Observer.LoginAnswered("accepted")
	// The status counts failures since this login; the backoff's count
	// stays until the connection has stayed healthy for a ping interval.
	a.status.ReconnectAttempts, a.status.LastError = 0, nil
	a.status.ConnectedAt = &now
	a.setReachedLogin(true)
	a.discoveryFailures = 0
	a.seen(now, true)
	a.armTimer(timerPing, a.d.cfg.PingInterval)
	if a.failures > 0 {
		a.armTimer(timerHealthy, a.d.cfg.PingInterval)
	}
	a.setState(gatewayd.StateAuthenticated)
	// Learn the sensors, then subscribe to their notifications; the
	// sensors are asked for again every refresh interval.
	a.discover(nil)
	a.subscribe()
	a.armTimer(timerRefresh, a.d.cfg.SensorRefreshInterval)
	a.armSchedules()
}

// resubscribeSoon brings the next refresh (a discovery, and a subscription
// while there is none) forward after a subscription failed, three command
// timeouts later, doubled for each failure in a row: with a count of its
// own, since a discovery that succeeds meanwhile resets the discoveries'
// (with theirs, a gateway that ignores POST_SUB_CHANGES was asked both
// every 3 command timeouts, its line blocked a third of the time).
func (a *gatewayActor) resubscribeSoon() {
	if a.subscribeFailures < 255 {
		a.subscribeFailures++
	}
	a.refreshSoon(int(a.subscribeFailures))
}

// subscribe asks for the gateway's notifications (POST_SUB_CHANGES)
// unless it has them or the request is on its way. A refused or
// unanswered one is asked again with the next discovery (brought forward
// as a failed one is): it was asked once per login, and the gateway then
// pushed nothing until the next login.
func (a *gatewayActor) subscribe() {
	if a.subscribed || a.subscribing {
		return
	}
	a.subscribing = true
	a.enqueue(&command{typ: ctc.TypePostSubChanges, timeout: a.d.cfg.CommandTimeout})
}

func (a *gatewayActor) onTimer(kind timerKind) {
	a.timers[kind] = nil
	now := time.Now()
	switch kind {
	case timerRetry:
		if a.status.State == gatewayd.StateBackoff {
			a.connect()
		}
	case timerDeadline:
		if a.awaitingLogin() {
			a.login() // the socket never came up quiet (see onDialed)
			return
		}
		for _, cmd := range a.matcher.Expire(now) {
			if cmd.typ == ctc.TypePostLogin {
				a.d.cfg.Observer.LoginAnswered("timeout")
				a.fail(fmt.Sprintf("no answer to login within %s", a.d.cfg.AuthTimeout))
				return
			}
			a.drop(now, fmt.Sprintf("no answer to %s within %s", cmd.typ, cmd.timeout))
			a.finished(cmd, gatewayd.Discovery{}, gatewayd.ErrGatewayTimeout)
			switch cmd.typ {
			case ctc.TypeGetDynConnected:
				a.rediscoverSoon()
			case ctc.TypePostSubChanges:
				a.subscribing = false
				a.resubscribeSoon()
			}
			if cmd.reading != nil {
				a.onTakeTimeout(cmd.reading)
			}
		}
		a.armDeadline()
		a.pump()
	case timerRefresh:
		if a.status.State == gatewayd.StateAuthenticated {
			a.discover(nil)
			a.subscribe()
			a.armTimer(timerRefresh, a.d.cfg.SensorRefreshInterval)
		}
	case timerPing:
		if a.status.State != gatewayd.StateAuthenticated || a.ws == nil {
			return
		}
		if err := a.ws.WriteControl(websocket.PingMessage, nil, now.Add(writeTimeout)); err != nil {
			a.fail("ping failed: " + describe(err))
			return
		}
		if a.timers[timerPong] == nil {
			a.armTimer(timerPong, a.d.cfg.PongTimeout)
			a.pongDue = now.Add(a.d.cfg.PongTimeout)
			if a.readerHeld != nil {
				a.pongMark = a.readerHeld.heldFor(now)
			}
		}
		a.armTimer(timerPing, a.d.cfg.PingInterval)
	case timerPong:
		if a.readerHeld != nil {
			// We stopped reading, not the gateway: its pong waits behind
			// the frame the intake, a decoding slot or the inbox holds,
			// or held until just now. Each of those waits is bounded
			// (intakeWait, the processors', the actor's); reading the
			// frame off the network is not one of them.
			if wait := a.readerHeld.pongWait(now, a.pongDue, a.pongMark, a.d.cfg.PongTimeout); wait > 0 {
				a.armTimer(timerPong, wait)
				return
			}
		}
		if a.ws != nil {
			a.fail(fmt.Sprintf("no pong within %s", a.d.cfg.PongTimeout))
		}
	case timerHealthy:
		if a.status.State == gatewayd.StateAuthenticated {
			a.setFailures(0)
			if h := a.d.cfg.Hooks.Healthy; h != nil {
				h(a.id)
			}
		}
	}
}

// setFailures sets the backoff's count of failures in a row, in the
// actor and in w (for its next incarnation).
func (a *gatewayActor) setFailures(n int) {
	a.failures = n
	kept := uint16(min(n, math.MaxUint16))
	a.w.set(func(w *wanted) { w.failures = kept })
}

// setReachedLogin records whether the last connection reached login, in
// the actor and in w (for its next incarnation).
func (a *gatewayActor) setReachedLogin(v bool) {
	a.reachedLogin = v
	a.w.set(func(w *wanted) { w.proven = v })
}

// fail ends the current attempt and schedules the next one.
func (a *gatewayActor) fail(reason string) {
	if a.status.State != gatewayd.StateAuthenticated {
		a.setReachedLogin(false)
	}
	a.teardown(false)
	a.status.ReconnectAttempts++
	a.setFailures(a.failures + 1)
	a.status.LastError = capError(reason)
	delay := backoff(a.failures, a.d.cfg.BackoffInitial, a.d.cfg.BackoffMax, a.d.cfg.BackoffMultiplier, rand.Float64())
	next := time.Now().Add(delay)
	a.status.NextRetryAt = &next
	a.armTimer(timerRetry, delay)
	a.retryIn = delay
	a.setState(gatewayd.StateBackoff)
}

// teardown stops every timer, abandons a dial in progress and closes the
// socket with code 1000. With wait it also waits for the reader and dialer
// goroutines to end, so a stopped actor leaves none behind.
func (a *gatewayActor) teardown(wait bool) {
	for k := range a.timers {
		a.stopTimer(timerKind(k))
	}
	// Commands waiting for an answer or their turn fail at once.
	for _, cmd := range append(a.matcher.Close(), a.queue...) {
		a.finished(cmd, gatewayd.Discovery{}, fmt.Errorf("%w: connection lost", gatewayd.ErrNotConnected))
	}
	clear(a.queue)
	a.queue = a.queue[:0]
	a.subscribed, a.subscribing, a.subscribeFailures = false, false, 0
	// Readings queued or running fail with the connection (or the actor).
	a.failAllReadings(gatewayd.ReadingErrConnectionLost)
	a.stopSchedules()
	if dl := a.dial; dl != nil {
		a.dial = nil
		dl.abandon()
		if wait {
			waitFor(dl.done)
		}
	}
	if a.ws != nil {
		a.stopReader()
		closeNormally(a.ws)
		a.ws = nil
		if wait && a.readerDone != nil {
			waitFor(a.readerDone)
		}
		// The connection's frames still in the mailbox will be dropped
		// (an old generation): what they hold of the intake goes back now.
		a.ledger.close()
		a.share.close()
		a.readerDone, a.readerHeld, a.ledger, a.share = nil, nil, nil, nil
	}
}

func waitFor(done <-chan struct{}) {
	t := time.NewTimer(closeWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

func (a *gatewayActor) write(b []byte) error {
	if err := a.ws.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return err
	}
	return a.ws.WriteMessage(websocket.TextMessage, b)
}

func (a *gatewayActor) armDeadline() {
	a.stopTimer(timerDeadline)
	if next, ok := a.matcher.NextDeadline(); ok {
		a.armTimer(timerDeadline, time.Until(next))
	}
}

func (a *gatewayActor) armTimer(kind timerKind, d time.Duration) {
	a.stopTimer(kind)
	gen, root, self := a.gen, a.d.root, a.self
	a.timers[kind] = time.AfterFunc(d, func() { root.Send(self, &timerFired{gen: gen, kind: kind}) })
}

func (a *gatewayActor) stopTimer(kind timerKind) {
	if t := a.timers[kind]; t != nil {
		t.Stop()
		a.timers[kind] = nil
	}
}

// seen records evidence that the gateway is alive; force bypasses the
// throttle (logins and pongs).
func (a *gatewayActor) seen(now time.Time, force bool) {
	if a.status.State != gatewayd.StateAuthenticated && !force {
		return
	}
	a.status.LastSeenAt = &now
	if force || now.Sub(a.lastMark) >= markEvery {
		a.lastMark = now
		a.d.writer.mark(a.id, now)
	}
}

// drop logs a frame that was dropped, at most once per 10 s per gateway.
func (a *gatewayActor) drop(now time.Time, reason string) {
	a.dropped++
	if now.Sub(a.lastDropLog) < 10*time.Second {
		return
	}
	// Frames dropped, answers given up on, scheduled readings skipped:
	// one paced line per gateway for all of them, named for the latest.
	a.event(zerolog.WarnLevel).Int("dropped", a.dropped).Str("error", *capError(reason)).
		Msg("gateway traffic dropped (frames, late answers or skipped readings)")
	a.dropped, a.lastDropLog = 0, now
}

func (a *gatewayActor) setState(s gatewayd.State) {
	if from := a.status.State; from != s {
		now := time.Now()
		a.status.Since = now
		a.logState(now, from, s)
		// A refused login is kept for the next start of gatewayd, which
		// then does not try it again; leaving AUTH_FAILED forgets it.
		switch {
		case s == gatewayd.StateAuthFailed && from == "":
			// Going on from a refusal (a restart of gatewayd, or of the
			// actor): it is stored already, and writing it again raced a
			// connect that had just cleared it, which the write then
			// undid.
		case s == gatewayd.StateAuthFailed:
			refused := ""
			if a.status.LastError != nil {
				refused = *a.status.LastError
			}
			a.d.writer.authFailure(a.id, &refused)
		case from == gatewayd.StateAuthFailed:
			a.d.writer.authFailure(a.id, nil)
		}
	}
	a.status.State = s
	a.report()
}

// stateLogLimit lines about state changes per gateway per stateLogWindow
// at info; past it, changes are counted and the next line says how many
// went unlogged. A flapping gateway cannot flood the log, and one that
// changes state now and then has every change logged.
const (
	stateLogLimit  = 20
	stateLogWindow = 10 * time.Second
)

// logState writes one info line per state change (warn into AUTH_FAILED),
// at most stateLogLimit per gateway per stateLogWindow; the first line
// after a quiet spell says how many changes went unlogged.
func (a *gatewayActor) logState(now time.Time, from, to gatewayd.State) {
	if now.Sub(a.stateLogStart) >= stateLogWindow {
		a.stateLogStart, a.stateLogged = now, 0
	}
	if a.stateLogged >= stateLogLimit {
		a.stateUnlogged++
		return
	}
	a.stateLogged++
	level := zerolog.InfoLevel
	if to == gatewayd.StateAuthFailed {
		level = zerolog.WarnLevel
	}
	ev := a.event(level)
	if ev == nil {
		return
	}
	if from != "" {
		ev.Str("from", string(from))
	}
	ev.Str("state", string(to))
	switch to {
	case gatewayd.StateBackoff:
		ev.Int("attempt", a.status.ReconnectAttempts).Int64("retry_in_ms", a.retryIn.Milliseconds())
	case gatewayd.StateAuthenticated:
		if a.dialStarted.IsZero() {
			break
		}
		ev.Int64("duration_ms", now.Sub(a.dialStarted).Milliseconds())
	}
	if (to == gatewayd.StateBackoff || to == gatewayd.StateAuthFailed || to == gatewayd.StateFailed) && a.status.LastError != nil {
		ev.Str("error", *a.status.LastError)
	}
	if a.stateUnlogged > 0 {
		ev.Int("unlogged_changes", a.stateUnlogged)
		a.stateUnlogged = 0
	}
	ev.Msg("gateway state changed")
}

// logger names the gateway on every event. It is made when needed, not
// kept: a kept one was ~180 B of every gateway, most of which log a line
// now and then (a dial, a reader, a state change) and spend most of
// their life not logging at all.
func (a *gatewayActor) logger() zerolog.Logger {
	return gatewayLogger(a.d.log, a.id, a.target.GatewayID)
}

// event starts a line about the gateway at level, or returns nil (on
// which zerolog's methods do nothing) when level is off, without making
// a logger.
func (a *gatewayActor) event(level zerolog.Level) *zerolog.Event {
	if level < a.d.log.GetLevel() || level < zerolog.GlobalLevel() {
		return nil
	}
	log := a.logger()
	return log.WithLevel(level)
}

// report tells the supervisor the current status.
func (a *gatewayActor) report() {
	a.d.root.Send(a.parent, &statusChanged{status: a.status})
}

// capError returns s, made storable, cut to at most maxErrorBytes on a
// character boundary, with an ellipsis when it was cut.
func capError(s string) *string {
	s = storable(s)
	if len(s) > maxErrorBytes {
		const ellipsis = "…"
		cut := maxErrorBytes - len(ellipsis)
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + ellipsis
	}
	return &s
}

// storable makes text a gateway sent fit a PostgreSQL text column, which
// holds neither NUL nor invalid UTF-8: each becomes U+FFFD. A gateway's
// text reaches the database only through it (capError, discoveries), so
// one gateway's odd bytes never make a batched write fail for everyone.
func storable(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// listedRate is a listed serial and its read rate (0: none reported).
type listedRate struct {
	serial int64
	rate   float64
}

// listedRates are a discovery's serials and rates, sorted by serial, one
// entry a serial. A slice, not a map: each connection keeps its
// gateway's last list for its life, a list has up to maxListedSensors
// entries of the gateway's choosing, and a map[int64]float64 of 4,096
// held ~144 KiB, this 64 KiB: a fleet of hostile peers listing that many
// held ~150 MiB a thousand gateways for it (found by an audit, helper 1).
type listedRates []listedRate

// reuse returns r emptied, if its room fits n entries without keeping
// more than twice that (a gateway whose list shrank gives the room
// back), else a new slice with room for n.
func (r listedRates) reuse(n int) listedRates {
	if cap(r) >= n && cap(r) <= 2*n {
		return r[:0]
	}
	return make(listedRates, 0, n)
}

// sorted returns r sorted by serial, of each serial its last entry (as
// a map written in order kept it). ctc.SensorsUpTo's lists come sorted.
func (r listedRates) sorted() listedRates {
	bySerial := func(x, y listedRate) int { return cmp.Compare(x.serial, y.serial) }
	if !slices.IsSortedFunc(r, bySerial) {
		slices.SortStableFunc(r, bySerial)
	}
	out := r[:0]
	for _, e := range r {
		if n := len(out); n > 0 && out[n-1].serial == e.serial {
			out[n-1] = e // the later entry wins
			continue
		}
		out = append(out, e)
	}
	return out
}

// lookup returns serial's rate and whether the list named it.
func (r listedRates) lookup(serial int64) (rate float64, listed bool) {
	i, ok := slices.BinarySearchFunc(r, serial, func(e listedRate, s int64) int { return cmp.Compare(e.serial, s) })
	if !ok {
		return 0, false
	}
	return r[i].rate, true
}

// maxSensorName bounds a sensor name a gateway reports, as the API bounds
// one an operator sets (characters).
const maxSensorName = 255

// maxListedSensors bounds the sensors one discovery answer merges. A
// frame under the 4 MiB limit lists ~315,000, which the writer merged in
// one statement on the goroutine that also stores every gateway's
// readings: it ran ~30 s, was cancelled at the statement timeout and
// tried again, and meanwhile no gateway's reading was stored (found by an
// audit, helper 1). The bound is maxPendingSerials': a list holds as many
// of one gateway's serials as its temperatures waiting for the database.
const maxListedSensors = maxPendingSerials

// sensorText is storable(s) cut to at most max characters.
func sensorText(s string, max int) string {
	s = storable(s)
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	n := 0
	for i := range s {
		if n == max {
			return s[:i]
		}
		n++
	}
	return s
}

// describe shortens a network error for last_error.
func describe(err error) string {
	if err == nil {
		return "unknown error"
	}
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return fmt.Sprintf("closed by gateway with code %d", ce.Code)
	}
	if errors.Is(err, errFlood) || errors.Is(err, errStalled) {
		return err.Error()
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && strings.Contains(s, "dial tcp") {
		return "dial: " + s[i+2:]
	}
	var unknownCA x509.UnknownAuthorityError
	if errors.As(err, &unknownCA) {
		// The fix, said where the failure shows: a plant's gateways carry
		// certificates of its own CA (found by an audit, helper 3).
		return s + " (trust its CA with GATEWAY_CA_FILE)"
	}
	return s
}
