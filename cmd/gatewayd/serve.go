package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors"
	"github.com/ctcgw/gatewayd/api"
	"github.com/ctcgw/gatewayd/events"
	"github.com/ctcgw/gatewayd/internal/config"
	"github.com/ctcgw/gatewayd/internal/logging"
	"github.com/ctcgw/gatewayd/internal/memlimit"
	"github.com/ctcgw/gatewayd/internal/netguard"
	"github.com/ctcgw/gatewayd/internal/netutil"
	"github.com/ctcgw/gatewayd/metrics"
	"github.com/ctcgw/gatewayd/store"
	"github.com/ctcgw/gatewayd/telemetry"
)

// connectPatience is how long a command waits for its database at start:
// long enough for a PostgreSQL (or the database, made by an init job)
// started alongside, short enough that a wrong URL is reported soon.
const connectPatience = 30 * time.Second

// connect opens the pool, retrying for a while so gatewayd can start
// alongside its database.
func connect(ctx context.Context, cfg *config.Config, log zerolog.Logger) (*pgxpool.Pool, error) {
	return connectWithin(ctx, cfg, log, connectPatience)
}

// connectWithin is connect with its patience: no attempt outlasts it, so
// a database that takes connections and never answers stops the start at
// the patience, not at the end of the attempt then running (35 s).
func connectWithin(ctx context.Context, cfg *config.Config, log zerolog.Logger, patience time.Duration) (*pgxpool.Pool, error) {
	deadline := time.Now().Add(patience)
	var last error // of the last attempt the patience did not cut short
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithDeadline(ctx, deadline)
		pool, err := store.Connect(actx, cfg.DatabaseURL, 5*time.Second, cfg.DatabaseMaxConns)
		cut := actx.Err() != nil
		cancel()
		if err == nil {
			return pool, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if cut && last != nil {
			// The attempt the patience ended says only "deadline
			// exceeded"; the one before says why (the database does not
			// exist, the login is refused), and the hint needs that.
			err = last
		}
		last = err
		if !errors.Is(err, gatewayd.ErrUnavailable) || time.Until(deadline) <= 0 {
			return nil, err
		}
		// One line now and one every 10 s, not one per attempt: the hint
		// at exit says what to do.
		if attempt%10 == 1 {
			msg := "database not reachable yet; retrying for %s (is PostgreSQL running? `make db` starts one)"
			switch {
			case errors.Is(err, store.ErrNoDatabase):
				msg = "the database does not exist yet; retrying for %s (create it, or `make db` does)"
			case errors.Is(err, store.ErrLoginRefused):
				msg = "PostgreSQL refuses the login; retrying for %s (check the user and password in DATABASE_URL)"
			case errors.Is(err, store.ErrTLS):
				msg = "the TLS connection to PostgreSQL fails; retrying for %s (check sslmode in DATABASE_URL)"
			}
			log.Warn().Err(err).Int("attempt", attempt).Str("database", config.MaskURL(cfg.DatabaseURL)).
				Msgf(msg, patience)
		}
		pause := time.NewTimer(min(time.Second, time.Until(deadline)))
		select {
		case <-ctx.Done():
			pause.Stop()
			return nil, ctx.Err()
		case <-pause.C:
		}
	}
}

