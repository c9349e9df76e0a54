package actors

import (
	"context"
	"crypto/tls"
	"net"
	"runtime"
	"time"

	"github.com/google/uuid"

	"github.com/ctcgw/gatewayd"
)

// Config is the runtime's own configuration; cmd/gatewayd fills it from
// the process configuration, tests fill it with short times.
type Config struct {
	ConnectTimeout    time.Duration // TCP + WebSocket handshake
	AuthTimeout       time.Duration // answer to POST_LOGIN
	CommandTimeout    time.Duration // answer to any other command
	BackoffInitial    time.Duration
	BackoffMax        time.Duration
	BackoffMultiplier float64
	PingInterval      time.Duration
	PongTimeout       time.Duration
	DialConcurrency   int // dials in flight, process-wide
	RestartLimit      int // crashes tolerated within RestartWindow
	RestartWindow     time.Duration
	// ReconcileInterval is how often the store is re-read (RECONCILE_INTERVAL).
	ReconcileInterval time.Duration
	// QuietWait is how long a new socket must stay silent, once what it
	// holds has been read, before POST_LOGIN is written (see quietProbe):
	// a frame a gateway sends as the socket opens, on its way meanwhile,
	// is then read first. 0 (gatewayd's): no wait, a peek only. A 2 ms
	// wait cost the reconnect storm of 10,000 gateways a tenth of its time
	// (3.47 s against 3.10, medians of 7 alternating pairs, each pair
	// slower with it; BENCHMARKS.md): dials wait for their slots behind
	// it. Tests whose simulator a loaded machine may deschedule between
	// its handshake and its first frame set it.
	QuietWait time.Duration
	// SeenFlushInterval is how often last_seen_at is written; default 5s.
	SeenFlushInterval time.Duration
	// SensorRefreshInterval is how often an authenticated gateway is asked
	// for its sensors again (SENSOR_REFRESH_INTERVAL); default 10m.
	SensorRefreshInterval time.Duration
	// SensorFlushInterval is how often discoveries and temperatures are
	// written; default 1s.
	SensorFlushInterval time.Duration
	// ReadingQueueLimit bounds the readings waiting on one gateway
	// (READING_QUEUE_LIMIT); default 16.
	ReadingQueueLimit int
	// ReadingStartTimeout bounds the wait for NOT_DYN_READING_STARTED,
	// ReadingTimeout the wait for NOT_DYN_READING after it; 30s and 60s.
	ReadingStartTimeout time.Duration
	ReadingTimeout      time.Duration
	// ReadingFlushInterval is how often reading states are written; 100ms.
	ReadingFlushInterval time.Duration
	// ReadingWorkers decode and analyse readings (default GOMAXPROCS);
	// ReadingBacklog bounds the readings waiting for them (default 1024),
	// ReadingBacklogBytes the gateways' text they hold (default 32 MiB:
	// ~160 CSV readings of 3 × 8192 samples, ~480 in base64).
	ReadingWorkers, ReadingBacklog int
	// RateLookupTimeout bounds the lookup of a sensor's stored read rate
	// for a reading whose rate the actor does not know; default 1 s (see
	// processor.storedRate).
	RateLookupTimeout time.Duration
	// ReadingCores is how many goroutines may decode and analyse readings
	// at once, readers and workers together (crunch.go); default
	// GOMAXPROCS − 1, at least 1, so one core stays for the rest.
	ReadingCores        int
	ReadingBacklogBytes int
	// ReadingIntakeBytes is how many bytes of readings may be between the
	// sockets and the database before readers wait (intake.go); default
	// 8 MiB: in a burst of 2,000 readings, peak RSS over idle +56–58 MiB
	// against +68–73 at 12 MiB and +119 at 24, for ~5 % of the rate
	// (BENCHMARKS.md, 2026-12-04 fourth session). Before waiting readers
	// held only a reading's first bytes, a smaller intake made it worse.
	ReadingIntakeBytes int
	// RequestTimeout bounds a request to the supervisor; default 5s.
	RequestTimeout time.Duration
	// ActorTimeout bounds the wait for a gateway actor's own answer to a
	// status request before the supervisor's record answers; default 1s.
	ActorTimeout time.Duration
	// Flood limits per connection (defaults in conn.go): a peer that sends
	// more frames or bytes per second than these is cut off into BACKOFF.
	FloodFrameRate, FloodFrameBurst int
	FloodByteRate, FloodByteBurst   int
	// InboxBytes bounds the decoded frames of one connection waiting for
	// its actor; past it the reader waits and TCP pushes back on the peer.
	InboxBytes int
	// FleetInboxBytes bounds what every connection's waiting frames hold
	// together past each one's floor (inboxFloor, 128 KiB).
	FleetInboxBytes int
	// NetDial opens the TCP connection of a dial; nil is net.Dialer's.
	// The dial allowlist plugs in here.
	NetDial func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLS verifies wss:// gateways (nil: the system roots).
	TLS *tls.Config
	// Observer is told what happens (metrics, events); nil observes nothing.
	Observer Observer
	// Hooks are test signals; nil hooks cost nothing.
	Hooks Hooks
}

