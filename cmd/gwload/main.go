// Command gwload measures gatewayd: it creates a throwaway database, runs
// the gatewayd binary (or uses -target) against an in-process gateway
// simulator, drives the scenarios of BENCHMARKS.md and prints each figure
// as one line "name value unit"; progress goes to stderr.
//
//	gwload [flags] [coldstart|status|storm|create|crash|crud|churn|hostile|soak|readings|events|overhead|sensors|all]...
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ctcgw/gatewayd/internal/config"
)

type options struct {
	gatewayd    string
	database    string
	target      string
	gateways    int
	concurrency int
	duration    time.Duration
	// pace, when > 0, makes each load client wait this long between its
	// requests: the tests exercise every phase without saturating the
	// machine they share with the rest of the suite.
	pace         time.Duration
	creates      int
	crashes      int
	crudRows     int
	soak         time.Duration
	soakGateways int
	keep         bool
	// freshDatabase, when set, gives each scenario the URL of an empty
	// database that exists already (the tests' kept copies, which a
	// CREATE and DROP DATABASE per scenario would cost a checkpoint
	// each); gwload migrates it and drops nothing.
	freshDatabase func() string
	settle        time.Duration
	// dbMaxConns, when > 0, is passed to gatewayd as DATABASE_MAX_CONNS.
	dbMaxConns int
	// gatewaydEnv is added to the environment of every gatewayd started
	// (KEY=VALUE each), for experiments such as GOMAXPROCS or GOGC.
	gatewaydEnv envList
	// debugAddr, when set, is gatewayd's DEBUG_ADDR (pprof) in crud.
	debugAddr string
	// probeInProcess polls status in readings from this process, which
	// also runs the simulator, rather than from a probe process.
	probeInProcess bool
	// probePath, when set, is what the probe polls instead of status.
	probePath string
	// profileDir, when set, receives heap profiles taken by churn.
	profileDir string
	// noReferences skips crud's pgbench references (pool-size sweeps).
	noReferences bool
	// pgbenchScale is the scale of pgbench's own tables (pgbench -i -s),
	// which the builtin select-only reference reads.
	pgbenchScale int
	// phases limits crud to these phases (comma-separated); "" is all.
	phases string
	// churn: gateways created and then deleted, how many of them log in
	// and stay connected, the longest the create storm may last, how long
	// RSS is watched after the delete, and how they are deleted.
	churn            int
	churnConnected   int
	churnUnreachable bool
	churnStorm       time.Duration
	churnWatch       time.Duration
	churnBase        int
	churnDelete      string
	// token is the admin token for -target; noAuth runs gatewayd with
	// AUTH_ENABLED=false (to measure what checking tokens costs).
	token  string
	noAuth bool
	// hostile: flooding, hung and flapping peers added to o.gateways
	// healthy ones; crashes per phase (baseline, then with the peers),
	// how long the peers run before the second phase, and
	// GATEWAY_CONNECT_TIMEOUT (0: gatewayd's default) for short tests.
	hostileFlood   int
	hostileHung    int
	hostileFlap    int
	hostileCrashes int
	hostileWarmup  time.Duration
	connectTimeout time.Duration
	// readings: gateways (two sensors each), whether to run the burst,
	// and how long the 1-minute schedule runs (0 skips it).
	readingGateways int
	readingBurst    bool
	readingSchedule time.Duration
	// readingInterval is the schedule's reading_interval (0: one minute,
	// the least the API takes); shorter only against a fake gatewayd, so
	// that a test of the schedule's tally takes seconds, not minutes.
	readingInterval time.Duration
	// events: SSE subscribers in the watched storm, whether that storm
	// runs first, how many pairs of storms, gatewayd's GATEWAY_PING_INTERVAL (0: its default; a
	// failure count resets after one healthy interval), and how many
	// /metrics scrapes.
	subscribers      int
	subscribersFirst bool
	stormPairs       int
	pingInterval     time.Duration
	scrapes          int
	// eventsClientBuffer, when > 0, is events' EVENTS_CLIENT_BUFFER.
	eventsClientBuffer int
	// overheadRounds is how many rounds of the three variants overhead runs.
	overheadRounds int
	// sensors: sensors per simulated gateway in the half with sensors,
	// and whether that half runs first.
	sensorsPerGateway int
	sensorsFirst      bool
	out               io.Writer
	progress          io.Writer
}

