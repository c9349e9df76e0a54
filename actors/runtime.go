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

	"github.com/ctcgw/gatewayd/internal/config"
	"github.com/ctcgw/gatewayd/store"
)

// Errors the Runtime returns.
var (
	// ErrNotFound: the runtime runs no such gateway.
	ErrNotFound = errors.New("gateway not found in runtime")
	// ErrNotRunning: the gateway has no actor (it is FAILED).
	ErrNotRunning = errors.New("gateway actor is not running")
	// ErrTimeout: the runtime did not answer in time.
	ErrTimeout = errors.New("runtime did not answer in time")
)

// Source is what the runtime reads and writes in the store.
type Source interface {
	ActiveConnections(ctx context.Context) ([]store.Connection, error)
	MarkSeen(ctx context.Context, seen map[uuid.UUID]time.Time) error
}

// deps is what every actor of one runtime shares. Everything in it is
// immutable after Start or safe for concurrent use.
type deps struct {
	cfg           config.Gateway
	root          *actor.RootContext
	log           zerolog.Logger
	dialer        *websocket.Dialer
	limiter       *dialLimiter
	seen          *seenWriter
	total         atomic.Int64
	authenticated atomic.Int64
	ready         atomic.Bool
	kick          func()
	// supervisorStarts counts supervisor incarnations.
	supervisorStarts atomic.Int32
}

// Options tune a Runtime beyond the configuration.
type Options struct {
	// ReconcileInterval is how often the store is re-read (RECONCILE_INTERVAL).
	ReconcileInterval time.Duration
	// SeenFlushInterval is how often last_seen_at is written; default 5s.
	SeenFlushInterval time.Duration
	// RequestTimeout bounds a request to the supervisor; default 5s.
	RequestTimeout time.Duration
	// ActorTimeout bounds the wait for a gateway actor's own answer to a
	// status request before the supervisor's record answers; default 1s.
	ActorTimeout time.Duration
}

// Runtime is the handle on the actor system that the API and main use.
type Runtime struct {
	d          *deps
	system     *actor.ActorSystem
	supervisor *actor.PID
	src        Source
	opts       Options
	kick       chan struct{}
	cancel     context.CancelFunc
	loops      sync.WaitGroup
	stopOnce   sync.Once
	started    time.Time
}

// Start builds the actor system and the supervisor and begins loading
// gateways from src in the background; Ready reports when the first load
// has been applied.
func Start(cfg config.Gateway, src Source, log zerolog.Logger, opts Options) *Runtime {
	if opts.ReconcileInterval <= 0 {
		opts.ReconcileInterval = 30 * time.Second
	}
	if opts.SeenFlushInterval <= 0 {
		opts.SeenFlushInterval = 5 * time.Second
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 5 * time.Second
	}
	if opts.ActorTimeout <= 0 {
		opts.ActorTimeout = time.Second
	}
	log = log.With().Str("component", "runtime").Logger()
	// Proto.Actor's own logs go through zerolog at warn and above; its
	// routine lines (dead letters of stale timers, restarts we log
	// ourselves) would only be noise.
	alog := log.Level(maxLevel(log.GetLevel(), zerolog.WarnLevel)).With().Str("lib", "protoactor").Logger()
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(zerolog.NewSlogHandler(alog))
	}))
	r := &Runtime{system: system, src: src, opts: opts, kick: make(chan struct{}, 1), started: time.Now()}
	r.d = &deps{
		cfg:  cfg,
		root: system.Root,
		log:  log,
		dialer: &websocket.Dialer{
			HandshakeTimeout: cfg.ConnectTimeout,
			ReadBufferSize:   1024,
			WriteBufferSize:  1024,
			// Idle connections hold no write buffer.
			WriteBufferPool: &sync.Pool{},
		},
		limiter: newDialLimiter(cfg.DialConcurrency),
		seen:    newSeenWriter(src.MarkSeen, opts.SeenFlushInterval, log),
		kick:    r.requestReconcile,
	}
	d := r.d
	pid, err := system.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return newSupervisor(d) }), "supervisor")
	if err != nil {
		panic(fmt.Sprintf("spawn supervisor: %v", err)) // a fresh system has no such name
	}
	r.supervisor = pid
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.loops.Add(1)
	go r.reconcileLoop(ctx)
	return r
}

func maxLevel(a, b zerolog.Level) zerolog.Level {
	if a > b {
		return a
	}
	return b
}

// requestReconcile asks for a store read now; safe from any goroutine.
func (r *Runtime) requestReconcile() {
	select {
	case r.kick <- struct{}{}:
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
		conns, err := r.src.ActiveConnections(rctx)
		cancel()
		wait := r.opts.ReconcileInterval
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.d.log.Warn().Err(err).Msg("reading active gateways failed; keeping current connections")
			if !r.d.ready.Load() {
				wait = min(wait, time.Second)
			}
		} else {
			r.d.root.Send(r.supervisor, &converge{conns: conns, readAt: readAt})
		}
		timer.Reset(wait)
	}
}

// Reconcile reads the store now instead of waiting for the interval.
func (r *Runtime) Reconcile() { r.requestReconcile() }

