package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
)

// The edge: what fasthttp answers before any Fiber handler runs. fasthttp
// reads a request's line and headers, and at most the first 8 KiB of its
// body (StreamRequestBody), before calling the handler; screen reads the
// rest (readBody) before any other handler runs, so every handler sees a
// whole body, as arrived. When a request cannot be read (headers over the
// buffer, a body over the limit, garbage, a client too slow) fasthttp
// calls Server.ErrorHandler, or screen refuses it, and the connection is
// closed. Fiber's own handler also answers a few requests without its
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
	s.methods = methods
	srv.Handler = s.screen(srv.Handler, methods)
	srv.HeaderReceived = s.headerReceived
	srv.ErrorHandler = s.readFailed
	srv.ConnState = s.connState
	// fasthttp's error texts may quote the request (headers included);
	// they are never sent, and this keeps them out of its log lines too.
	srv.SecureErrorLogMessage = true
	srv.Logger = fasthttpLogger{s.log}
}

// requestLine is what the access log and the answer need of a request.
type requestLine struct {
	method, path, id string
	ambiguous        bool // framingConflict
	tooLarge         bool // a Content-Length over BodyLimit
}

func lineOf(fctx *fasthttp.RequestCtx) requestLine {
	h := &fctx.Request.Header
	return requestLine{method: string(h.Method()), path: string(fctx.URI().PathOriginal()), id: string(h.Peek(fiber.HeaderXRequestID))}
}

// bodies holds the request line of each request whose body fasthttp is
// reading: when that read fails, fasthttp resets the whole request before
// calling its ErrorHandler, so readFailed would not know what it answers.
// Keyed by the connection, which a request cannot outlive: every entry is
// taken out by screen (the body was read), readFailed (it was not) or
// the connection's end (connState). The last is a request fasthttp let
// go of unanswered: its client was gone before "100 Continue" could be
// written.
type bodies struct {
	mu sync.Mutex
	m  map[net.Conn]requestLine
}

func (b *bodies) put(c net.Conn, l requestLine) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = make(map[net.Conn]requestLine)
	}
	b.m[c] = l
}

func (b *bodies) take(c net.Conn) (requestLine, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	l, ok := b.m[c]
	delete(b.m, c)
	return l, ok
}

// connOf is the connection of the request whose header h is. fasthttp
// hands HeaderReceived nothing but &ctx.Request.Header, of the
// RequestCtx that serves the connection; TestConnOfIsTheRequestsConnection
// holds fasthttp to that.
func connOf(h *fasthttp.RequestHeader) net.Conn {
	off := unsafe.Offsetof((*fasthttp.RequestCtx)(nil).Request) + unsafe.Offsetof((*fasthttp.Request)(nil).Header)
	return (*fasthttp.RequestCtx)(unsafe.Add(unsafe.Pointer(h), -int(off))).Conn()
}

func hasBody(h *fasthttp.RequestHeader) bool {
	n := h.ContentLength() // -1 chunked, -2 none
	return n > 0 || n == -1
}

// headerReceived is fasthttp's HeaderReceived hook, called between a
// request's header and its body. It remembers the request line of a
// request with a body. A request whose framing is ambiguous, or whose
// Content-Length is over BodyLimit, is refused by screen without a byte of
// its body read: its header is made to announce none, so that fasthttp
// reads nothing (instead of waiting for a length that may never come, or
// reading a smuggled request as a body) and hands it to screen at once.
// (With StreamRequestBody fasthttp does not refuse a length over the
// limit itself: it reads the first 8 KiB and hands over the rest.)
func (s *server) headerReceived(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	// fasthttp ignores a Transfer-Encoding of identity: such a request
	// has no body to it, and is checked all the same.
	if !hasBody(h) && !hasTransferEncoding(h.RawHeaders()) {
		return fasthttp.RequestConfig{}
	}
	// The raw request URI: its path is worked out only if the body fails.
	l := requestLine{method: string(h.Method()), path: string(h.RequestURI()), id: string(h.Peek(fiber.HeaderXRequestID)),
		ambiguous: framingConflict(h.RawHeaders())}
	l.tooLarge = !l.ambiguous && h.ContentLength() > BodyLimit
	s.bodies.put(connOf(h), l)
	if l.ambiguous || l.tooLarge {
		h.SetContentLength(0)
	}
	return fasthttp.RequestConfig{}
}