var scenarioNames = []string{"coldstart", "status", "storm", "create", "crash", "crud", "churn", "hostile", "soak", "readings", "events", "overhead", "sensors"}

func main() {
	if probeMain() {
		return
	}
	o := &options{out: os.Stdout, progress: os.Stderr}
	fs := flag.NewFlagSet("gwload", flag.ExitOnError)
	fs.StringVar(&o.gatewayd, "gatewayd", "bin/gatewayd", "gatewayd binary to run")
	fs.StringVar(&o.database, "database", envOr("DATABASE_URL", config.DefaultDatabaseURL),
		"PostgreSQL server (a throwaway database is created on it)")
	fs.StringVar(&o.target, "target", "", "use this running gatewayd (http://host:port) instead of starting one; coldstart and soak need their own")
	fs.IntVar(&o.gateways, "gateways", 10000, "gateways for coldstart, status and storm")
	fs.IntVar(&o.concurrency, "concurrency", 32, "concurrent HTTP clients")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of each throughput phase")
	fs.DurationVar(&o.pace, "pace", 0, "each load client waits this long between requests (0: as fast as it can); the rates are then the pace's, not gatewayd's")
	fs.IntVar(&o.creates, "creates", 1000, "creates for the create scenario")
	fs.IntVar(&o.crashes, "crashes", 1000, "crashes (over as many gateways) for the crash scenario")
	fs.IntVar(&o.crudRows, "crud-rows", 1000, "factories and gateways in the database for crud; gateways for overhead")
	fs.DurationVar(&o.soak, "soak", 10*time.Minute, "soak length")
	fs.IntVar(&o.soakGateways, "soak-gateways", 1000, "gateways in the soak")
	fs.BoolVar(&o.keep, "keep", false, "keep the throwaway databases")
	fs.DurationVar(&o.settle, "settle", 5*time.Second, "wait before reading RSS, so it reflects a settled process")
	fs.IntVar(&o.dbMaxConns, "db-max-conns", 0, "DATABASE_MAX_CONNS for gatewayd (0: its default)")
	fs.Var(&o.gatewaydEnv, "gatewayd-env", "KEY=VALUE added to the environment of each gatewayd started (repeatable), e.g. GOMAXPROCS=3")
	fs.StringVar(&o.debugAddr, "debug-addr", "", "DEBUG_ADDR (pprof) for the gatewayd of crud, hostile, readings, events and sensors, to profile it by hand")
	fs.StringVar(&o.profileDir, "profile-dir", "", "churn writes heap profiles of gatewayd here, events CPU profiles of gatewayd and gwload during each storm")
	fs.BoolVar(&o.noReferences, "no-references", false, "crud without its pgbench references (for sweeps)")
	fs.IntVar(&o.pgbenchScale, "pgbench-scale", 10, "crud: scale of pgbench's tables for its select-only reference (pgbench -i -s)")
	fs.StringVar(&o.phases, "phases", "", "crud phases to run, comma-separated (default all)")
	fs.IntVar(&o.churn, "churn", 50000, "gateways created and deleted by churn")
	fs.IntVar(&o.churnConnected, "churn-connected", 5000, "of those, how many log in and stay connected; the others are refused at login (AUTH_FAILED, no socket)")
	fs.BoolVar(&o.churnUnreachable, "churn-unreachable", false, "churn gateways point at a refused port instead (BACKOFF, retrying)")
	fs.DurationVar(&o.churnStorm, "churn-storm", 45*time.Second, "the longest the churn create storm may last")
	fs.DurationVar(&o.churnWatch, "churn-watch", 2*time.Minute, "how long churn samples RSS after the delete")
	fs.IntVar(&o.churnBase, "churn-base", 1000, "connected gateways present before and after churn")
	fs.StringVar(&o.churnDelete, "churn-delete", "factory", "how churn deletes: factory (one DELETE of their factory) or each")
	fs.StringVar(&o.token, "token", os.Getenv("GATEWAYD_TOKEN"), "admin API token for -target (default $GATEWAYD_TOKEN); without -target gwload creates one")
	fs.IntVar(&o.sensorsPerGateway, "sensors-per-gateway", 4, "sensors of each simulated gateway in the sensors scenario's half with sensors")
	fs.BoolVar(&o.sensorsFirst, "sensors-first", false, "sensors runs its half with sensors first (alternate between runs)")
	fs.BoolVar(&o.noAuth, "no-auth", false, "run gatewayd with AUTH_ENABLED=false (compare with the default to see the cost of token checks)")
	fs.IntVar(&o.hostileFlood, "hostile-flood", 100, "hostile: peers that flood frames after each login")
	fs.IntVar(&o.hostileHung, "hostile-hung", 600, "hostile: peers that accept TCP and never answer the upgrade")
	fs.IntVar(&o.hostileFlap, "hostile-flap", 100, "hostile: peers that send a frame past the read limit after each login")
	fs.IntVar(&o.hostileCrashes, "hostile-crashes", 500, "hostile: healthy gateways crashed in each phase (baseline, with hostile peers)")
	fs.DurationVar(&o.hostileWarmup, "hostile-warmup", 20*time.Second, "hostile: how long the peers run (after every hung one failed once) before the second phase")
	fs.DurationVar(&o.connectTimeout, "connect-timeout", 0, "GATEWAY_CONNECT_TIMEOUT for hostile's gatewayd (0: its default, 10s)")
	fs.IntVar(&o.readingGateways, "reading-gateways", 1000, "gateways (two simulated sensors each) in readings")
	fs.BoolVar(&o.probeInProcess, "probe-in-process", false, "readings: poll status from gwload's own process (which hosts the simulator) instead of a probe process of its own")
	fs.StringVar(&o.probePath, "probe-path", "", "readings: the probe polls this API path (e.g. /health) instead of random gateways' status")
	fs.BoolVar(&o.readingBurst, "reading-burst", true, "readings: run the burst of one manual reading per sensor")
	fs.DurationVar(&o.readingSchedule, "reading-schedule", 10*time.Minute, "readings: how long every sensor runs on a 1-minute schedule (0 skips it)")
	fs.IntVar(&o.subscribers, "subscribers", 100, "SSE subscribers on /api/events in events' watched storm")
	fs.BoolVar(&o.subscribersFirst, "subscribers-first", false, "events runs the watched storm first (alternate across runs)")
	fs.IntVar(&o.stormPairs, "storm-pairs", 1, "events runs this many pairs of storms (without and with subscribers, alternating which goes first) and reports the median ratio")
	fs.DurationVar(&o.pingInterval, "ping-interval", 0, "GATEWAY_PING_INTERVAL for events' gatewayd (0: its default, 30s)")
	fs.IntVar(&o.eventsClientBuffer, "events-client-buffer", 0, "EVENTS_CLIENT_BUFFER for events' gatewayd (0: its default)")
	fs.IntVar(&o.scrapes, "scrapes", 200, "GET /metrics scrapes by events (one client, then as many from four)")
	fs.IntVar(&o.overheadRounds, "overhead-rounds", 3, "rounds of overhead (default, metrics off, auth off each)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: gwload [flags] [%s|all]...\n\n", strings.Join(scenarioNames, "|"))
		fs.PrintDefaults()
	}
	_ = fs.Parse(os.Args[1:])
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, fs.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "gwload:", err)
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// run executes the named scenarios; coldstart, status and storm share one
// gatewayd when run together, stopped once no later scenario needs it.
func run(ctx context.Context, o *options, names []string) error {
	if len(names) == 0 || slices.Contains(names, "all") {
		names = scenarioNames
	}
	for _, n := range names {
		if !slices.Contains(scenarioNames, n) {
			return fmt.Errorf("unknown scenario %q", n)
		}
	}
	r := &report{o: o}
	var shared *env
	defer func() {
		if shared != nil {
			shared.close()
		}
	}()
	steady := func() (*env, error) {
		if shared != nil {
			return shared, nil
		}
		e, err := newEnv(ctx, o)
		if err != nil {
			return nil, err
		}
		shared = e
		if err := e.seed(ctx, o.gateways); err != nil {
			return nil, err
		}
		if _, err := e.startGatewayd(); err != nil {
			return nil, err
		}
		return e, e.waitAuthenticated(len(e.ids), 5*time.Minute)
	}
	for i, n := range names {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// The shared gatewayd, all its gateways connected to the
		// simulator in this process, would otherwise run through every
		// later scenario and take from the two cores they measure.
		if shared != nil && !slices.ContainsFunc(names[i:], usesShared) {
			r.progressf("stopping the shared gatewayd: no later scenario uses it")
			shared.close()
			shared = nil
		}
		r.progressf("== %s", n)
		var err error
		switch n {
		case "coldstart":
			if o.target != "" {
				r.progressf("coldstart needs its own gatewayd; skipped with -target")
				continue
			}
			// coldstart starts from an empty database and its own
			// gatewayd; an earlier shared one (status, storm, another
			// coldstart) would otherwise run beside its measurements and
			// outlive gwload.
			if shared != nil {
				shared.close()
				shared = nil
			}
			shared, err = coldstart(ctx, o, r)
		case "status":
			var e *env
			if e, err = steady(); err == nil {
				err = status(ctx, e, r)
			}
		case "storm":
			var e *env
			if e, err = steady(); err == nil {
				err = storm(e, r)
			}
		case "create":
			err = isolated(ctx, o, func(e *env) error { return create(e, r) })
		case "crash":
			err = isolated(ctx, o, func(e *env) error { return crash(ctx, e, r) })
		case "crud":
			err = isolated(ctx, o, func(e *env) error { return crud(ctx, e, r) })
		case "churn":
			if o.target != "" {
				r.progressf("churn reads gatewayd's RSS and pprof; skipped with -target")
				continue
			}
			err = isolated(ctx, o, func(e *env) error { return churn(ctx, e, r) })
		case "hostile":
			err = isolated(ctx, o, func(e *env) error { return hostile(ctx, e, r) })
		case "soak":
			err = soak(ctx, o, r)
		case "readings":
			err = readings(ctx, o, r)
		case "events":
			err = isolated(ctx, o, func(e *env) error { return eventsScenario(ctx, e, r) })
		case "overhead":
			err = isolated(ctx, o, func(e *env) error { return overhead(ctx, e, r) })
		case "sensors":
			if o.target != "" {
				r.progressf("sensors times cold starts of its own gatewayd; skipped with -target")
				continue
			}
			err = sensors(ctx, o, r)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
	}
	r.summary()
	return nil
}

// usesShared says whether scenario n runs in (coldstart: makes) the
// shared env of run.
func usesShared(n string) bool { return n == "coldstart" || n == "status" || n == "storm" }

func isolated(ctx context.Context, o *options, f func(*env) error) error {
	e, err := newEnv(ctx, o)
	if err != nil {
		return err
	}
	defer e.close()
	return f(e)
}

// report prints figures as "name value unit" and keeps them for the summary.
type report struct {
	o     *options
	mu    sync.Mutex
	lines []string
}

func (r *report) value(name string, v float64, unit string) {
	line := fmt.Sprintf("%s %s %s", name, trimFloat(v), unit)
	r.mu.Lock()
	r.lines = append(r.lines, line)
	r.mu.Unlock()
	fmt.Fprintln(r.o.out, line)
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.3f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if s == "" || s == "-" {
		return "0"
	}
	return s
}

func (r *report) progressf(format string, args ...any) {
	fmt.Fprintf(r.o.progress, "[%s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func (r *report) summary() {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.o.progress, "\n%d figures:\n  %s\n", len(r.lines), strings.Join(r.lines, "\n  "))
}

// envList is a repeatable KEY=VALUE flag.
type envList []string

func (l *envList) String() string { return strings.Join(*l, " ") }

func (l *envList) Set(v string) error {
	if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
		return fmt.Errorf("%q is not KEY=VALUE", v)
	}
	*l = append(*l, v)
	return nil
}
