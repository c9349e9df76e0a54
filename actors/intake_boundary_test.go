package actors

// (Found by an audit, helper 13, whose test this is.) README ("A burst of readings waits in the sockets"):
// "A large frame counts 256 KiB when let in and then what its buffer grows
// to, waiting again at each doubling". readFrame doubles the buffer as soon
// as it is full, before it knows whether the message goes on: a message
// that is exactly a power of two of frameReserve (256 KiB, 512 KiB, ...,
// 4 MiB = readLimit, the largest frame accepted) is charged and allocated
// twice its size. A 4 MiB frame then counts 8 MiB, the whole intake (every
// other gateway's reading waits behind it), and it must first wait until
// the intake holds nothing but itself (4 MiB held + 4 MiB more <= 8 MiB).
// Would catch: the growth loop not peeking for the message's end (as the
// small buffer does with its one-byte read) before doubling.

import (
	"testing"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExactSizeFrameIsNotChargedTwice(t *testing.T) {
	t.Parallel()
	client, peer := socketPair(t)
	in := newIntake(1 << 30)
	cfg := Config{}.withDefaults()
	r := &reader{ws: client, intake: in, cfg: cfg, log: zerolog.Nop()}
	for _, size := range []int{frameReserve, 2 * frameReserve, readLimit} {
		msg := make([]byte, size)
		copy(msg, `{"Type":"NOT_DYN_READING","Data":{"X":"`)
		for i := 40; i < size; i++ {
			msg[i] = '0'
		}
		require.NoError(t, peer.WriteMessage(websocket.TextMessage, msg))
		_, data, reserved, err := r.readFrame(t.Context())
		require.NoError(t, err)
		require.Equal(t, size, len(*data))
		// Charged its buffer, which is the frame's size, or a pooled one
		// up to poolFrameLimit (tests in parallel leave theirs), never
		// twice a frame larger than that.
		assert.Equal(t, int64(cap(*data)), reserved, "a %d-byte frame is charged its buffer", size)
		assert.LessOrEqual(t, cap(*data), max(size, poolFrameLimit), "a %d-byte frame is read into a %d-byte buffer", size, cap(*data))
		in.add(-reserved)
		putFrame(data)
	}
	assert.Zero(t, in.held())
}