// Ready reports whether the first load of gateways has been applied.
func (r *Runtime) Ready() bool { return r.d.ready.Load() }

// Counts returns how many gateways the runtime runs and how many of them
// are authenticated; it asks no actor.
func (r *Runtime) Counts() (total, authenticated int) {
	return int(r.d.total.Load()), int(r.d.authenticated.Load())
}

// DialStats returns the dials in flight now and the peak since start.
func (r *Runtime) DialStats() (inFlight, peak int) {
	return int(r.d.limiter.inFlight.Load()), int(r.d.limiter.peak.Load())
}

// GatewayStarted tells the runtime a gateway was created.
func (r *Runtime) GatewayStarted(conn store.Connection) {
	r.d.root.Send(r.supervisor, &startGateway{conn: conn})
}

// GatewayUpdated tells the runtime a gateway's settings may have changed;
// its actor reconnects only if url, email or password differ.
func (r *Runtime) GatewayUpdated(conn store.Connection) {
	r.d.root.Send(r.supervisor, &updateGateway{conn: conn})
}

// GatewaysRemoved stops the actors of deleted gateways; each closes its
// socket with code 1000.
func (r *Runtime) GatewaysRemoved(ids []uuid.UUID) {
	if len(ids) > 0 {
		r.d.root.Send(r.supervisor, &stopGateways{ids: ids})
	}
}

// Status asks the gateway's actor for its status; if the actor does not
// answer within ActorTimeout, the supervisor's record answers. That wait
// is short on purpose: a request forwarded to an actor that is being
// stopped after a crash is dropped without a dead letter, so only the
// timeout tells, and the fallback needs budget left.
func (r *Runtime) Status(ctx context.Context, id uuid.UUID) (Status, error) {
	actorCtx, cancel := context.WithTimeout(ctx, r.opts.ActorTimeout)
	st, err := r.ask(actorCtx, &getStatus{id: id})
	cancel()
	if errors.Is(err, ErrTimeout) || errors.Is(err, actor.ErrDeadLetter) {
		st, err = r.ask(ctx, &getRecord{id: id})
	}
	return st, err
}

// Connect makes the gateway want to be connected.
func (r *Runtime) Connect(ctx context.Context, id uuid.UUID) (Status, error) {
	return r.ask(ctx, &connectGateway{id: id})
}

// Disconnect closes the gateway's socket (code 1000) and stops retries.
func (r *Runtime) Disconnect(ctx context.Context, id uuid.UUID) (Status, error) {
	return r.ask(ctx, &disconnectGateway{id: id})
}

// Crash makes the gateway's actor panic (chaos drill).
func (r *Runtime) Crash(ctx context.Context, id uuid.UUID) error {
	res, err := r.request(ctx, &crashGateway{id: id})
	if err != nil {
		return err
	}
	switch v := res.(type) {
	case *accepted:
		return nil
	case *notFound:
		return ErrNotFound
	case *notRunning:
		return fmt.Errorf("%w (state %s)", ErrNotRunning, v.state)
	}
	return fmt.Errorf("crash: unexpected answer %T", res)
}

// Statuses lists every gateway's status, optionally of one factory, from
// the supervisor's records (kept current by the actors).
func (r *Runtime) Statuses(ctx context.Context, factoryID *uuid.UUID) ([]Status, error) {
	res, err := r.request(ctx, &listStatuses{factoryID: factoryID})
	if err != nil {
		return nil, err
	}
	list, ok := res.([]Status)
	if !ok {
		return nil, fmt.Errorf("statuses: unexpected answer %T", res)
	}
	return list, nil
}

func (r *Runtime) ask(ctx context.Context, msg any) (Status, error) {
	res, err := r.request(ctx, msg)
	if err != nil {
		return Status{}, err
	}
	switch v := res.(type) {
	case Status:
		return v, nil
	case *notFound:
		return Status{}, ErrNotFound
	}
	return Status{}, fmt.Errorf("unexpected answer %T", res)
}

func (r *Runtime) request(ctx context.Context, msg any) (any, error) {
	timeout := r.opts.RequestTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = time.Until(dl)
	}
	if timeout <= 0 {
		return nil, ErrTimeout
	}
	res, err := r.d.root.RequestFuture(r.supervisor, msg, timeout).Result()
	switch {
	case errors.Is(err, actor.ErrTimeout):
		return nil, ErrTimeout
	case err != nil:
		return nil, fmt.Errorf("runtime: %w", err)
	}
	return res, nil
}

// Shutdown stops the supervisor and with it every gateway actor (each
// closes its socket with code 1000), flushes last_seen_at and ends the
// runtime's goroutines, within ctx.
func (r *Runtime) Shutdown(ctx context.Context) error {
	var err error
	r.stopOnce.Do(func() {
		r.cancel()
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = r.d.root.StopFuture(r.supervisor).Wait()
			r.loops.Wait()
			r.d.seen.close()
			r.system.Shutdown()
		}()
		select {
		case <-done:
		case <-ctx.Done():
			err = fmt.Errorf("runtime shutdown: %w", ctx.Err())
		}
	})
	return err
}
