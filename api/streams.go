package api

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// streams keeps the event streams that left fasthttp's hands.
//
// A stream through fasthttp's SetBodyStreamWriter reaches the socket
// through a pipe, in 4 KiB pieces, each a chunk and a write(2): 100
// subscribers of a 10,000-gateway reconnect storm cost ~345,000 writes
// and a goroutine hand-off each (BENCHMARKS.md, issue #15). A hijacked
// connection is written directly, one write per flush (at most every
// streamFlushInterval), and the body needs no chunk framing: it runs
// until the connection closes.
//
// What fasthttp did for a stream, this does instead: a hijacked
// connection no longer counts against fasthttp's Concurrency
// (API_MAX_CONNECTIONS), so streams are counted here and a new one is
// refused while streams and fasthttp's open connections together reach
// the limit; and fasthttp's Shutdown does not wait for it, so close ends
// every stream and waits for them.
type streams struct {
	max    int                     // API_MAX_CONNECTIONS; 0: fasthttp's default, not counted
	server func() *fasthttp.Server // the app's, known once it serves

	open atomic.Int64
	// buffers are the streams' write buffers (*bufio.Writer), which a
	// stream holds only while it has something to send (streamWriter).
	buffers *writerPool

	mu      sync.Mutex // guards stopped against enter, so Add never races Wait
	stopped bool
	stop    chan struct{}
	wg      sync.WaitGroup
}

func newStreams(max int, server func() *fasthttp.Server) *streams {
	return &streams{max: max, server: server, stop: make(chan struct{}), buffers: newWriterPool(streamBufferSize, streamBuffersKept)}
}

// full reports whether a new stream would pass the connection limit. The
// asking request's own connection is among fasthttp's open ones. A stream
// that has just started may be counted twice for a moment (fasthttp stops
// counting its connection only once its handler has returned, after the
// stream has entered): the error is on the refusing side, never past the
// limit.
func (s *streams) full() bool {
	if s.max <= 0 {
		return false
	}
	return int(s.open.Load())+int(s.server().GetOpenConnectionsCount()) > s.max
}

// enter counts a stream that starts; false once close has begun.
func (s *streams) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return false
	}
	s.wg.Add(1)
	s.open.Add(1)
	return true
}

func (s *streams) leave() {
	s.open.Add(-1)
	s.wg.Done()
}

// close ends every stream (each flushes what it holds and returns) and
// waits for them, at most wait: a flush to a client that stopped reading
// is bounded by the write timeout (Options.EventsWriteTimeout).
func (s *streams) close(wait time.Duration) bool {
	s.mu.Lock()
	if !s.stopped {
		s.stopped = true
		close(s.stop)
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false // the waiter ends with the last stream's write deadline
	}
}

// streamHead is the response head of a hijacked stream: the status line,
// every header the handler and the middleware set (security headers,
// CORS, the request id), a Date, and Connection: close, which is what
// delimits the body. Neither Content-Length nor Transfer-Encoding: Go's
// HTTP client, for one, refuses any transfer coding but chunked.
func streamHead(h *fasthttp.ResponseHeader, now time.Time) []byte {
	b := make([]byte, 0, 512)
	b = append(b, "HTTP/1.1 200 OK\r\n"...)
	h.VisitAll(func(k, v []byte) {
		switch string(k) {
		case fasthttp.HeaderContentLength, fasthttp.HeaderTransferEncoding, fasthttp.HeaderConnection, fasthttp.HeaderDate:
			return
		}
		b = append(b, k...)
		b = append(b, ": "...)
		b = append(b, v...)
		b = append(b, "\r\n"...)
	})
	b = append(b, "Date: "...)
	b = now.UTC().AppendFormat(b, http.TimeFormat)
	b = append(b, "\r\nConnection: close\r\n\r\n"...)
	return b
}
