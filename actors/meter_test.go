package actors

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// wsFrame is one frame as a peer writes it: fin set, opcode, a masking
// key if masked (the payload is then sent as it is: the meter never looks
// at it), and the length in the shortest form RFC 6455 allows.
func wsFrame(op byte, payload []byte, masked bool) []byte {
	b := []byte{0x80 | op}
	m := byte(0)
	if masked {
		m = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		b = append(b, m|byte(n))
	case n <= 0xffff:
		b = append(b, m|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, m|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if masked {
		b = append(b, 1, 2, 3, 4)
	}
	return append(b, payload...)
}

// The meter counts every frame, whatever its size and however the bytes
// are cut into reads, and only after the handshake's response: a split
// header, the 16- and 64-bit lengths, a masking key, empty control frames
// and fragments, and a response whose blank line is cut between reads.
func TestFrameMeterCountsEveryFrame(t *testing.T) {
	response := []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
	frames := [][]byte{
		wsFrame(0x1, []byte(`{"Type":"RTN_LOGIN"}`), false),
		wsFrame(0x9, nil, false),                              // ping
		wsFrame(0xA, nil, false),                              // pong
		wsFrame(0x0, nil, false),                              // an empty fragment
		wsFrame(0x1, bytes.Repeat([]byte("x"), 300), false),   // 16-bit length
		wsFrame(0x1, bytes.Repeat([]byte("y"), 70000), false), // 64-bit length
		wsFrame(0x1, []byte("masked"), true),
	}
	for _, response := range [][]byte{response, []byte("HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\n\n")} {
		meterCountsEveryFrame(t, response, frames)
	}
}

func meterCountsEveryFrame(t *testing.T, response []byte, frames [][]byte) {
	stream := append([]byte(nil), response...)
	for _, f := range frames {
		stream = append(stream, f...)
	}
	for _, cut := range []int{1, 2, 3, 7, 64, 4096, len(stream)} {
		m := newFrameMeter(nil, Config{FloodFrameRate: 1, FloodFrameBurst: 1000, FloodByteRate: 1, FloodByteBurst: 1 << 20})
		now := m.frames.last // no time passes: nothing refills
		for p := stream; len(p) > 0; {
			k := min(cut, len(p))
			require.True(t, m.count(p[:k], now), "reads of %d bytes: within the limits", cut)
			p = p[k:]
		}
		assert.InDelta(t, 1000-float64(len(frames)), m.frames.level, 1e-9, "reads of %d bytes: every frame counted once", cut)
		assert.InDelta(t, float64(1<<20-(len(stream)-len(response))), m.bytes.level, 1e-9, "reads of %d bytes: the frames' bytes, not the response's", cut)
		assert.Zero(t, m.headLen, "between frames")
		assert.Zero(t, m.skip, "between frames")
	}
}

// Past the frame burst, or the byte burst, a read fails with errFlood.
func TestFrameMeterRefusesPastTheLimits(t *testing.T) {
	m := newFrameMeter(nil, Config{FloodFrameRate: 1, FloodFrameBurst: 3, FloodByteRate: 1, FloodByteBurst: 1 << 20})
	now := m.frames.last // no time passes: nothing refills
	require.True(t, m.count([]byte("HTTP/1.1 101 OK\r\n\r\n"), now))
	empty := wsFrame(0x0, nil, false)
	assert.True(t, m.count(bytes.Repeat(empty, 3), now), "three frames: the burst")
	assert.False(t, m.count(empty, now), "a fourth")

	m = newFrameMeter(nil, Config{FloodFrameRate: 1, FloodFrameBurst: 1000, FloodByteRate: 1, FloodByteBurst: 100})
	now = m.bytes.last
	require.True(t, m.count([]byte("HTTP/1.1 101 OK\r\n\r\n"), now))
	assert.True(t, m.count(wsFrame(0x1, make([]byte, 98), false), now), "100 bytes: the burst")
	assert.False(t, m.count(wsFrame(0x9, nil, false), now), "two more")
}
