package actors

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"net"
	"time"
)

// frameMeter is the flood meter of one gateway's socket: it counts the
// WebSocket frames and bytes the gateway sends as they are read off the
// connection (above TLS), and fails the read that goes past the limits
// with errFlood, which gorilla/websocket hands to the reader. Counting
// messages where the reader gets them missed every frame gorilla reads
// inside NextReader and Read: pings (each answered with a write), pongs
// (each a message to the actor) and the continuation fragments of a
// message that never ends, empty ones by the million, none of which ever
// reached a limit (found by an audit, helper 4).
//
// Until the handshake's HTTP response has been read (its blank line), the
// bytes are not frames and are not counted. After that only the reader
// goroutine reads, so the meter needs no lock. A server's frames are
// unmasked, but a masked one is parsed too (and the reader refuses it).
type frameMeter struct {
	net.Conn
	frames, bytes bucket
	// The sustained limits, for the error: a copy of the whole Config
	// made the meter 496 bytes a connection.
	frameRate, byteRate int
	framing             bool // past the handshake's response
	lineEnd             int  // before that: 1 after a line's \n, 2 after \n\r (see count)
	response            int  // and the response's bytes so far
	head                [14]byte
	headLen             int    // bytes of the current frame's header read
	skip                uint64 // bytes of the current frame's payload still to come
	// messages counts the text and binary frames begun: the messages the
	// peer sent, as far as they came off the socket (the reader compares
	// them with those it has taken).
	messages uint64
}

// maxResponse bounds the handshake's response: Go's http.ReadResponse,
// which gorilla reads it with, bounds neither a line nor the headers, and
// a header line without end was kept whole in the heap until the connect
// timeout (96 MiB in a test: found by an audit, helper 11).
const maxResponse = 64 << 10

func newFrameMeter(c net.Conn, cfg Config) *frameMeter {
	now := time.Now()
	return &frameMeter{Conn: c, frameRate: cfg.FloodFrameRate, byteRate: cfg.FloodByteRate,
		frames: newBucket(float64(cfg.FloodFrameRate), float64(cfg.FloodFrameBurst), now),
		bytes:  newBucket(float64(cfg.FloodByteRate), float64(cfg.FloodByteBurst), now)}
}

func (m *frameMeter) Read(b []byte) (int, error) {
	n, err := m.Conn.Read(b)
	if n > 0 && !m.count(b[:n], time.Now()) {
		// The peer's socket is cut off: what was read is dropped.
		if !m.framing {
			return 0, fmt.Errorf("websocket: the handshake's response is over %d KiB", maxResponse>>10)
		}
		return 0, fmt.Errorf("%w: more than %d frames or %.4g MiB per second", errFlood,
			m.frameRate, float64(m.byteRate)/(1<<20))
	}
	return n, err
}

// count meters p, the next bytes the peer sent, and reports whether they
// are within the limits.
func (m *frameMeter) count(p []byte, now time.Time) bool {
	// The response ends at its empty line, \n then \n or \r\n: Go's
	// http.ReadResponse, which gorilla reads it with, takes a bare \n as
	// a line's end, and a peer whose response ended "\n\n" was never
	// metered at all (found by an audit, helper 7).
	for !m.framing && len(p) > 0 {
		if m.response++; m.response > maxResponse {
			return false
		}
		switch c := p[0]; {
		case c == '\n' && m.lineEnd > 0:
			m.framing = true
		case c == '\n':
			m.lineEnd = 1
		case c == '\r' && m.lineEnd == 1:
			m.lineEnd = 2
		default:
			m.lineEnd = 0
		}
		p = p[1:]
	}
	if len(p) == 0 {
		return true
	}
	if !m.bytes.take(float64(len(p)), now) {
		return false
	}
	for len(p) > 0 {
		if m.skip > 0 {
			k := min(uint64(len(p)), m.skip)
			m.skip -= k
			p = p[k:]
			continue
		}
		m.head[m.headLen] = p[0]
		m.headLen++
		p = p[1:]
		size, ok := frameHeader(m.head[:m.headLen])
		if !ok {
			continue // more of the header to come
		}
		if !m.frames.take(1, now) {
			return false
		}
		if op := m.head[0] & 0x0f; op == 1 || op == 2 { // RFC 6455 §5.2: text, binary
			m.messages++
		}
		m.headLen, m.skip = 0, size
	}
	return true
}

// between reports whether the meter stands between frames: the
// handshake's response read, and no part of a frame read that the reader
// has not had whole.
func (m *frameMeter) between() bool { return m.framing && m.headLen == 0 && m.skip == 0 }

// frameHeader reads a WebSocket frame header (RFC 6455 §5.2): the
// payload's length, once h holds the whole header.
func frameHeader(h []byte) (payload uint64, complete bool) {
	if len(h) < 2 {
		return 0, false
	}
	want := 2
	if h[1]&0x80 != 0 {
		want += 4 // a masking key
	}
	switch l := h[1] & 0x7f; l {
	case 126:
		if want += 2; len(h) < want {
			return 0, false
		}
		return uint64(binary.BigEndian.Uint16(h[2:4])), true
	case 127:
		if want += 8; len(h) < want {
			return 0, false
		}
		return binary.BigEndian.Uint64(h[2:10]), true
	default:
		if len(h) < want {
			return 0, false
		}
		return uint64(l), true
	}
}

// meterOf is the socket's frame meter, nil if it has none.
func meterOf(c net.Conn) *frameMeter {
	m, _ := c.(*frameMeter)
	return m
}

// tlsClient makes the TLS connection of a wss:// dial over conn, as
// gorilla/websocket would (its TLS settings, the URL's host as the name
// to verify), so that the frame meter can sit above it.
func tlsClient(ctx context.Context, conn net.Conn, cfg *tls.Config, host string) (*tls.Conn, error) {
	if cfg == nil {
		cfg = &tls.Config{}
	} else {
		cfg = cfg.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return tc, nil
}
