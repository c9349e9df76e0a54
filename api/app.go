// Package api is gatewayd's HTTP layer (Fiber): it validates requests,
// writes through the store, tells the runtime what changed and asks it for
// live state. It never touches a socket. cmd/gatewayd builds it with New;
// tests build it the same way.
package api

import (
	"context"
	"strings"
	"time"
	"unicode"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/cors"
	"github.com/gofiber/fiber/v2/middleware/helmet"
	fiberrecover "github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/store"
)

// BodyLimit is the largest request body accepted (1 MiB).
const BodyLimit = 1 << 20

// Runtime is what the API needs of the connection runtime; *actors.Runtime
// implements it.
type Runtime interface {
	GatewayStarted(gatewayd.Target)
	GatewayUpdated(gatewayd.Target)
	GatewaysRemoved([]uuid.UUID)
	Status(ctx context.Context, id uuid.UUID) (gatewayd.Status, error)
	Statuses(ctx context.Context, factoryID *uuid.UUID) ([]gatewayd.Status, error)
	Connect(ctx context.Context, id uuid.UUID) (gatewayd.Status, error)
	Disconnect(ctx context.Context, id uuid.UUID) (gatewayd.Status, error)
	Crash(ctx context.Context, id uuid.UUID) error
	Discover(ctx context.Context, id uuid.UUID) (gatewayd.Discovery, error)
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
	// CommandTimeout is how long a gateway may take to answer a command
	// (GATEWAY_COMMAND_TIMEOUT); requests that wait for one wait longer
	// than DBTimeout. Default 30s.
	CommandTimeout time.Duration
}

type server struct {
	store *store.Store
	rt    Runtime
	log   zerolog.Logger
	opts  Options
}

// New builds the Fiber app.
func New(st *store.Store, rt Runtime, log zerolog.Logger, opts Options) *fiber.App {
	if opts.DBTimeout <= 0 {
		opts.DBTimeout = 5 * time.Second
	}
	if opts.CommandTimeout <= 0 {
		opts.CommandTimeout = 30 * time.Second
	}
	if opts.Started.IsZero() {
		opts.Started = time.Now()
	}
	if len(opts.CORSOrigins) == 0 {
		opts.CORSOrigins = []string{"*"}
	}
	s := &server{store: st, rt: rt, log: log, opts: opts}
	app := fiber.New(fiber.Config{
		AppName:   "gatewayd",
		BodyLimit: BodyLimit,
		// Room for long query strings; past this fasthttp answers 431.
		ReadBufferSize:        16 << 10,
		ErrorHandler:          errorHandler(log),
		DisableStartupMessage: true,
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          30 * time.Second,
		IdleTimeout:           2 * time.Minute,
		// Handlers copy what they keep; Immutable costs an allocation per
		// string on the hot path.
		Immutable: false,
	})
	app.Use(s.requestIDAndAccessLog(app))
	app.Use(fiberrecover.New(fiberrecover.Config{
		EnableStackTrace: true,
		StackTraceHandler: func(c *fiber.Ctx, e interface{}) {
			log.Error().Interface("panic", e).Str("request_id", requestID(c)).Msg("handler panicked")
		},
	}))
	app.Use(helmet.New(helmet.Config{
		XFrameOptions:         "DENY",
		ReferrerPolicy:        "no-referrer",
		ContentSecurityPolicy: "default-src 'none'; frame-ancestors 'none'",
	}))
	app.Use(cors.New(cors.Config{
		AllowOrigins:  strings.Join(opts.CORSOrigins, ","),
		AllowMethods:  "GET,POST,PUT,DELETE,OPTIONS",
		AllowHeaders:  "Content-Type,X-Request-Id",
		ExposeHeaders: "X-Request-Id",
		MaxAge:        600,
	}))

	a := app.Group("/api")
	a.Get("/health", s.health)
	a.Get("/ready", s.ready)
	a.Get("/openapi.json", openAPI)
	a.Get("/docs", apiDocs())
	a.Get("/docs/docs.css", apiDocsCSS)

	a.Post("/organizations", s.createOrganization)
	a.Get("/organizations", listPage(s, "", func(ctx context.Context, _ *uuid.UUID, p store.Page) ([]gatewayd.Organization, int, error) {
		return st.ListOrganizations(ctx, p)
	}, renderOrganization))
	a.Get("/organizations/:id", getOne(s, resOrganization, st.GetOrganization, renderOrganization))
	a.Put("/organizations/:id", s.updateOrganization)
	a.Delete("/organizations/:id", deleteOne(s, resOrganization, st.DeleteOrganization))

	a.Post("/factories", s.createFactory)
	a.Get("/factories", listPage(s, "organization_id", st.ListFactories, renderFactory))
	a.Get("/factories/:id", getOne(s, resFactory, st.GetFactory, renderFactory))
	a.Put("/factories/:id", s.updateFactory)
	a.Delete("/factories/:id", deleteOne(s, resFactory, st.DeleteFactory))

	a.Post("/gateways", s.createGateway)
	a.Get("/gateways", listPage(s, "factory_id", st.ListGateways, renderGateway))
	// Before /gateways/:id, which would read "status" as an id.
	a.Get("/gateways/status", s.listStatuses)
	a.All("/gateways/status", methodNotAllowed)
	a.Get("/gateways/:id", getOne(s, resGateway, st.GetGateway, renderGateway))
	a.Put("/gateways/:id", s.updateGateway)
	a.Delete("/gateways/:id", deleteOne(s, resGateway, func(ctx context.Context, id uuid.UUID) ([]uuid.UUID, error) {
		return []uuid.UUID{id}, st.DeleteGateway(ctx, id)
	}))
	a.Get("/gateways/:id/status", s.gatewayStatus)
	a.Post("/gateways/:id/connect", s.connectGateway)
	a.Post("/gateways/:id/disconnect", s.disconnectGateway)
	a.Get("/gateways/:id/sensors", s.gatewaySensors)
	a.Post("/gateways/:id/sensors/discover", s.discoverSensors)

	a.Get("/sensors", s.listSensors)
	a.Get("/sensors/:id", getOne(s, resSensor, st.GetSensor, renderSensor))
	a.Put("/sensors/:id", s.updateSensor)

	a.Post("/equipment", s.createEquipment)
	a.Get("/equipment", listPage(s, "factory_id", st.ListEquipment, renderEquipment))
	a.Get("/equipment/:id", getOne(s, resEquipment, st.GetEquipment, renderEquipment))
	a.Put("/equipment/:id", s.updateEquipment)
	a.Delete("/equipment/:id", deleteOne(s, resEquipment, func(ctx context.Context, id uuid.UUID) ([]uuid.UUID, error) {
		return nil, st.DeleteEquipment(ctx, id)
	}))
	if opts.ChaosEnabled {
		a.Post("/debug/gateways/:id/crash", s.crashGateway)
	}
	return app
}

func methodNotAllowed(*fiber.Ctx) error { return fiber.ErrMethodNotAllowed }

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
		err := c.Next()
		if err != nil {
			if herr := app.ErrorHandler(c, err); herr != nil {
				_ = c.SendStatus(fiber.StatusInternalServerError)
			}
		}
		status := c.Response().StatusCode()
		ev := s.log.Info()
		if status >= 500 {
			ev = s.log.Warn()
		}
		ev.Str("method", c.Method()).Str("path", c.Path()).Int("status", status).
			Dur("duration", time.Since(start)).Str("request_id", id).Msg("request")
		return nil
	}
}

// dbCtx bounds a request's database work.
func (s *server) dbCtx(c *fiber.Ctx) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.UserContext(), s.opts.DBTimeout)
}
