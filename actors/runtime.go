package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
	"golang.org/x/sync/semaphore"

	"github.com/ctcgw/gatewayd"
)

// Source is what the runtime reads and writes in the store; *store.Store
// satisfies it.
type Source interface {
	// Targets returns every gateway the runtime should keep.
	Targets(ctx context.Context) ([]gatewayd.Target, error)
	// MarkSeen writes last_seen_at for many gateways at once.
	MarkSeen(ctx context.Context, seen map[uuid.UUID]time.Time) error
	// MergeDiscoveries writes many gateways' sensor discoveries at once
	// and returns the sensors that changed.
	MergeDiscoveries(ctx context.Context, ds []gatewayd.Discovery) ([]gatewayd.SensorRef, error)
	// RecordTemperatures writes many sensors' temperatures at once and
	// returns the sensors written.
	RecordTemperatures(ctx context.Context, ts []gatewayd.Temperature) ([]gatewayd.SensorRef, error)
	// SaveReadings writes many readings' states (and samples) at once and
	// returns the readings it brought to a final state.
	SaveReadings(ctx context.Context, us []gatewayd.ReadingUpdate) ([]gatewayd.ReadingRef, error)
	// SensorReadRate returns the stored read rate of a gateway's sensor
	// (0 when none is known).
	SensorReadRate(ctx context.Context, gatewayID uuid.UUID, serial int64) (float64, error)
	// MarkAuthFailures keeps which gateways refused the login (their
	// error) and which no longer do (nil), for the next start.
	MarkAuthFailures(ctx context.Context, failures map[uuid.UUID]*string) error
	// AuthFailures returns the gateways whose login was refused and not
	// retried since (their error, "" for none).
	AuthFailures(ctx context.Context) (map[uuid.UUID]string, error)
}

// deps is what every actor of one runtime reads. Nothing in it changes
// after Start; each field is immutable or safe for concurrent use.
type deps struct {
	cfg       Config
	root      *actor.RootContext
	log       zerolog.Logger
	dialer    *websocket.Dialer
	limiter   *dialLimiter
	writer    *writer
	processor *processor
	// intake holds readers back while the readings pipeline is full;
	// slow bounds the large messages that trickle in (see openMessage).
	intake *intake
	slow   *slowShare
	// inboxes is the fleet's inbox share (see inboxShare).
	inboxes *semaphore.Weighted
	crunch  crunch
	// kick asks for a store read now; safe from any goroutine.
	kick func()
	// trim asks for memory to be returned after a mass removal (trim.go).
	trim func()
	// mailbox makes each gateway actor's mailbox (see supervisor.spawn).
	mailbox actor.MailboxProducer
	// dispatch runs the supervisor's and the gateway actors' turns.
	dispatch *workers
}

// counters are what the runtime counts as it goes, so questions like
// "how many are authenticated" never cost a request to an actor.
type counters struct {
	total         atomic.Int64
	authenticated atomic.Int64
	ready         atomic.Bool
	// supervisorStarts counts supervisor incarnations.
	supervisorStarts atomic.Int32
	// trims counts FreeOSMemory calls after mass removals.
	trims atomic.Int32
}

// Runtime is the handle on the actor system that the API and main use.
type Runtime struct {
	d          *deps
	n          *counters
	system     *actor.ActorSystem
	supervisor *actor.PID
	// supervisorStopped is closed once the supervisor has stopped, every
	// gateway actor with it.
	supervisorStopped chan struct{}
	// removals are GatewaysRemoved's thens the supervisor has not run.
	removals afterRemoval
	src      Source
	// kick asks reconcileLoop for a store read, trim trimLoop for memory
	// back.
	kick, trim wakeup
	cancel     context.CancelFunc
	loops      sync.WaitGroup
	stopOnce   sync.Once
	stopErr    error // the first Shutdown's result, which later calls return
}