// migrate applies the migrations and returns.
func migrate(ctx context.Context, cfg *config.Config, log zerolog.Logger) error {
	pool, err := connect(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	v, err := store.Prepare(ctx, pool, true)
	if err != nil {
		return err
	}
	log.Info().Int32("version", v).Str("database", config.MaskURL(cfg.DatabaseURL)).Msg("migrations applied")
	return nil
}

// runtimeConfig is the runtime's part of the process configuration.
func runtimeConfig(cfg *config.Config) actors.Config {
	g := cfg.Gateway
	return actors.Config{
		ConnectTimeout: g.ConnectTimeout, AuthTimeout: g.AuthTimeout, CommandTimeout: g.CommandTimeout,
		BackoffInitial: g.BackoffInitial, BackoffMax: g.BackoffMax, BackoffMultiplier: g.BackoffMultiplier,
		PingInterval: g.PingInterval, PongTimeout: g.PongTimeout, DialConcurrency: g.DialConcurrency,
		RestartLimit: g.RestartLimit, RestartWindow: g.RestartWindow,
		ReconcileInterval: cfg.ReconcileInterval, SensorRefreshInterval: g.SensorRefreshInterval,
		ReadingQueueLimit: g.ReadingQueueLimit, ReadingStartTimeout: g.ReadingStartTimeout, ReadingTimeout: g.ReadingTimeout,
	}
}

// serve runs gatewayd until ctx ends, then stops taking requests, closes
// every gateway with code 1000 and returns within cfg.ShutdownTimeout.
func serve(ctx context.Context, cfg *config.Config, log zerolog.Logger) error {
	started := time.Now()
	log.Info().Str("version", version).Str("database", config.MaskURL(cfg.DatabaseURL)).Str("addr", cfg.Addr()).
		Bool("chaos", cfg.ChaosEnabled).Msg("gatewayd starting")
	fileLimit(cfg, log)
	memoryLimit(log)
	// The port first: a process that cannot serve (the port taken, by
	// another gatewayd say) must stop before it touches the database's
	// state; it failed every reading of the instance on that port as
	// interrupted before it found out.
	tcp, err := net.Listen("tcp", cfg.Addr())
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr(), err)
	}
	listening := false
	defer func() {
		if !listening { // else the HTTP server closes it
			_ = tcp.Close()
		}
	}()
	// DEBUG_ADDR's port too, for the same reason: one the configuration
	// check cannot see is the API's (localhost against 127.0.0.1, say)
	// stopped the process only after the migrations had run.
	if cfg.DebugAddr != "" {
		stop, err := serveDebug(cfg.DebugAddr, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	// Until the API proper serves, health and ready answer (and every
	// other route 503s, saying what the start waits for) rather than
	// leaving clients hanging while the database is waited for.
	m := metrics.New() // before the start's server, which counts its refusals in it
	var phase atomic.Pointer[startPhase]
	phase.Store(&startPhase{why: "waiting for the database"})
	starting := serveStarting(tcp.(*net.TCPListener), api.Starting(api.StartingOptions{Started: started,
		State: func() (bool, string) {
			p := phase.Load()
			return p.databaseUp, p.why
		}, Log: log, CORSOrigins: cfg.CORSOrigins}), cfg.APIMaxConnections, cfg.APIMaxClientConnections, m.ConnectionRefused, log)
	defer starting.handOver() // before the listener's close above
	log.Info().Str("addr", tcp.Addr().String()).Msg(logging.APIStarting)
	pool, err := connect(ctx, cfg, log)
	if err != nil {
		return err
	}
	// Closed within the shutdown's time (closePool), unless serve ends
	// before it gets that far.
	var deadline time.Time
	poolClosed := false
	defer func() {
		if !poolClosed {
			closePool(pool, cfg.ShutdownTimeout, log)
		}
	}()
	// One process runs a database's gateways: a second waits here, a
	// standby, before it touches any of the database's state (migrations
	// included).
	lockLost, releaseInstance, err := holdInstance(ctx, pool, &phase, log)
	if err != nil {
		return err
	}
	defer releaseInstance()
	phase.Store(&startPhase{databaseUp: true, why: "checking the database's schema"})
	v, err := store.Prepare(ctx, pool, cfg.MigrateOnStart)
	if err != nil {
		return err
	}
	if cfg.MigrateOnStart {
		log.Info().Int32("version", v).Msg("migrations applied")
	}
	phase.Store(&startPhase{databaseUp: true, why: "loading"})
	sealer, err := store.NewSealer(cfg.EncryptionKey, cfg.PreviousKeys...)
	if err != nil {
		return err
	}
	roots, err := netguard.RootCAs(cfg.CAFile)
	if err != nil {
		return err
	}
	policy := netguard.NewPolicy(cfg.AllowedNetworks)
	st := store.New(pool, sealer, store.ReadsKeptFor(cfg.ReadCacheTTL))
	if cfg.WaveformRetention > 0 {
		stop := startRetention(st, cfg.WaveformRetention, time.Hour, log)
		defer stop()
	}
	probe := st.StartProbe(ctx, time.Second, time.Second) // health's answer about the database
	defer probe.Stop()
	// Event ids start after now in microseconds, so they keep increasing
	// across restarts (a client of an earlier process resets). Now, not
	// the process's start: a standby started before the process it takes
	// over from stopped publishing, and the two processes' ids overlapped
	// (found by an audit, helper 10).
	broker := events.NewBrokerAfter(cfg.EventsBuffer, uint64(time.Now().UnixMicro()))
	m.WatchPool(pool)
	m.WatchEvents(broker.Subscribers, broker.Published, broker.Overflows)
	obs := &telemetry.Observer{Metrics: m, Events: broker, Log: log}
	// Readings a previous process left unfinished cannot be finished now;
	// they are counted and announced as any that fail.
	if refs, err := st.FailInterruptedReadings(ctx); err != nil {
		return err
	} else if len(refs) > 0 {
		obs.ReadingsDone(refs)
		log.Info().Int("readings", len(refs)).Msg("readings left unfinished by the previous process marked FAILED (interrupted)")
	}
	stopSweep := startReadingSweep(st, obs, abandonedAfter(cfg), time.Minute, log)
	defer stopSweep()
	rcfg := runtimeConfig(cfg)
	rcfg.Observer = obs
	// Every gateway dial goes through the policy, after name resolution;
	// wss:// verifies against the system roots plus GATEWAY_CA_FILE.
	rcfg.NetDial = (&netguard.Dialer{Policy: policy, Timeout: cfg.Gateway.ConnectTimeout}).DialContext
	rcfg.TLS = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	rt := actors.Start(rcfg, st, log)
	if !cfg.AuthEnabled {
		log.Warn().Msg("AUTH_ENABLED=false: every API route is open to anyone who can reach the port")
	}
	requests, endRequests := context.WithCancel(context.Background())
	defer endRequests()
	app := api.New(st, rt, log, api.Options{ShutdownTimeout: cfg.ShutdownTimeout, CORSOrigins: cfg.CORSOrigins, ChaosEnabled: cfg.ChaosEnabled, Started: started,
		CommandTimeout: cfg.Gateway.CommandTimeout, DatabaseUp: probe.Up, Telemetry: obs, MaxConnections: cfg.APIMaxConnections, MaxClientConnections: cfg.APIMaxClientConnections,
		AuthEnabled: cfg.AuthEnabled, MetricsPublic: cfg.MetricsPublic, MetricsDisabled: !cfg.MetricsEnabled,
		EventsClientBuffer: cfg.EventsClientBuffer, DialPolicy: policy, Base: requests})

	// Out of file descriptors, fasthttp's accept loop would return and
	// gatewayd exit, dropping every gateway: accept backs off instead.
	ln := netutil.RetryAccept(tcp, log)
	serveErr := make(chan error, 1)
	starting.handOver()
	listening = true
	go func() { serveErr <- app.Listener(ln) }()
	log.Info().Str("addr", ln.Addr().String()).Msg(logging.APIListening)

	var lost error // the instance lock, to another process
	select {
	case <-ctx.Done():
	case lost = <-lockLost:
		// The gateways first: the other process runs them (after its
		// grace, takeoverGrace) and must not find their sockets still
		// open here.
		msg := "stopping: another gatewayd runs this database's gateways now; closing ours first"
		if errors.Is(lost, store.ErrInstanceFenced) {
			msg = "stopping: cut off from the database while another gatewayd waited, which may run this database's gateways now; closing ours first"
		}
		log.Error().Err(lost).Msg(msg)
		shutdownRuntime(rt, cfg.ShutdownTimeout/2, log)
	case err := <-serveErr:
		shutdownRuntime(rt, cfg.ShutdownTimeout, log)
		return fmt.Errorf("http server: %w", err)
	}
	log.Info().Str("timeout", cfg.ShutdownTimeout.String()).Msg("shutting down (a second signal stops at once)")
	deadline = time.Now().Add(cfg.ShutdownTimeout)
	// End the event streams (HTTP shutdown waits for open requests), stop
	// taking requests, then close every gateway with code 1000.
	broker.Close()
	if err := app.ShutdownWithTimeout(time.Until(deadline) / 2); err != nil {
		log.Warn().Err(err).Msg("HTTP shutdown did not finish in time")
	}
	// Requests still running (waiting on a lock, or on a gateway) give up
	// now: they hold pool connections, which the pool's close waits for.
	endRequests()
	<-serveErr
	shutdownRuntime(rt, time.Until(deadline), log)
	closePool(pool, time.Until(deadline), log)
	poolClosed = true
	log.Info().Msg("stopped")
	return lost
}

// startPhase is what health and ready say while serve starts.
type startPhase struct {
	databaseUp bool
	why        string
}

// closePool closes the pool, waiting at most within: a
// database that accepts but does not answer kept pgx's close waiting 15 s
// per connection (its cancel request's own deadline), past
// SHUTDOWN_TIMEOUT and into the service manager's kill. The close left
// running ends with the process, which is about to exit.
func closePool(pool *pgxpool.Pool, within time.Duration, log zerolog.Logger) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		pool.Close()
	}()
	t := time.NewTimer(max(within, 0))
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		log.Warn().Msg("database connections did not close in time (PostgreSQL does not answer); left to the exit")
	}
}