// pathOf is the path of a raw request URI, as Fiber's c.Path() has it
// (the query cut off, an absolute-form URI reduced to its path). One that
// does not parse is cut at its '?' all the same: the path is logged, and
// a query may carry what the log must not show.
func pathOf(requestURI string) string {
	var u fasthttp.URI
	if err := u.Parse(nil, []byte(requestURI)); err != nil {
		path, _, _ := strings.Cut(requestURI, "?")
		return path
	}
	return string(u.PathOriginal())
}

// screen refuses what Fiber would answer outside its middleware or should
// not serve at all, then hands the request to Fiber.
func (s *server) screen(next fasthttp.RequestHandler, methods []string) fasthttp.RequestHandler {
	return func(fctx *fasthttp.RequestCtx) {
		h := &fctx.Request.Header
		if hasBody(h) || h.ContentLength() == 0 { // a refused body was made length 0
			if l, ok := s.bodies.take(fctx.Conn()); ok {
				switch {
				case l.ambiguous:
					s.refuse(fctx, errFraming, s.clock.start(fctx.Conn(), fctx.Time()), lineOf(fctx), true)
					return
				case l.tooLarge:
					s.refuse(fctx, errPayloadTooLarge, s.clock.start(fctx.Conn(), fctx.Time()), lineOf(fctx), true)
					return
				}
			}
		}
		if fctx.Request.IsBodyStream() {
			// Read before anything else, as fasthttp would have: every
			// refusal below then leaves the connection at the next request.
			if err := s.bodyBuffers.readBody(&fctx.Request); err != nil {
				start := s.clock.start(fctx.Conn(), fctx.Time())
				s.refuse(fctx, s.readError(err, true, start), start, lineOf(fctx), true)
				return
			}
		}
		if bytes.IndexByte(h.RequestURI(), ' ') >= 0 {
			// fasthttp takes the request line's last space as the one
			// before the version, so a line of more than three parts, or
			// with a space after its version, reaches here with spaces
			// in its target (and, for the latter, as HTTP/1.1). It is
			// not a request line; like one fasthttp cannot parse, it is
			// logged without method and path.
			s.refuse(fctx, errMalformed, fctx.Time(), requestLine{id: lineOf(fctx).id}, true)
			return
		}
		if p := string(h.Protocol()); p != "HTTP/1.1" && p != "HTTP/1.0" {
			// The HTTP/2 connection preface (PRI * HTTP/2.0) lands here;
			// what follows it is binary, so the connection is closed.
			s.refuse(fctx, errHTTPVersion, fctx.Time(), lineOf(fctx), true)
			return
		}
		hosts, auths, badName := singletons(h.RawHeaders())
		if badName {
			// A field name that is not a token (RFC 9110 §5.1): fasthttp
			// refuses only a space or tab in one, and took a NUL, a
			// control or a non-ASCII byte as part of a name no one
			// reads: "Transfer-Encoding\x00: chunked" left its body to be
			// served as the next request, smuggled past a proxy that
			// reads the name without the NUL (found by an audit, helper 4).
			s.refuse(fctx, errMalformed, fctx.Time(), lineOf(fctx), true)
			return
		}
		if hosts > 1 || (hosts == 0 && h.IsHTTP11()) {
			// RFC 9112 §3.2: an HTTP/1.1 request without Host, or any
			// with more than one, is answered 400.
			s.refuse(fctx, errHost, fctx.Time(), lineOf(fctx), true)
			return
		}
		if auths > 1 {
			// Two credentials: which one the request acts with would be
			// the server's guess (the first won).
			s.refuse(fctx, errAuthorization, fctx.Time(), lineOf(fctx), false)
			return
		}
		if !slices.Contains(methods, string(h.Method())) {
			l := lineOf(fctx)
			s.refuse(fctx, errMethodNotAllowed, fctx.Time(), l, false)
			if allow := s.allow.lookup(l.path); allow != "" {
				fctx.Response.Header.Set(fiber.HeaderAllow, allow)
			}
			return
		}
		next(fctx)
	}
}