// Start builds the actor system and the supervisor and begins loading
// gateways from src in the background; Ready reports when the first load
// has been applied.
func Start(cfg Config, src Source, log zerolog.Logger) *Runtime {
	cfg = cfg.withDefaults()
	log = log.With().Str("component", "runtime").Logger()
	// Proto.Actor's own logs go through zerolog at warn and above; its
	// routine lines (dead letters of stale timers, restarts we log
	// ourselves) would only be noise.
	alog := log.Level(maxLevel(log.GetLevel(), zerolog.WarnLevel)).With().Str("lib", "protoactor").Logger()
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(zerolog.NewSlogHandler(alog))
	}))
	compactRegistry(system)
	system.EventStream.Subscribe(answerUndelivered)
	r := &Runtime{system: system, src: src, kick: newWakeup(), trim: newWakeup(), n: &counters{}}
	r.d = &deps{
		cfg:  cfg,
		root: system.Root,
		log:  log,
		dialer: &websocket.Dialer{
			// No HandshakeTimeout: handshake bounds the dial with a context
			// of its own, whose end must be the only thing that cuts it.
			ReadBufferSize:  1024,
			WriteBufferSize: 1024,
			TLSClientConfig: cfg.TLS,
			// Idle connections hold no write buffer.
			WriteBufferPool: &sync.Pool{},
		},
		limiter:  newDialLimiter(cfg.DialConcurrency),
		kick:     r.kick.send,
		trim:     r.trim.send,
		mailbox:  actor.UnboundedLockfree(),
		dispatch: newWorkers(dispatchThroughput, dispatchIdle),
	}
	r.d.intake = newIntake(int64(cfg.ReadingIntakeBytes))
	r.d.slow = newSlowShare(int64(cfg.ReadingIntakeBytes))
	r.d.inboxes = semaphore.NewWeighted(int64(cfg.FleetInboxBytes))
	r.d.writer = newWriter(src, cfg.Observer, r.d.limiter.crowded, cfg.SeenFlushInterval, cfg.SensorFlushInterval, cfg.ReadingFlushInterval, log)
	r.d.writer.intake = r.d.intake
	r.d.processor = newProcessor(r.d.writer, cfg.ReadingWorkers, cfg.ReadingBacklog, int64(cfg.ReadingBacklogBytes), cfg.RateLookupTimeout, log)
	r.d.processor.intake = r.d.intake
	r.d.crunch = newCrunch(cfg.ReadingCores)
	r.d.processor.crunch = r.d.crunch
	d, n := r.d, r.n
	r.supervisorStopped = make(chan struct{})
	var stoppedOnce sync.Once
	stopped := func() {
		stoppedOnce.Do(func() {
			close(r.supervisorStopped)
			r.removals.drain() // removals it never got to: the gateways are gone with it
		})
	}
	pid, err := system.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor {
		s := newSupervisor(d, n)
		s.stopped = stopped
		return s
	}, actor.WithDispatcher(d.dispatch),
		// Spawned from the root, the supervisor's own failures went to
		// Proto.Actor's default rule (10 restarts in 10 s): the 11th
		// stopped it for good, and every gateway with it, while the
		// runtime still said ready (found by an audit, helper 5). A
		// failure restarts it whatever came before; the failing message
		// is dropped, and started() rebuilds its children from the store.
		actor.WithGuardian(actor.NewRestartingStrategy())), "supervisor")
	if err != nil {
		panic(fmt.Sprintf("spawn supervisor: %v", err)) // a fresh system has no such name
	}
	r.supervisor = pid
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.loops.Add(2)
	go r.reconcileLoop(ctx)
	go r.trimLoop(ctx)
	return r
}

func maxLevel(a, b zerolog.Level) zerolog.Level {
	if a > b {
		return a
	}
	return b
}

// wakeup is a one-slot signal to one of the runtime's loops: send never
// blocks, and sends before the loop looks count as one. Safe from any
// goroutine.
type wakeup chan struct{}

func newWakeup() wakeup { return make(wakeup, 1) }

func (w wakeup) send() {
	select {
	case w <- struct{}{}:
	default:
	}
}