// startRetention deletes the samples of readings older than retention
// every interval, in batches (the readings and their summaries stay);
// stop ends it.
func startRetention(st *store.Store, retention, every time.Duration, log zerolog.Logger) (stop func()) {
	return repeat(every, func(ctx context.Context) {
		n, err := st.DeleteSamplesBefore(ctx, time.Now().Add(-retention), 1000)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn().Err(err).Msg("waveform retention failed; will retry")
		case n > 0:
			log.Info().Int("readings", n).Str("retention", retention.String()).Msg("old waveform samples deleted")
		}
	})
}

// startReadingSweep fails, every interval, readings left QUEUED or
// RUNNING longer than any gateway holds one (see abandonedAfter).
// They are published as reading.failed and counted, as any other.
func startReadingSweep(st *store.Store, obs *telemetry.Observer, after, every time.Duration, log zerolog.Logger) (stop func()) {
	return repeat(every, func(ctx context.Context) {
		refs, err := st.FailAbandonedReadings(ctx, time.Now().Add(-after))
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn().Err(err).Msg("abandoned-readings sweep failed; will retry")
		case len(refs) > 0:
			obs.ReadingsDone(refs)
			log.Warn().Int("readings", len(refs)).Str("older_than", after.String()).
				Msg("readings no gateway holds marked FAILED (abandoned)")
		}
	})
}

