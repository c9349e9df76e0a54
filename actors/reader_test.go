package actors

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/semaphore"

	"github.com/ctcgw/gatewayd/ctc"
)

// socketPair returns both ends of a real WebSocket connection.
func socketPair(t *testing.T) (client, server *websocket.Conn) {
	t.Helper()
	accepted := make(chan *websocket.Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err == nil {
			accepted <- ws
		}
	}))
	t.Cleanup(srv.Close)
	client, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	require.NoError(t, err)
	t.Cleanup(func() { client.Close() })
	server = <-accepted
	t.Cleanup(func() { server.Close() })
	return client, server
}

// While the reading intake is full, a frame that is not a reading (small)
// is still read and delivered at once; only a large one waits for room.
// A burst of readings from other gateways never holds up a login answer
// or a notification.
func TestFullIntakeHoldsOnlyLargeFrames(t *testing.T) {
	t.Parallel()
	client, peer := socketPair(t)
	in := newIntake(1 << 20)
	in.add(1 << 20) // full: readings of other gateways on their way
	type delivered struct {
		msg ctc.Message
		err error
	}
	got := make(chan delivered, 4)
	cfg := Config{PongTimeout: time.Hour}.withDefaults() // an intake wait would be long
	r := &reader{ws: client, inbox: semaphore.NewWeighted(int64(cfg.InboxBytes)), intake: in, cfg: cfg, log: zerolog.Nop(),
		deliver: func(msg ctc.Message, err error, cost, _ int64) bool { got <- delivered{msg, err}; return false },
		end:     func(error) {},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go r.run(ctx, done)
	t.Cleanup(func() { cancel(); client.Close(); <-done })

	require.NoError(t, peer.WriteMessage(websocket.TextMessage, []byte(`{"Type":"NOT_DYN_TEMP","Data":{"Serial":"1","Temperature":21.5}}`)))
	select {
	case d := <-got:
		require.NoError(t, d.err)
		assert.IsType(t, &ctc.Temperature{}, d.msg)
	case <-time.After(10 * time.Second):
		t.Fatal("a small frame waited for the full intake")
	}

	large := `{"Type":"NOT_DYN_TEMP","Data":{"Serial":"2","Temperature":22.5,"Pad":"` + strings.Repeat("x", 2*smallFrame) + `"}}`
	require.NoError(t, peer.WriteMessage(websocket.TextMessage, []byte(large)))
	require.Eventually(t, func() bool { return in.queued() == 1 }, 10*time.Second, time.Millisecond, "a large frame waits for room")
	assert.Empty(t, got)
	in.add(-(1 << 20)) // the other readings are stored
	select {
	case <-got: // delivered (its padding may make it malformed; that is the actor's business)
	case <-time.After(10 * time.Second):
		t.Fatal("the large frame was not let in when room was made")
	}
}

// Frames on both sides of the small buffer's size arrive whole and
// unchanged, and only those that outgrow it ask the intake and use a large
// buffer; a small frame never takes a large buffer, even when the pool
// holds nothing else (a reader waiting for the intake holds 32 KiB, not a
// reading's buffer).
func TestReadFrameBuffers(t *testing.T) {
	t.Parallel()
	client, peer := socketPair(t)
	in := newIntake(1 << 30)
	cfg := Config{}.withDefaults()
	r := &reader{ws: client, intake: in, cfg: cfg, log: zerolog.Nop()}
	for _, size := range []int{0, 1, smallFrame - 1, smallFrame, smallFrame + 1, frameReserve, frameReserve + 1, 3 * frameReserve} {
		big := make([]byte, 0, frameReserve)
		framePool.Put(&big) // what a burst of readings leaves in the pool
		msg := make([]byte, size)
		for i := range msg {
			msg[i] = byte('a' + i%26)
		}
		require.NoError(t, peer.WriteMessage(websocket.TextMessage, msg))
		kind, data, reserved, err := r.readFrame(t.Context())
		require.NoError(t, err, "size %d", size)
		assert.Equal(t, websocket.TextMessage, kind)
		assert.True(t, bytes.Equal(msg, *data), "size %d: the frame arrived changed", size)
		if size <= smallFrame {
			assert.Equal(t, smallFrame, cap(*data), "size %d: a small buffer", size)
			assert.Zero(t, reserved, "size %d: the intake not asked", size)
		} else {
			assert.GreaterOrEqual(t, cap(*data), frameReserve, "size %d: a large buffer", size)
			assert.Equal(t, int64(frameReserve), reserved, "size %d: reserved in the intake", size)
		}
		assert.Equal(t, reserved, in.held(), "size %d", size)
		in.add(-reserved)
		putFrame(data)
	}
}
