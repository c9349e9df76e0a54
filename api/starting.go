package api

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
)

// StartingOptions configure Starting.
type StartingOptions struct {
	// Started is the uptime's origin.
	Started time.Time
	// State says whether the database is connected and what the start
	// waits for.
	State func() (databaseUp bool, waitingFor string)
	// Log gets the access-log line of every answer, as the API's.
	Log zerolog.Logger
	// CORSOrigins are the API's (CORS_ORIGINS): a dashboard on another
	// origin can read the 503 and its reason, not a network error.
	CORSOrigins []string
}

// Starting answers on the API's port while `gatewayd serve` starts (waits
// for the database, migrates, waits for the instance lock, loads), before
// the routes exist: health is liveness and says 200 (the contract keeps it
// 200 while the database is down), ready and every other route 503
// SERVICE_UNAVAILABLE with a Retry-After and why. Without it a client's
// connection was accepted by the kernel and then hung, for up to the 30 s
// the process waits for its database, which a liveness probe took for a
// dead process. Every answer closes its connection, so no client is left
// on a connection of this handler when the API proper takes over the
// port. Answers carry what the API's do: the X-Request-Id, the security
// headers, the CORS origin, one access-log line.
func Starting(opts StartingOptions) fasthttp.RequestHandler {
	anyOrigin := len(opts.CORSOrigins) == 0 || slices.Contains(opts.CORSOrigins, "*")
	return func(c *fasthttp.RequestCtx) {
		start := time.Now()
		h := &c.Response.Header
		id := string(c.Request.Header.Peek(fiber.HeaderXRequestID))
		if !acceptableRequestID(id) {
			id = uuid.NewString()
		}
		if body := c.Request.BodyStream(); body != nil {
			// Its server streams bodies (fasthttp reads at most 8 KiB of
			// one before this runs): a body costs what arrives, not what
			// it announces. It is read and dropped, at most BodyLimit of
			// it within the read timeout, so that the answer is not lost
			// to the reset a close with unread bytes sends.
			_, _ = io.Copy(io.Discard, io.LimitReader(body, BodyLimit))
		}
		c.SetConnectionClose()
		c.SetContentType("application/json")
		setOutsideHeaders(h, id)
		if origin := string(c.Request.Header.Peek(fasthttp.HeaderOrigin)); origin != "" {
			switch {
			case anyOrigin:
				h.Set(fasthttp.HeaderAccessControlAllowOrigin, "*")
			case slices.Contains(opts.CORSOrigins, origin):
				h.Set(fasthttp.HeaderAccessControlAllowOrigin, origin)
				h.Set(fasthttp.HeaderVary, fasthttp.HeaderOrigin)
			}
			h.Set(fasthttp.HeaderAccessControlExposeHeaders, "X-Request-Id") // as the API's CORS config says it
		}
		up, why := opts.State()
		if livenessWhileStarting(string(c.Method()), string(c.Path())) {
			db := "ok"
			if !up {
				db = "unreachable"
			}
			body, _ := json.Marshal(healthOf(db, 0, 0, opts.Started))
			c.SetBody(body)
		} else {
			body, _ := json.Marshal(map[string]*Error{"error": startingError(why)})
			c.SetStatusCode(http.StatusServiceUnavailable)
			h.Set(fasthttp.HeaderRetryAfter, "1")
			c.SetBody(body)
		}
		// Info, not the API's warn for a 5xx: these 503s are the start's
		// documented answer, and the start logs what it waits for itself.
		opts.Log.Info().Str("method", string(c.Method())).Str("path", string(c.URI().PathOriginal())).
			Int("status", c.Response.StatusCode()).Int64("duration_ms", time.Since(start).Milliseconds()).
			Str("request_id", id).Msg("request")
	}
}

// livenessWhileStarting says whether a starting gatewayd gives a request
// the liveness answer rather than its 503: a GET or HEAD of /api/health,
// routed as the API routes it (case-insensitive, a trailing slash
// allowed). The OpenAPI document lists the 503 on every other operation.
func livenessWhileStarting(method, path string) bool {
	return (method == fiber.MethodGet || method == fiber.MethodHead) &&
		strings.EqualFold(strings.TrimSuffix(path, "/"), "/api/health")
}

// startingError is a starting gatewayd's answer, why saying what it waits
// for.
func startingError(why string) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: "SERVICE_UNAVAILABLE", Message: "gatewayd is starting: " + why}
}
