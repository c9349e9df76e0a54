package actors

import (
	"context"
	"net"
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

	"github.com/ctcgw/gatewayd/internal/netutil"
)

// probedPair is a WebSocket pair whose client side is layered as a dialed
// gateway's: the frame meter over the quiet probe over the socket.
func probedPair(t *testing.T) (client, server *websocket.Conn) {
	t.Helper()
	accepted := make(chan *websocket.Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil); err == nil {
			accepted <- ws
		}
	}))
	t.Cleanup(srv.Close)
	dialer := *websocket.DefaultDialer
	dialer.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return newFrameMeter(&quietProbe{Conn: c}, Config{}.withDefaults()), nil
	}
	client, _, err := dialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	require.NoError(t, err)
	t.Cleanup(func() { client.Close() })
	server = <-accepted
	t.Cleanup(func() { server.Close() })
	return client, server
}

// The reader tells whether more of the gateway's data is already here when
// it comes back for a frame: in the kernel's buffer, or read ahead into
// gorilla's (counted by the meter), and not when the socket is drained.
// Told by time instead (a frame begun within 5 ms of the last handover),
// a reading queued behind a held one failed when the reader came back
// late on a loaded box.
func TestReaderSeesWhatIsQueuedBehind(t *testing.T) {
	t.Parallel()
	client, peer := probedPair(t)
	cfg := Config{}.withDefaults()
	r := &reader{ws: client, inbox: semaphore.NewWeighted(int64(cfg.InboxBytes)), intake: newIntake(1 << 30), cfg: cfg, log: zerolog.Nop()}
	ctx := context.Background()
	read := func(want string) {
		t.Helper()
		_, data, _, err := r.readFrame(ctx)
		require.NoError(t, err)
		require.Equal(t, want, string(*data))
		putFrame(data)
	}

	require.NoError(t, peer.WriteMessage(websocket.TextMessage, []byte(`"a"`)))
	read(`"a"`)
	assert.False(t, r.nextQueued(), "nothing sent after a")

	// Both arrive before the reader comes back: b's read takes c into
	// gorilla's buffer too, so after b the kernel holds nothing.
	require.NoError(t, peer.WriteMessage(websocket.TextMessage, []byte(`"b"`)))
	require.NoError(t, peer.WriteMessage(websocket.TextMessage, []byte(`"c"`)))
	require.Eventually(t, r.nextQueued, 10*time.Second, time.Millisecond, "b in the kernel's buffer")
	read(`"b"`)
	assert.True(t, r.nextQueued(), "c read ahead")
	read(`"c"`)
	assert.False(t, r.nextQueued(), "drained after c")

	// Half of a frame is more of the gateway's data too.
	raw := probeOf(client).Conn
	_, err := peer.UnderlyingConn().Write([]byte{0x81})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return netutil.Pending(raw) }, 10*time.Second, time.Millisecond)
	assert.True(t, r.nextQueued(), "a frame's first byte")
}

// A handed-over frame's run goes on until the reader finds nothing queued
// behind it: a frame taken in hand meanwhile, however late, belongs to it;
// after the socket was drained, one begun later than chainGap starts a
// run of its own.
func TestHoldClockRunEndsWhenDrained(t *testing.T) {
	t.Parallel()
	h := newHoldClock()
	_, held := h.inHandSince()
	require.False(t, held)

	h.setInHand(true)
	start, held := h.inHandSince()
	require.True(t, held)
	h.setInHand(false)
	since, held := h.inHandSince()
	assert.True(t, held, "handed over, not yet looked behind")
	assert.Equal(t, start, since)

	h.handedAt -= int64(time.Second) // the reader came back a second later: it was queued all the same
	h.setInHand(true)
	since, held = h.inHandSince()
	assert.True(t, held)
	assert.Equal(t, start, since, "queued behind: the same run")

	h.setInHand(false)
	h.drained()
	_, held = h.inHandSince()
	assert.False(t, held, "drained: no run")
	h.handedAt -= int64(chainGap) + 1
	h.setInHand(true)
	since, held = h.inHandSince()
	assert.True(t, held)
	assert.True(t, since.After(start), "a run of its own")
}
