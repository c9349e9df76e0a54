package api

import (
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
)

// The edge: what fasthttp answers before any Fiber handler runs. fasthttp
// reads a whole request (line, headers, body) before calling the handler;
// when it cannot (headers over the buffer, a body over the limit, garbage,
// a client too slow) it calls Server.ErrorHandler and closes the
// connection. Fiber's own handler also answers a few requests without its
// middleware (an unknown method). Both are replaced here so that every
// request gets the error envelope and exactly one access-log line.

// Security headers of every answer; helmet sets them inside the chain,
// refuse sets them on answers written outside it.
const (
	headerCSP            = "default-src 'none'; frame-ancestors 'none'"
	headerFrameOptions   = "DENY"
	headerReferrerPolicy = "no-referrer"
)

// installEdge puts the edge in front of Fiber's handler.
func (s *server) installEdge(app *fiber.App) {
	srv := app.Server()
	methods := app.Config().RequestMethods
	if len(methods) == 0 {
		methods = fiber.DefaultMethods
	}
	srv.Handler = s.screen(srv.Handler, methods)
	srv.ErrorHandler = s.readFailed
	srv.ConnState = s.clock.track
	// fasthttp's error texts may quote the request (headers included);
	// they are never sent, and this keeps them out of its log lines too.
	srv.SecureErrorLogMessage = true
	srv.Logger = fasthttpLogger{s.log}
}

// screen refuses what Fiber would answer outside its middleware or should
// not serve at all, then hands the request to Fiber.
func (s *server) screen(next fasthttp.RequestHandler, methods []string) fasthttp.RequestHandler {
	return func(fctx *fasthttp.RequestCtx) {
		h := &fctx.Request.Header
		if p := string(h.Protocol()); p != "HTTP/1.1" && p != "HTTP/1.0" {
			// The HTTP/2 connection preface (PRI * HTTP/2.0) lands here;
			// what follows it is binary, so the connection is closed.
			fctx.SetConnectionClose()
			s.refuse(fctx, errHTTPVersion, fctx.Time(), true)
			return
		}
		if !slices.Contains(methods, string(h.Method())) {
			s.refuse(fctx, errMethodNotAllowed, fctx.Time(), true)
			return
		}
		next(fctx)
	}
}

// readFailed is fasthttp's Server.ErrorHandler: the request could not be
// read. fasthttp closes the connection after it.
func (s *server) readFailed(fctx *fasthttp.RequestCtx, err error) {
	start := s.clock.start(fctx.Conn(), fctx.ConnTime())
	// A header that was read is kept; one that failed is reset, so its
	// method and path are unknown.
	headerRead := len(fctx.Request.Header.RawHeaders()) > 0
	apiErr := readError(err, headerRead)
	if apiErr == nil {
		// Nothing of a request arrived: nobody to answer, nothing to log.
		_ = fctx.Conn().Close()
		return
	}
	s.refuse(fctx, apiErr, start, headerRead)
}

// refuse answers a request outside Fiber's chain, in the envelope, with a
// request id and the security headers, and logs it once. Without a header
// (it could not be read) method and path are logged empty.
func (s *server) refuse(fctx *fasthttp.RequestCtx, apiErr *Error, start time.Time, headerRead bool) {
	h := &fctx.Request.Header
	id := string(h.Peek(fiber.HeaderXRequestID))
	if !acceptableRequestID(id) {
		id = uuid.NewString()
	}
	method, path := "", ""
	if headerRead {
		method, path = string(h.Method()), string(fctx.URI().PathOriginal())
	}
	body, err := json.Marshal(fiber.Map{"error": apiErr})
	if err != nil { // cannot happen: the envelope is plain data
		body = []byte(`{"error":{"code":"INTERNAL_ERROR","message":"Internal server error","statusCode":500}}`)
	}
	resp := &fctx.Response
	resp.Reset()
	resp.SetStatusCode(apiErr.Status)
	resp.Header.SetContentType(fiber.MIMEApplicationJSON)
	resp.Header.Set(fiber.HeaderXRequestID, id)
	resp.Header.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	resp.Header.Set(fiber.HeaderXFrameOptions, headerFrameOptions)
	resp.Header.Set(fiber.HeaderReferrerPolicy, headerReferrerPolicy)
	resp.Header.Set(fiber.HeaderContentSecurityPolicy, headerCSP)
	resp.SetBody(body)
	s.logRequest(method, path, apiErr.Status, time.Since(start), id)
}

// requestClock knows when each connection's current request began, for
// the duration of requests fasthttp fails to read: it marks a connection
// active when a request's first byte is there (fasthttp's ConnState).
type requestClock struct{ conns sync.Map } // net.Conn → *atomic.Int64 (unix nanoseconds)

func (rc *requestClock) track(c net.Conn, state fasthttp.ConnState) {
	switch state {
	case fasthttp.StateNew, fasthttp.StateActive:
		now := time.Now().UnixNano()
		if v, ok := rc.conns.Load(c); ok {
			v.(*atomic.Int64).Store(now)
			return
		}
		v := new(atomic.Int64)
		v.Store(now)
		rc.conns.Store(c, v)
	case fasthttp.StateClosed, fasthttp.StateHijacked:
		rc.conns.Delete(c)
	}
}

func (rc *requestClock) start(c net.Conn, fallback time.Time) time.Time {
	if v, ok := rc.conns.Load(c); ok {
		return time.Unix(0, v.(*atomic.Int64).Load())
	}
	return fallback
}

// fasthttpLogger takes fasthttp's own log lines. Its per-connection read
// errors repeat what the access log already says, so they go to debug;
// anything else (connections over the concurrency limit, accept errors)
// is a warning.
type fasthttpLogger struct{ log zerolog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	ev := l.log.Warn()
	if strings.HasPrefix(format, "error when serving connection") {
		ev = l.log.Debug()
	}
	ev.Str("component", "http").Msg(fmt.Sprintf(format, args...))
}