// reconcileLoop reads the active gateways and hands them to the supervisor,
// at start, every ReconcileInterval and when asked. A failed read changes
// nothing; before the first success it is retried every second.
func (r *Runtime) reconcileLoop(ctx context.Context) {
	defer r.loops.Done()
	timer := time.NewTimer(0)
	defer timer.Stop()
	// refusalsFor is the supervisor start whose records know the stored
	// login refusals (0: none yet).
	var refusalsFor int32
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-r.kick:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		}
		readAt := time.Now()
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		targets, err := r.src.Targets(rctx)
		var authFailed map[uuid.UUID]string
		starts := r.n.supervisorStarts.Load()
		if err == nil && (!r.n.ready.Load() || starts != refusalsFor) {
			// The first load starts the gateways that refused the login
			// before this process as AUTH_FAILED, without trying again;
			// so does the first after a supervisor restart, whose records
			// are all new (it dialed them again: found by an audit,
			// helper 13).
			authFailed, err = r.src.AuthFailures(rctx)
			if err == nil {
				refusalsFor = starts
			}
		}
		cancel()
		wait := r.d.cfg.ReconcileInterval
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.d.log.Warn().Err(err).Msg("reading active gateways failed; keeping current connections")
			if !r.n.ready.Load() {
				wait = min(wait, time.Second)
			}
		} else {
			r.d.root.Send(r.supervisor, &converge{targets: targets, readAt: readAt, authFailed: authFailed})
		}
		timer.Reset(wait)
	}
}

// Reconcile reads the store now instead of waiting for the interval.
func (r *Runtime) Reconcile() { r.kick.send() }

// Ready reports whether the first load of gateways has been applied.
func (r *Runtime) Ready() bool { return r.n.ready.Load() }

// Counts returns how many gateways the runtime runs and how many of them
// are authenticated; it asks no actor.
func (r *Runtime) Counts() (total, authenticated int) {
	return int(r.n.total.Load()), int(r.n.authenticated.Load())
}

// GatewayStarted tells the runtime a gateway was created.
func (r *Runtime) GatewayStarted(t gatewayd.Target) {
	r.d.root.Send(r.supervisor, &upsertGateway{target: t})
}

// GatewayUpdated tells the runtime a gateway changed; its actor
// reconnects only if its credentials differ from the ones it uses.
func (r *Runtime) GatewayUpdated(t gatewayd.Target) {
	r.d.root.Send(r.supervisor, &upsertGateway{target: t})
}

// GatewaysRemoved stops the actors of deleted gateways; each closes its
// socket with code 1000. then, when not nil, runs in the supervisor once
// they are removed, after the last state change it reported for them:
// gateway.deleted published there comes last in the event stream
// (published before, state changes already on their way followed it,
// and a client following the stream showed the gateway again; found by
// an audit, helper 8). It must not block.
// A stopped supervisor runs no message: then runs when it has stopped,
// or at once after (found by an audit, helper 12).
func (r *Runtime) GatewaysRemoved(ids []uuid.UUID, then func()) {
	if len(ids) == 0 {
		if then != nil {
			then()
		}
		return
	}
	if then != nil {
		run, waits := r.removals.add(then)
		if !waits {
			then()
			return
		}
		then = run
	}
	r.d.root.Send(r.supervisor, &stopGateways{ids: ids, then: then})
}

// afterRemoval holds GatewaysRemoved's thens until they run: each once,
// by the supervisor, or by drain when the supervisor has stopped.
type afterRemoval struct {
	mu      sync.Mutex
	pending map[uint64]func()
	next    uint64
	drained bool
}

// add holds f and returns what runs it once; waits is false once drained
// (the caller runs f itself).
func (a *afterRemoval) add(f func()) (run func(), waits bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.drained {
		return nil, false
	}
	if a.pending == nil {
		a.pending = make(map[uint64]func())
	}
	a.next++
	id := a.next
	a.pending[id] = f
	return func() {
		a.mu.Lock()
		f, ok := a.pending[id]
		delete(a.pending, id)
		a.mu.Unlock()
		if ok {
			f()
		}
	}, true
}

// drain runs every held f and makes later adds decline.
func (a *afterRemoval) drain() {
	a.mu.Lock()
	a.drained = true
	left := a.pending
	a.pending = nil
	a.mu.Unlock()
	for _, f := range left {
		f()
	}
}

// Status asks the gateway's actor for its status.
func (r *Runtime) Status(ctx context.Context, id uuid.UUID) (gatewayd.Status, error) {
	return r.askActor(ctx, id, &getStatus{id: id})
}