// abandonedAfter is how long a reading may stay QUEUED or RUNNING before
// the sweep fails it: twice the longest a gateway's actor can hold one,
// which waits behind READING_QUEUE_LIMIT others and the one running, each
// taking at most its TAKE_DYN_READING answer, its start and its samples
// (its timer waiting for a frame held since before its deadline, another
// READING_TIMEOUT), after waiting for the late start and samples of a
// reading of its sensor that failed before it (a start and a capture,
// and a capture again after a late start): CT + 2 ST + 4 RT each.
// Twice, so that a reading whose final state waits in the writer through
// a database outage is not failed first. (187 minutes with the defaults.)
// Settings whose product does not fit a Duration get the longest one (292
// years): wrapped negative, the cutoff fell in the future and the sweep
// failed every reading in flight.
func abandonedAfter(cfg *config.Config) time.Duration {
	g := cfg.Gateway
	each := g.CommandTimeout + 2*g.ReadingStartTimeout + 4*g.ReadingTimeout
	n := 2 * time.Duration(g.ReadingQueueLimit+1)
	if each > math.MaxInt64/n {
		return math.MaxInt64
	}
	return n * each
}

// repeat runs job now and then every interval until stop, which waits
// for a run in progress to end.
func repeat(every time.Duration, job func(context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			job(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// fileLimit raises the soft open-file limit to the hard one and says so
// once; API_MAX_CONNECTIONS should leave room below it for the gateways'
// sockets and the database pool.
func fileLimit(cfg *config.Config, log zerolog.Logger) {
	soft, hard, err := raiseOpenFileLimit()
	if err != nil {
		log.Warn().Err(err).Uint64("soft", soft).Uint64("hard", hard).Msg("cannot raise the open-file limit")
		return
	}
	log.Info().Uint64("soft", soft).Uint64("hard", hard).Int("api_max_connections", cfg.APIMaxConnections).Msg("open-file limit")
	if uint64(cfg.APIMaxConnections) >= soft {
		log.Warn().Uint64("open_file_limit", soft).Int("api_max_connections", cfg.APIMaxConnections).
			Msg("API_MAX_CONNECTIONS is not below the open-file limit: HTTP clients could take the descriptors gateways need")
	}
}

// memoryLimit gives the runtime a soft memory limit below the container's
// (memlimit), unless GOMEMLIMIT says otherwise, and logs which. The
// process's own environment, not run's: it is what the runtime read.
func memoryLimit(log zerolog.Logger) {
	d, err := memlimit.Apply("/", os.Getenv, debug.SetMemoryLimit)
	if err != nil {
		log.Warn().Err(err).Msg("cannot read the container's memory limit; the heap has no soft limit")
		return
	}
	ev := log.Info().Str("source", d.Source).Int64("cgroup_limit_bytes", d.Cgroup)
	if d.Limit > 0 {
		ev = ev.Int64("soft_limit_bytes", d.Limit)
	}
	ev.Msg("memory limit")
}

func shutdownRuntime(rt *actors.Runtime, timeout time.Duration, log zerolog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), max(timeout, 100*time.Millisecond))
	defer cancel()
	if err := rt.Shutdown(ctx); err != nil {
		log.Warn().Err(err).Msg("runtime did not stop in time")
	}
}

// serveDebug serves Go's pprof on addr only (DEBUG_ADDR), never on the
// API's listener; stop closes it.
func serveDebug(addr string, log zerolog.Logger) (stop func(), err error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on DEBUG_ADDR %s: %w", addr, err)
	}
	// Idle keep-alive clients are closed too: a profile's client that
	// stays connected held a goroutine and a descriptor for good.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	log.Info().Str("addr", ln.Addr().String()).Msg("pprof listening (DEBUG_ADDR)")
	return func() {
		_ = srv.Close()
		<-done
	}, nil
}
