// Package api is gatewayd's HTTP layer (Fiber): it validates requests,
// writes through the store, tells the runtime what changed and asks it for
// live state. It never touches a socket. cmd/gatewayd builds it with New;
// tests build it the same way.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/cors"
	"github.com/gofiber/fiber/v2/middleware/helmet"
	fiberrecover "github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/events"
	"github.com/ctcgw/gatewayd/internal/netguard"
	"github.com/ctcgw/gatewayd/metrics"
	"github.com/ctcgw/gatewayd/store"
	"github.com/ctcgw/gatewayd/telemetry"
	"github.com/ctcgw/gatewayd/vibration"
)

// BodyLimit is the largest request body accepted (1 MiB).
const BodyLimit = 1 << 20

// DefaultReadTimeout bounds reading one request: a client that announces
// more than it sends is answered 408 this long after its first byte. A
// full 1 MiB body needs about 100 KiB/s.
const DefaultReadTimeout = 10 * time.Second

// Runtime is what the API needs of the connection runtime; *actors.Runtime
// implements it.
type Runtime interface {
	GatewayStarted(gatewayd.Target)
	GatewayUpdated(gatewayd.Target)
	// GatewaysRemoved runs then (if not nil) once the gateways are
	// removed, after any state change reported for them.
	GatewaysRemoved(ids []uuid.UUID, then func())
	Status(ctx context.Context, id uuid.UUID) (gatewayd.Status, error)
	Statuses(ctx context.Context, factoryID *uuid.UUID) ([]gatewayd.Status, error)
	Connect(ctx context.Context, id uuid.UUID) (gatewayd.Status, error)
	Disconnect(ctx context.Context, id uuid.UUID) (gatewayd.Status, error)
	Crash(ctx context.Context, id uuid.UUID) error
	Discover(ctx context.Context, id uuid.UUID) (gatewayd.Discovery, error)
	TakeReading(ctx context.Context, r gatewayd.Reading, serial int64, rateHz float64) error
	Reconcile()
	Counts() (total, authenticated int)
	Ready() bool
}

// Options configure the app.
type Options struct {
	CORSOrigins  []string
	ChaosEnabled bool
	// DBTimeout bounds every database call of a request; past it the
	// answer is 503. Default 5s.
	DBTimeout time.Duration
	// Started is the process start, for uptime_seconds.
	Started time.Time
	// Telemetry holds the metrics and the event broker the runtime feeds;
	// nil gives the app private ones (tests).
	Telemetry *telemetry.Observer
	// EventsKeepAlive is the comment period of /api/events (15s);
	// EventsClientBuffer how far a client may fall behind before it is cut
	// off (10,000 events: a whole fleet's drop, one event per gateway);
	// EventsWriteTimeout how long one flush to a client may block before
	// its stream ends (10s).
	EventsKeepAlive    time.Duration
	EventsClientBuffer int
	EventsWriteTimeout time.Duration
	// AuthEnabled makes every route but the public ones need a bearer
	// token of a role (AUTH_ENABLED); MetricsPublic lets /metrics be read
	// without one. TokenCacheTTL bounds how long a token check is reused:
	// a revoked token is refused within it (default 5s).
	AuthEnabled   bool
	MetricsPublic bool
	TokenCacheTTL time.Duration
	// MetricsDisabled (METRICS_ENABLED=false) drops the /metrics route
	// and the per-request counting, so their cost can be measured.
	MetricsDisabled bool
	// DialPolicy refuses gateway URLs whose literal address gatewayd would
	// never dial; nil refuses only the always-denied addresses.
	DialPolicy *netguard.Policy
	// CommandTimeout is how long a gateway may take to answer a command
	// (GATEWAY_COMMAND_TIMEOUT); requests that wait for one wait longer
	// than DBTimeout. Default 30s.
	CommandTimeout time.Duration
	// DatabaseUp, when set, answers health's "database" from a background
	// probe (store.Probe) instead of a ping per request.
	DatabaseUp func() bool
	// WriteTimeout bounds writing one answer; an answer a client does not
	// read holds its part of the answer budgets until then. Default 30s.
	WriteTimeout time.Duration
	// ReadTimeout bounds reading one request, line, headers and body,
	// from its first byte; past it the answer is 408 and the connection
	// is closed. Default 10s.
	ReadTimeout time.Duration
	// MaxConnections caps concurrent HTTP connections (API_MAX_CONNECTIONS);
	// past it a new connection is answered 503 and closed, when served
	// through App.Listener (fasthttp's own limit is a little over it). Event
	// streams, which fasthttp stops counting once they take their
	// connection over, are refused (503) while they and fasthttp's open
	// connections together reach it. Default fasthttp's 262,144.
	MaxConnections int
	// MaxClientConnections caps the connections one client (an IPv4
	// address, an IPv6 /64) holds at once, event streams included
	// (API_MAX_CONNECTIONS_PER_CLIENT); past it a new one is answered 429
	// and closed, when served through App.Listener. Default a quarter of
	// MaxConnections; no cap without MaxConnections.
	MaxClientConnections int
	// Base is every request's context (nil: none that ends). serve ends
	// it when the HTTP shutdown runs out of time, so handlers still
	// waiting on the database or a gateway give up at once: they held
	// their pool connections, and closing the pool waited for them past
	// SHUTDOWN_TIMEOUT.
	Base context.Context
	// ShutdownTimeout is SHUTDOWN_TIMEOUT: the event streams get at most
	// a quarter of it (and 2 s) at shutdown. 0: 2 s.
	ShutdownTimeout time.Duration
}

