package actors_test

// A frame that decodes to three times its size. (Found by an audit,
// helper 10, whose test this is.)
//
// README ("What a hostile peer can and cannot do"): "decoded frames
// waiting for its actor are bounded at 1 MiB …, so a flood costs bounded
// memory (a frame decodes to about its own size …)". gorilla/websocket
// does not check that a text frame is UTF-8, and encoding/json turns each
// invalid byte of a string into U+FFFD, three bytes: a NOT_DYN_TEMP whose
// Serial is 4 MiB of 0xFF decodes to a 12 MiB string, and its unquoting
// allocates ~44 MiB on the way (a buffer grown by doubling), where the
// same frame of 'a's allocates 8 MiB and keeps 4 MiB. One gateway sending
// such frames within the flood limits (4 MiB every 600 ms, after a burst
// of 6) costs the heap far more than a frame in hand and its inbox: peak
// heap in use +64–81 MiB over 4 runs with -race (+81 without), against
// +25 MiB for the same frames with 'a' for 0xFF, and 1.5× the CPU.
//
// What it would catch: strings decoded from a gateway's frame growing
// past the frame's size (e.g. fixed by refusing a text frame that is not
// valid UTF-8, as RFC 6455 §8.1 asks of an endpoint, or by decoding the
// Text fields without replacing invalid bytes).

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/ctcgw/gatewayd/internal/testutil"
)

func invalidUTF8TempFrame(size int) []byte {
	f := append([]byte(`{"Type":"NOT_DYN_TEMP","From":"SERV","Target":"UI","Data":{"Temp":"21.5","Serial":"`), bytes.Repeat([]byte{0xFF}, size-100)...)
	return append(f, `"}}`...)
}

func TestInvalidUTF8FramesOfOneGatewayAreBounded(t *testing.T) {
	if testutil.OwnProcess(t) {
		return
	}
	r := runDecodedFlood(t, invalidUTF8TempFrame(hostileFrameSize), 6, 10)
	// Frames of 'a's of the same size, decoded, grow it ~27 MiB; these
	// grew it 64–81 MiB (each invalid byte a 3-byte U+FFFD) and, dropped
	// before they are decoded, ~9 MiB.
	assert.Less(t, r.peak-min(r.peak, r.baseline), uint64(32<<20),
		"one gateway's NOT_DYN_TEMP frames (4 MiB of invalid UTF-8 each, within the flood limits) grew the heap by %d MiB", (r.peak-r.baseline)>>20)
}