// Hooks let tests observe decisions the runtime makes, so a test can prove
// that something did not happen by waiting for the point where the code
// decided it would not (riverqueue/river's testsignal pattern). Every hook
// is optional, called from an actor's goroutine, and must not block.
type Hooks struct {
	// Settled: a gateway actor entered a state in which it has no dial in
	// flight and no retry timer armed (AUTH_FAILED, DISCONNECTED), so
	// nothing will happen to its connection until it is told otherwise.
	Settled func(id uuid.UUID, state gatewayd.State)
	// Reconfigured: a gateway actor applied new settings; reconnect says
	// whether it started a new connection because of them.
	Reconfigured func(id uuid.UUID, reconnect bool)
	// Healthy: a connection stayed up a ping interval after failures, and
	// the backoff starts over.
	Healthy func(id uuid.UUID)
	// ScheduleSkipped: a schedule's tick queued nothing, because the
	// sensor's scheduled reading had not finished (queueFull false) or
	// the gateway's queue was full (queueFull true).
	ScheduleSkipped func(id, sensorID uuid.UUID, queueFull bool)
}

// withDefaults fills what was left zero (or is out of range) with API.md's
// defaults, so a Config that sets only a few fields neither dials with an
// expired deadline nor pings and retries in a hot loop. RestartLimit is
// the exception: 0 is a valid setting (the first crash leaves the gateway
// FAILED).
func (c Config) withDefaults() Config {
	defaults := []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&c.ConnectTimeout, 10 * time.Second},
		{&c.AuthTimeout, 10 * time.Second},
		{&c.BackoffInitial, time.Second},
		{&c.BackoffMax, 30 * time.Second},
		{&c.PingInterval, 30 * time.Second},
		{&c.PongTimeout, 10 * time.Second},
		{&c.RestartWindow, time.Minute},
		{&c.RateLookupTimeout, time.Second},
	}
	for _, d := range defaults {
		if *d.v <= 0 {
			*d.v = d.def
		}
	}
	c.BackoffMax = max(c.BackoffMax, c.BackoffInitial)
	if c.BackoffMultiplier < 1 {
		c.BackoffMultiplier = 2
	}
	if c.ReconcileInterval <= 0 {
		c.ReconcileInterval = 30 * time.Second
	}
	if c.SeenFlushInterval <= 0 {
		c.SeenFlushInterval = 5 * time.Second
	}
	if c.SensorRefreshInterval <= 0 {
		c.SensorRefreshInterval = 10 * time.Minute
	}
	if c.SensorFlushInterval <= 0 {
		c.SensorFlushInterval = time.Second
	}
	setDefault(&c.ReadingQueueLimit, 16)
	setDefault(&c.ReadingWorkers, runtime.GOMAXPROCS(0))
	setDefault(&c.ReadingCores, max(runtime.GOMAXPROCS(0)-1, 1))
	setDefault(&c.ReadingBacklog, 1024)
	setDefault(&c.ReadingBacklogBytes, 32<<20)
	setDefault(&c.ReadingIntakeBytes, 8<<20)
	if c.ReadingStartTimeout <= 0 {
		c.ReadingStartTimeout = 30 * time.Second
	}
	if c.ReadingTimeout <= 0 {
		c.ReadingTimeout = time.Minute
	}
	if c.ReadingFlushInterval <= 0 {
		c.ReadingFlushInterval = 100 * time.Millisecond
	}
	if c.CommandTimeout <= 0 {
		c.CommandTimeout = 30 * time.Second
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 5 * time.Second
	}
	if c.ActorTimeout <= 0 {
		c.ActorTimeout = time.Second
	}
	if c.DialConcurrency <= 0 {
		c.DialConcurrency = 64
	}
	setDefault(&c.FloodFrameRate, defaultFloodFrameRate)
	setDefault(&c.FloodFrameBurst, defaultFloodFrameBurst)
	setDefault(&c.FloodByteRate, defaultFloodByteRate)
	setDefault(&c.FloodByteBurst, max(defaultFloodByteBurst, readLimit))
	setDefault(&c.InboxBytes, defaultInboxBytes)
	setDefault(&c.FleetInboxBytes, max(defaultFleetInboxBytes, c.InboxBytes))
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
	if c.NetDial == nil {
		c.NetDial = (&net.Dialer{}).DialContext
	}
	return c
}

func setDefault(v *int, def int) {
	if *v <= 0 {
		*v = def
	}
}