type server struct {
	store *store.Store
	rt    Runtime
	log   zerolog.Logger
	opts  Options
	// analyzer computes spectra; it caches FFT plans, so it is shared.
	analyzer vibration.Analyzer
	tel      *telemetry.Observer
	// auth checks tokens; nil when access control is off.
	auth *tokens

	// streams are the event streams, which take their connections over.
	streams *streams

	// order keeps the runtime's messages about a gateway in the order of
	// the writes they follow.
	order order

	metricsOnce    sync.Once
	metricsHandler fiber.Handler
	clock          requestClock
	bodies         bodies
	bodyBuffers    bodyBuffers
	// answers counts the bytes waveform and spectrum answers hold; large
	// those of other answers of HeldAnswerMin bytes or more.
	answers answerBudget
	large   budget
	// lists are the turns to build lists of the clients whose lists are
	// large: listTurnsPerClient a client.
	lists listTurns
	// methods are the methods the app knows (Fiber's request methods).
	methods []string
	// allow answers a 405's Allow header.
	allow allowTable
}

// New builds the Fiber app.
func New(st *store.Store, rt Runtime, log zerolog.Logger, opts Options) *App {
	if opts.DBTimeout <= 0 {
		opts.DBTimeout = 5 * time.Second
	}
	if opts.Telemetry == nil {
		opts.Telemetry = &telemetry.Observer{Metrics: metrics.New(), Events: events.NewBroker(1000), Log: log}
	}
	if opts.EventsKeepAlive <= 0 {
		opts.EventsKeepAlive = 15 * time.Second
	}
	if opts.EventsClientBuffer <= 0 {
		opts.EventsClientBuffer = 10_000
	}
	if opts.EventsWriteTimeout <= 0 {
		opts.EventsWriteTimeout = streamWriteTimeout
	}
	if opts.CommandTimeout <= 0 {
		opts.CommandTimeout = 30 * time.Second
	}
	if opts.Started.IsZero() {
		opts.Started = time.Now()
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = DefaultReadTimeout
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 30 * time.Second
	}
	if len(opts.CORSOrigins) == 0 {
		opts.CORSOrigins = []string{"*"}
	}
	s := &server{store: st, rt: rt, log: log, opts: opts, tel: opts.Telemetry, answers: newAnswerBudget(),
		large: newBudget(JSONBudget), lists: newListTurns()}
	if opts.AuthEnabled {
		if opts.TokenCacheTTL <= 0 {
			opts.TokenCacheTTL = 5 * time.Second
		}
		s.auth = &tokens{store: st, ttl: opts.TokenCacheTTL, dbUp: opts.DatabaseUp, cache: make(map[[32]byte]cachedToken),
			refused: &refusals{log: log}}
	}
	table := s.routeTable()
	s.allow = newAllowTable(table)
	app := fiber.New(fiber.Config{
		AppName:   "gatewayd",
		BodyLimit: BodyLimit,
		// fasthttp reads at most 8 KiB of a body before the handler; the
		// edge reads the rest as it arrives (readBody), so an announced
		// length costs nothing until its bytes come.
		StreamRequestBody: true,
		// Room for long query strings; past this fasthttp answers 431.
		ReadBufferSize: 16 << 10,
		// An event stream reaches the connection as 4 KiB chunks (fasthttp's
		// copy buffer); with fasthttp's default 4 KiB writer a chunk and its
		// framing took two write(2)s, with room for both it takes one.
		WriteBufferSize:       8 << 10,
		ErrorHandler:          errorHandler(log, s.allow.lookup),
		DisableStartupMessage: true,
		ReadTimeout:           opts.ReadTimeout,
		// The limit is kept by App.Listener (clients.go); fasthttp's is a
		// backstop a little over it (0: fasthttp's default).
		Concurrency:  ServerConcurrency(opts.MaxConnections),
		WriteTimeout: opts.WriteTimeout,
		IdleTimeout:  2 * time.Minute,
		// Handlers copy what they keep; Immutable costs an allocation per
		// string on the hot path.
		Immutable: false,
		// fasthttp would parse multipart bodies before any handler runs (and
		// answer a broken one itself); only JSON is ever parsed here.
		DisablePreParseMultipartForm: true,
		JSONEncoder:                  encodeJSON,
	})
	s.installEdge(app)
	app.Use(s.requestIDAndAccessLog(app))
	app.Use(fiberrecover.New(fiberrecover.Config{
		EnableStackTrace: true,
		StackTraceHandler: func(c *fiber.Ctx, e interface{}) {
			log.Error().Interface("panic", e).Str("request_id", requestID(c)).Msg("handler panicked")
		},
	}))
	app.Use(helmet.New(helmet.Config{
		XFrameOptions:         headerFrameOptions,
		ReferrerPolicy:        headerReferrerPolicy,
		ContentSecurityPolicy: headerCSP,
	}))
	app.Use(cors.New(cors.Config{
		AllowOrigins:  strings.Join(opts.CORSOrigins, ","),
		AllowMethods:  "GET,POST,PUT,DELETE,OPTIONS",
		AllowHeaders:  "Content-Type,X-Request-Id,Authorization",
		ExposeHeaders: "X-Request-Id",
		MaxAge:        600,
	}))
	app.Use(jsonBodiesOnly)

	s.streams = newStreams(opts.MaxConnections, app.Server)
	// fasthttp's Shutdown does not wait for hijacked connections: the
	// event streams end here, after it (Fiber runs the hook then). What a
	// stream holds gets streamsShutdownWait to go out, not its write
	// timeout: a client that reads nothing must not spend the gateways'
	// share of SHUTDOWN_TIMEOUT (their close with code 1000 comes after).
	// A stream still writing then ends at its deadline, or with the process.
	// A fixed 2 s overran a shorter SHUTDOWN_TIMEOUT, and left the
	// gateways and the pool what remained (found by an audit, helper 10).
	streamsWait := streamsShutdownWait
	if opts.ShutdownTimeout > 0 {
		streamsWait = min(streamsWait, opts.ShutdownTimeout/4)
	}
	app.Hooks().OnShutdown(func() error {
		if !s.streams.close(streamsWait) {
			log.Warn().Msg("event streams still writing at shutdown")
		}
		if s.auth != nil {
			s.auth.refused.close()
		}
		return nil
	})
	s.routes(app, table)
	clients := newClientConns(clientShare(opts), opts.MaxConnections, log)
	clients.exempt = func() int { return int(s.streams.open.Load()) } // streams are counted against the limit by streams
	clients.refused = s.tel.Metrics.ConnectionRefused
	// The refusals still waiting end with the shutdown (Fiber runs its
	// hooks after fasthttp's Shutdown has closed the listener).
	app.Hooks().OnShutdown(func() error {
		clients.stop()
		return nil
	})
	return &App{App: app, clients: clients, silent: &silentConns{}, srv: s}
}