// Connect makes the gateway want to be connected.
func (r *Runtime) Connect(ctx context.Context, id uuid.UUID) (gatewayd.Status, error) {
	return r.askActor(ctx, id, &connectGateway{id: id})
}

// Disconnect closes the gateway's socket (code 1000) and stops retries.
func (r *Runtime) Disconnect(ctx context.Context, id uuid.UUID) (gatewayd.Status, error) {
	return r.askActor(ctx, id, &disconnectGateway{id: id})
}

// askActor sends msg through the supervisor to the gateway's actor, which
// answers with its status; if it does not answer within ActorTimeout, the
// supervisor's record answers (or says the gateway is gone). That wait is
// short on purpose: a request forwarded to an actor that is being stopped
// (after a crash loop, or because the gateway was just deleted) is dropped
// without a dead letter, so only the timeout tells, and the fallback needs
// budget left. The request itself is not lost when the actor is merely
// slow: it still runs.
func (r *Runtime) askActor(ctx context.Context, id uuid.UUID, msg question[gatewayd.Status]) (gatewayd.Status, error) {
	actorCtx, cancel := context.WithTimeout(ctx, r.d.cfg.ActorTimeout)
	st, err := ask(r, actorCtx, msg)
	cancel()
	if errors.Is(err, gatewayd.ErrTimeout) || errors.Is(err, errUndelivered) {
		st, err = ask[gatewayd.Status](r, ctx, &getRecord{id: id})
	}
	return st, err
}

// Discover asks the gateway for its sensors now (GET_DYN_CONNECTED) and
// returns its answer; the runtime also merges it into the store through
// its writer. ErrNotConnected unless the gateway is authenticated;
// ErrGatewayTimeout when it does not answer within CommandTimeout.
func (r *Runtime) Discover(ctx context.Context, id uuid.UUID) (gatewayd.Discovery, error) {
	// One request at a time goes out per connection: the discovery may
	// wait behind the one in flight, the login's subscription and a
	// reading's TAKE (it joins a discovery still queued), each answered
	// within a command timeout by a gateway that answers in time, so
	// allow four. Two, and a slow gateway that answered each command in
	// time got 504 for a discovery asked right after its login (found by
	// an audit, helper 11). No answer by then is the gateway's: its
	// commands are backed up (it was 503, the runtime's code).
	d, err := askWithin[gatewayd.Discovery](r, ctx, &discoverSensors{id: id}, 4*r.d.cfg.CommandTimeout+r.d.cfg.RequestTimeout)
	if errors.Is(err, gatewayd.ErrTimeout) && !errors.Is(context.Cause(ctx), context.Canceled) && !errors.Is(err, errUndelivered) {
		// (A caller that gave up, a server shutting down, or a runtime
		// that has stopped is not the gateway's timeout.)
		err = fmt.Errorf("%w: no sensor list yet (its earlier commands are unanswered)", gatewayd.ErrGatewayTimeout)
	}
	return d, err
}

// TakeReading hands a stored QUEUED reading of the sensor with serial to
// its gateway's actor (rateHz is the sensor's stored read rate, 0 if
// unknown; the rate of the gateway's last discovery comes first).
// ErrNotConnected unless the gateway is authenticated; ErrQueueFull past
// ReadingQueueLimit; ErrNotFound for a gateway the runtime does not run.
func (r *Runtime) TakeReading(ctx context.Context, rd gatewayd.Reading, serial int64, rateHz float64) error {
	_, err := ask[struct{}](r, ctx, &takeReading{id: rd.GatewayID, r: rd, serial: serial, rateHz: rateHz})
	return err
}

// Crash makes the gateway's actor panic (chaos drill).
func (r *Runtime) Crash(ctx context.Context, id uuid.UUID) error {
	_, err := ask[struct{}](r, ctx, &crashGateway{id: id})
	return err
}

// Statuses lists every gateway's status, optionally of one factory, from
// the supervisor's records (kept current by the actors).
func (r *Runtime) Statuses(ctx context.Context, factoryID *uuid.UUID) ([]gatewayd.Status, error) {
	return ask[[]gatewayd.Status](r, ctx, &listStatuses{factoryID: factoryID})
}

