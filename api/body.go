package api

import (
	"errors"
	"io"

	"github.com/valyala/bytebufferpool"
	"github.com/valyala/fasthttp"
)

// A request body costs what has arrived, not what its header announces.
// fasthttp, reading a whole body before the handler, allocated the whole
// announced Content-Length (up to BodyLimit) as soon as it had the head:
// 64 connections that sent heads announcing 1 MiB, 6.6 KB in all and no
// token, held 65 MiB for the read timeout (found by an audit, helper 2).
// So the server streams request bodies (StreamRequestBody): fasthttp reads
// at most 8 KiB of a body before the handler, and screen reads the rest
// here, into a buffer that grows with what arrives, before anything else
// sees the request. The read timeout still bounds it (the connection's
// read deadline, set at the request's first byte, is not moved until the
// answer is written); BodyLimit is enforced here for chunked bodies, and
// by headerReceived for an announced length.

// bodyBuffers are the buffers bodies are read into (the server's). The
// one a body was read into becomes the request's (SwapBody), and the
// request's own buffer, which held the first bytes fasthttp read, comes
// back here; at the request's end fasthttp pools the other. No allocation
// on a small body once both pools are warm.
type bodyBuffers struct{ pool bytebufferpool.Pool }

// minBodyGrowth is the least a body's buffer grows by.
const minBodyGrowth = 4 << 10

// readBody reads the rest of req's streamed body, at most BodyLimit bytes,
// and makes it the request's body; the stream is closed, so the
// connection is left at the next request. An error is one fasthttp would
// have met reading the body itself (ErrBodyTooLarge, a timeout, an early
// EOF, a broken chunk); readError maps it.
func (bufs *bodyBuffers) readBody(req *fasthttp.Request) error {
	announced := req.Header.ContentLength() // -1: chunked
	if announced == 0 || announced > BodyLimit {
		_ = req.CloseBodyStream()
		if announced > BodyLimit { // headerReceived has refused it already
			return fasthttp.ErrBodyTooLarge
		}
		return nil
	}
	bb := bufs.pool.Get()
	b, err := readAtMost(req.BodyStream(), bb.B[:0], announced, BodyLimit)
	if cerr := req.CloseBodyStream(); err == nil {
		err = cerr
	}
	if err != nil {
		bb.B = b
		bufs.pool.Put(bb)
		return err
	}
	if announced < 0 && len(b) == 0 {
		req.Header.SetContentLength(0) // as fasthttp has an empty chunked body
	}
	bb.B = req.SwapBody(b)
	bufs.pool.Put(bb)
	return nil
}

// errNoProgress: a stream that keeps returning nothing and no error.
var errNoProgress = errors.New("request body: no progress")

// readAtMost appends r's bytes to b until EOF (announced < 0) or announced
// bytes, failing with fasthttp.ErrBodyTooLarge past limit. Its buffer
// grows by what arrived (doubling, at least minBodyGrowth), never past
// what was announced, or limit+1 for a chunked body: a client that
// announces 1 MiB and sends 1 byte costs a few KiB.
func readAtMost(r io.Reader, b []byte, announced, limit int) ([]byte, error) {
	idle := 0
	for {
		if announced >= 0 && len(b) >= announced {
			return b, nil
		}
		if len(b) == cap(b) {
			n := max(2*cap(b), minBodyGrowth)
			if announced >= 0 {
				n = min(n, announced)
			} else {
				n = min(n, limit+1)
			}
			grown := make([]byte, len(b), n)
			copy(grown, b)
			b = grown
		}
		m, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+m]
		if len(b) > limit {
			return b, fasthttp.ErrBodyTooLarge
		}
		switch {
		case err == io.EOF && (announced < 0 || len(b) == announced):
			return b, nil
		case err == io.EOF:
			return b, io.ErrUnexpectedEOF
		case err != nil:
			return b, err
		case m == 0:
			if idle++; idle > 100 {
				return b, errNoProgress
			}
		default:
			idle = 0
		}
	}
}