// streamsShutdownWait is the most shutdown waits for the event streams.
const streamsShutdownWait = 2 * time.Second

func methodNotAllowed(*fiber.Ctx) error { return fiber.ErrMethodNotAllowed }

// encodeJSON is json.Marshal without HTML escaping: json.Marshal writes
// each '<', '>' and '&' of stored text as a six-byte \u003c, so a body of
// them came back six times its size. Answers are application/json with
// nosniff and a CSP of default-src 'none'; no browser reads them as HTML.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

const requestIDKey = "requestid"

func requestID(c *fiber.Ctx) string {
	id, _ := c.Locals(requestIDKey).(string)
	return id
}

// acceptableRequestID says whether a client's X-Request-Id is echoed: at
// most 128 printable ASCII characters.
func acceptableRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, r := range id {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// requestIDAndAccessLog sets X-Request-Id and logs every request once,
// after the error handler has set the final status.
func (s *server) requestIDAndAccessLog(app *fiber.App) fiber.Handler {
	return func(c *fiber.Ctx) error {
		start := time.Now()
		id := c.Get(fiber.HeaderXRequestID)
		if !acceptableRequestID(id) {
			id = uuid.NewString()
		} else {
			id = strings.Clone(id)
		}
		c.Locals(requestIDKey, id)
		c.Set(fiber.HeaderXRequestID, id)
		if s.opts.Base != nil {
			c.SetUserContext(s.opts.Base)
		}
		err := c.Next()
		if err != nil {
			if herr := app.ErrorHandler(c, err); herr != nil {
				_ = c.SendStatus(fiber.StatusInternalServerError)
			}
		}
		if err := s.holdLarge(c); err != nil {
			if herr := app.ErrorHandler(c, err); herr != nil {
				_ = c.SendStatus(fiber.StatusInternalServerError)
			}
		}
		status := c.Response().StatusCode()
		took := time.Since(start)
		token, _ := c.Locals(tokenLocal).(string)
		s.logRequest(c.Method(), c.Path(), status, took, id, token)
		if !s.opts.MetricsDisabled {
			route := c.Route().Path
			if route == "/" && c.Path() != "/" {
				// A middleware answered (a 415, a CORS preflight) or no
				// route matched (a 404, or a 405 the router gave):
				// Fiber's route is then the middlewares' "/", which is
				// also the web UI page's pattern.
				preflight := c.Method() == fiber.MethodOptions && c.Get(fiber.HeaderOrigin) != "" &&
					c.Get(fiber.HeaderAccessControlRequestMethod) != ""
				route = s.allow.route(c.Method(), c.Path(), preflight)
			}
			s.tel.Metrics.HTTPRequest(c.Method(), route, status, took)
		}
		return nil
	}
}

// logRequest writes the access-log line of one request.
func (s *server) logRequest(method, path string, status int, d time.Duration, id, token string) {
	ev := s.log.Info()
	if status >= 500 {
		ev = s.log.Warn()
	}
	if token != "" {
		ev = ev.Str("token", token) // its name and id, never its secret
	}
	ev.Str("method", method).Str("path", path).Int("status", status).Int64("duration_ms", d.Milliseconds()).Str("request_id", id).Msg("request")
}

// dbCtx bounds a request's database work.
func (s *server) dbCtx(c *fiber.Ctx) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.UserContext(), s.opts.DBTimeout)
}

// lockedDBCtx takes id's order lock and only then starts a database
// deadline (from parent, the request's context); release ends both.
// Started before the wait, the deadline was spent by a request queued
// behind others on the same gateway (a storm of connects and PUTs, a
// create the scheduler held between its commit and its message), which
// was answered 503 SERVICE_UNAVAILABLE though the database had answered
// nothing late (found by an audit, helper 3). The wait is bounded by the
// holders' own deadlines.
func (s *server) lockedDBCtx(parent context.Context, id uuid.UUID) (ctx context.Context, release func()) {
	unlock := s.order.lock(id)
	ctx, cancel := context.WithTimeout(parent, s.opts.DBTimeout)
	return ctx, func() {
		cancel()
		unlock()
	}
}