// ask sends a request to the supervisor and waits for its answer, within
// ctx and RequestTimeout.
func ask[T any](r *Runtime, ctx context.Context, q question[T]) (T, error) {
	return askWithin(r, ctx, q, r.d.cfg.RequestTimeout)
}

// askWithin is ask with a longer wait than RequestTimeout, for requests
// the gateway itself answers.
func askWithin[T any](r *Runtime, ctx context.Context, q question[T], timeout time.Duration) (T, error) {
	var zero T
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = time.Until(dl)
	}
	if timeout <= 0 {
		return zero, gatewayd.ErrTimeout
	}
	ans := q.answers()
	r.d.root.Send(r.supervisor, q)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case rep := <-ans:
		return rep.value, rep.err
	case <-t.C:
		return zero, gatewayd.ErrTimeout
	case <-ctx.Done():
		// The caller gave up (the server is shutting down): the request
		// still runs, but nobody waits for it.
		return zero, fmt.Errorf("%w: %w", gatewayd.ErrTimeout, context.Cause(ctx))
	}
}

// errUndelivered answers a request that reached no actor: one being
// stopped, or a runtime that has stopped (serve stops it after the HTTP
// shutdown, with requests maybe still running). That is the runtime not
// answering, ErrTimeout (503); it was an error nobody knew, a 500 (found
// by helper 5).
var errUndelivered = fmt.Errorf("runtime: %w (%w)", actor.ErrDeadLetter, gatewayd.ErrTimeout)

// answerUndelivered answers the requests Proto.Actor could not deliver
// (sent to an actor that had stopped), so that their askers learn it at
// once instead of at their timeout.
func answerUndelivered(evt any) {
	if dl, ok := evt.(*actor.DeadLetterEvent); ok {
		if q, ok := dl.Message.(interface{ undelivered() }); ok {
			q.undelivered()
		}
	}
}

// supervisorStopWait bounds Shutdown's wait for the supervisor under a
// context without a deadline: StopFuture's 10 s.
const supervisorStopWait = 10 * time.Second

// Shutdown stops the supervisor and with it every gateway actor (each
// closes its socket with code 1000), flushes last_seen_at and ends the
// runtime's goroutines, within ctx. When ctx ends first it returns its
// error and the stop goes on in the background, no longer waited for:
// the writer gives up what it still holds, so the caller may close the
// pool and exit. Later calls return the first one's result.
func (r *Runtime) Shutdown(ctx context.Context) error {
	r.stopOnce.Do(func() {
		r.cancel()
		done := make(chan struct{})
		go func() {
			defer close(done)
			// Proto.Actor's StopFuture waits 10 s at most, whatever
			// SHUTDOWN_TIMEOUT is: past that the writer was closed while
			// gateway actors still stopped, and their last updates (a
			// reading's "connection lost") were lost.
			r.d.root.Stop(r.supervisor)
			wait := ctx
			if _, ok := ctx.Deadline(); !ok {
				// No deadline (tests): Proto.Actor's own bound, so that a
				// stop that never ends cannot hold the caller for good.
				var cancel context.CancelFunc
				wait, cancel = context.WithTimeout(ctx, supervisorStopWait)
				defer cancel()
			}
			select {
			case <-r.supervisorStopped:
			case <-wait.Done():
			}
			r.loops.Wait()
			r.d.processor.close() // its last results go to the writer
			r.d.writer.close()
			r.system.Shutdown()
			r.d.dispatch.close()
		}()
		select {
		case <-done:
		case <-ctx.Done():
			r.stopErr = fmt.Errorf("runtime shutdown: %w", ctx.Err())
			// What the writer still waits for is abandoned: the readings
			// are marked interrupted at the next start, and the process
			// can close its pool and exit on time.
			r.d.writer.giveUp()
			// Given up, the writer fails what it holds at once and says
			// what is lost; the process exits right after this, so the
			// line gets a moment, or is said from here if the writer was
			// never told to stop (the stop is stuck before it).
			r.d.writer.abandoned(100 * time.Millisecond)
		}
	})
	return r.stopErr
}