// readFailed is fasthttp's Server.ErrorHandler: the request could not be
// read. fasthttp closes the connection after it.
func (s *server) readFailed(fctx *fasthttp.RequestCtx, err error) {
	start := s.clock.start(fctx.Conn(), fctx.ConnTime())
	// A request whose header was read is in bodies (its body failed);
	// otherwise the header failed and method and path are unknown.
	l, headerRead := s.bodies.take(fctx.Conn())
	apiErr := s.readError(err, headerRead, start)
	if apiErr == nil {
		// Nothing of a request arrived: nobody to answer, nothing to log.
		_ = fctx.Conn().Close()
		return
	}
	if headerRead {
		l.path = pathOf(l.path)
	}
	s.refuse(fctx, apiErr, start, l, true) // fasthttp closes it anyway
}

// readError is readError for a request that began at start. fasthttp
// wraps a read error met at a chunk's end in ErrBrokenChunk, which hides
// it from errors.As: a chunked body that stops there, once the read
// timeout has passed since the request's first byte, met the read
// deadline (set at that byte) and is 408, as one that stops anywhere else.
func (s *server) readError(err error, headerRead bool, start time.Time) *Error {
	apiErr := readError(err, headerRead)
	var broken fasthttp.ErrBrokenChunk
	if apiErr == errMalformed && errors.As(err, &broken) && time.Since(start) >= s.opts.ReadTimeout {
		return errRequestTimeout
	}
	return apiErr
}

// framingConflict says whether a request's header makes its body's
// length ambiguous: Content-Length together with Transfer-Encoding, two
// different Content-Lengths, or a Transfer-Encoding other than one
// `chunked` (RFC 9112 §6.3: chunked must be the final coding, and no other
// is taken here). fasthttp would pick one framing (chunked, the last
// length; it reads identity as none and any other coding as chunked); a
// proxy in front may have picked another and sent the rest as a second
// request (request smuggling): with `Transfer-Encoding: identity` the
// bytes after the head were served as the next request (found by an
// audit, helper 12). RFC 9112 §6.3: answer 400 and close the connection.
func framingConflict(raw []byte) bool {
	var length []byte
	hasLength, codings := false, 0
	onlyChunked := true
	for len(raw) > 0 {
		var line []byte
		line, raw = cutLine(raw)
		k, v, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			continue
		}
		switch {
		case bytes.EqualFold(k, []byte(fiber.HeaderContentLength)):
			v = bytes.TrimSpace(v)
			if hasLength && !bytes.Equal(v, length) {
				return true
			}
			hasLength, length = true, v
		case bytes.EqualFold(k, []byte(fiber.HeaderTransferEncoding)):
			for coding := range bytes.SplitSeq(v, []byte{','}) {
				codings++
				onlyChunked = onlyChunked && bytes.EqualFold(bytes.TrimSpace(coding), []byte("chunked"))
			}
		}
	}
	return codings > 0 && (hasLength || codings > 1 || !onlyChunked)
}

// hasTransferEncoding says whether a raw header has a Transfer-Encoding
// line. It looks at a line's first byte first: it runs for every request.
func hasTransferEncoding(raw []byte) bool {
	for len(raw) > 0 {
		var line []byte
		line, raw = cutLine(raw)
		if len(line) > len(fiber.HeaderTransferEncoding) && (line[0] == 'T' || line[0] == 't') &&
			line[len(fiber.HeaderTransferEncoding)] == ':' &&
			bytes.EqualFold(line[:len(fiber.HeaderTransferEncoding)], []byte(fiber.HeaderTransferEncoding)) {
			return true
		}
	}
	return false
}

// cutLine splits the first line off a raw header.
func cutLine(raw []byte) (line, rest []byte) {
	if i := bytes.IndexByte(raw, '\n'); i >= 0 {
		return raw[:i], raw[i+1:]
	}
	return raw, nil
}

// singletons counts the Host and Authorization lines of a raw header:
// fields a request may carry once only. badName says whether a line's
// field name is not a token (RFC 9110 §5.1); a line without a colon, and
// a folded line's continuation, name nothing (fasthttp has refused or
// joined them).
func singletons(raw []byte) (hosts, auths int, badName bool) {
	for len(raw) > 0 {
		var line []byte
		line, raw = cutLine(raw)
		switch {
		case len(line) >= 5 && line[4] == ':' && bytes.EqualFold(line[:4], []byte("host")):
			hosts++
		case len(line) >= 14 && line[13] == ':' && bytes.EqualFold(line[:13], []byte("authorization")):
			auths++
		case len(line) > 0 && line[0] != ' ' && line[0] != '\t':
			if name, _, ok := bytes.Cut(line, []byte{':'}); ok && !isToken(name) {
				badName = true
			}
		}
	}
	return hosts, auths, badName
}

// isToken says whether b is an RFC 9110 token (§5.6.2): a field name.
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tokenChars[c] {
			return false
		}
	}
	return true
}

var tokenChars = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// setOutsideHeaders sets, on an answer made outside Fiber's chain (the
// edge's refusals, the starting server's), the request id and the
// security headers the chain's Helmet would have set first.
func setOutsideHeaders(h *fasthttp.ResponseHeader, id string) {
	h.Set(fiber.HeaderXRequestID, id)
	h.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	h.Set(fiber.HeaderXFrameOptions, headerFrameOptions)
	h.Set(fiber.HeaderReferrerPolicy, headerReferrerPolicy)
	h.Set(fiber.HeaderContentSecurityPolicy, headerCSP)
}

// refuse answers a request outside Fiber's chain, in the envelope, with a
// request id and the security headers, and logs it once; closing closes
// the connection after the answer. A request whose line could not be read
// is logged with empty method and path.
func (s *server) refuse(fctx *fasthttp.RequestCtx, apiErr *Error, start time.Time, l requestLine, closing bool) {
	id := l.id
	if !acceptableRequestID(id) {
		id = uuid.NewString()
	}
	body, err := json.Marshal(fiber.Map{"error": apiErr})
	if err != nil { // cannot happen: the envelope is plain data
		body = []byte(`{"error":{"code":"INTERNAL_ERROR","message":"Internal server error","statusCode":500}}`)
	}
	resp := &fctx.Response
	resp.Reset()
	resp.SetStatusCode(apiErr.Status)
	resp.Header.SetContentType(fiber.MIMEApplicationJSON)
	setOutsideHeaders(&resp.Header, id)
	resp.SetBody(body)
	if closing {
		resp.SetConnectionClose()
	}
	s.logRefused(l, id, apiErr.Status, time.Since(start))
}

// logRefused logs and counts a request answered (or dropped) outside
// Fiber's chain.
func (s *server) logRefused(l requestLine, id string, status int, took time.Duration) {
	s.logRequest(l.method, l.path, status, took, id, "")
	if !s.opts.MetricsDisabled {
		// Counted too, so an alert on error rates sees oversized and
		// malformed traffic; the method is whatever the client sent, so
		// only the known ones become label values.
		s.tel.Metrics.HTTPRequest(s.knownMethod(l.method), unroutedLabel, status, took)
	}
}

// unroutedLabel is the route of requests refused before routing;
// unmatchedLabel of those no route pattern matched (404 and 405).
const (
	unroutedLabel  = "(unrouted)"
	unmatchedLabel = "(unmatched)"
)

// knownMethod bounds a method for a label: one the app knows (the set
// screen admits), else OTHER.
func (s *server) knownMethod(m string) string {
	if slices.Contains(s.methods, m) {
		return m
	}
	return "OTHER"
}

// connState is fasthttp's ConnState hook. A request still in bodies when
// its connection ends was dropped by fasthttp without an answer or a
// call to readFailed (its client was gone before "100 Continue"); it is
// logged as the failed body read it is, once, as every request is.
func (s *server) connState(c net.Conn, state fasthttp.ConnState) {
	if state == fasthttp.StateClosed || state == fasthttp.StateHijacked {
		if l, ok := s.bodies.take(c); ok {
			id := l.id
			if !acceptableRequestID(id) {
				id = uuid.NewString()
			}
			l.path = pathOf(l.path)
			s.logRefused(l, id, errMalformed.Status, time.Since(s.clock.start(c, time.Now())))
		}
	}
	s.clock.track(c, state)
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
