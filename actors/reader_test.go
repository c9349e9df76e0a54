package actors

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unsafe"

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
	return meteredPair(t, nil)
}

// meteredPair is socketPair whose client side meters what it reads with
// cfg's flood limits (as a dialed gateway's socket does), unless cfg is nil.
func meteredPair(t *testing.T, cfg *Config) (client, server *websocket.Conn) {
	t.Helper()
	accepted := make(chan *websocket.Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err == nil {
			accepted <- ws
		}
	}))
	t.Cleanup(srv.Close)
	dialer := *websocket.DefaultDialer
	if cfg != nil {
		dialer.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return newFrameMeter(c, cfg.withDefaults()), nil
		}
	}
	client, _, err := dialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	require.NoError(t, err)
	t.Cleanup(func() { client.Close() })
	server = <-accepted
	t.Cleanup(func() { server.Close() })
	return client, server
}

// delivered is what a reader handed to its actor.
type delivered struct {
	msg  ctc.Message
	err  error
	text *[]byte
}

// runReader runs a reader on client until the test ends; what it delivers
// arrives on the channel.
func runReader(t *testing.T, client *websocket.Conn, in *intake, cfg Config) <-chan delivered {
	t.Helper()
	got := make(chan delivered, 4)
	cfg = cfg.withDefaults()
	r := &reader{ws: client, inbox: semaphore.NewWeighted(int64(cfg.InboxBytes)), intake: in, cfg: cfg, log: zerolog.Nop(),
		deliver: func(msg ctc.Message, err error, cost, _ int64, text *[]byte) bool {
			got <- delivered{msg, err, text}
			return false
		},
		end: func(error) {},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go r.run(ctx, done)
	t.Cleanup(func() { cancel(); client.Close(); <-done })
	return got
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
	// An hour's pong timeout: an intake wait would be long.
	got := runReader(t, client, in, Config{PongTimeout: time.Hour})

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

// A reading's samples are delivered in the buffer the frame was read into,
// which goes with them (no copy of ~200 KB); a reading that encoding/json
// must decode, and any other frame, is delivered as copies and keeps its
// buffer in the reader.
func TestReadingSamplesStayInTheirFrame(t *testing.T) {
	t.Parallel()
	client, peer := socketPair(t)
	got := runReader(t, client, newIntake(1<<30), Config{})
	next := func() delivered {
		t.Helper()
		select {
		case d := <-got:
			require.NoError(t, d.err)
			return d
		case <-time.After(10 * time.Second):
			t.Fatal("nothing delivered")
			return delivered{}
		}
	}
	x := strings.Repeat("0.25,", 20000) + "0.5"
	require.NoError(t, peer.WriteMessage(websocket.TextMessage, []byte(`{"Type":"NOT_DYN_READING","Data":{"Serial":"1","X":"`+x+`","Y":"1","Z":"2"}}`)))
	d := next()
	require.NotNil(t, d.text, "in place")
	reading := d.msg.(*ctc.Reading)
	assert.Equal(t, x, reading.X)
	buf := *d.text
	start := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	at := uintptr(unsafe.Pointer(unsafe.StringData(reading.X)))
	assert.True(t, at >= start && at+uintptr(len(reading.X)) <= start+uintptr(len(buf)), "X is in the delivered buffer")

	require.NoError(t, peer.WriteMessage(websocket.TextMessage, []byte(`{"Type":"NOT_DYN_READING","Data":{"Serial":"1","X":"`+x+`","Y":"\u0031","Z":"2"}}`)))
	d = next()
	assert.Nil(t, d.text, "escaped: encoding/json copies")
	assert.Equal(t, "1", d.msg.(*ctc.Reading).Y)

	require.NoError(t, peer.WriteMessage(websocket.TextMessage, []byte(`{"Type":"NOT_DYN_TEMP","Data":{"Serial":"1","Temperature":21.5}}`)))
	assert.Nil(t, next().text)
}

// Frames on both sides of the small buffer's size arrive whole and
// unchanged. Only a reading (known by its first bytes, whatever its size)
// or a frame that outgrows the small buffer asks the intake and uses a
// large buffer; a small frame never takes a large buffer, even when the
// pool holds nothing else (a reader waiting for the intake holds 64 bytes
// or 32 KiB, not a reading's buffer).
func TestReadFrameBuffers(t *testing.T) {
	t.Parallel()
	client, peer := socketPair(t)
	in := newIntake(1 << 30)
	cfg := Config{}.withDefaults()
	r := &reader{ws: client, intake: in, cfg: cfg, log: zerolog.Nop()}
	filler := func(size int) string {
		b := make([]byte, size)
		for i := range b {
			b[i] = byte('a' + i%26)
		}
		return string(b)
	}
	reading := func(pad int) string {
		return `{"Type":"NOT_DYN_READING","From":"SERV","Target":"UI","Data":{"Serial":"1","X":"` + filler(pad) + `"}}`
	}
	cases := []struct {
		name  string
		msg   string
		large bool
	}{
		{"empty", "", false},
		{"one byte", "x", false},
		{"head size", filler(headSize), false},
		{"head size + 1", filler(headSize + 1), false},
		{"small buffer - 1", filler(smallFrame - 1), false},
		{"small buffer", filler(smallFrame), false},
		{"small buffer + 1", filler(smallFrame + 1), true},
		{"frame reserve", filler(frameReserve), true},
		{"frame reserve + 1", filler(frameReserve + 1), true},
		{"three frame reserves", filler(3 * frameReserve), true},
		{"short reading", reading(10), true},
		{"reading", reading(200 << 10), true},
		{"reading, spaced", " { \"Type\" :\t\"NOT_DYN_READING\" , \"Data\": {\"X\": \"" + filler(100) + "\"}}", true},
		{"reading within the head", `{"Type":"NOT_DYN_READING","Data":{}}`, false},
		{"reading started", `{"Type":"NOT_DYN_READING_STARTED","From":"SERV","Target":"UI","Data":{"Serial":1,"Success":true}}`, false},
		{"reading named late", `{"From":"SERV","Type":"NOT_DYN_READING","Data":{"X":"` + filler(100) + `"}}`, false},
	}
	for _, c := range cases {
		big := make([]byte, 0, frameReserve)
		framePool.Put(&big) // what a burst of readings leaves in the pool
		require.NoError(t, peer.WriteMessage(websocket.TextMessage, []byte(c.msg)))
		kind, data, reserved, err := r.readFrame(t.Context())
		require.NoError(t, err, c.name)
		assert.Equal(t, websocket.TextMessage, kind)
		assert.True(t, c.msg == string(*data), "%s: the frame arrived changed", c.name)
		if c.large {
			assert.GreaterOrEqual(t, cap(*data), frameReserve, "%s: a large buffer", c.name)
			// The intake counts the buffer the frame grew to (at least
			// the first reserve), not the first reserve alone.
			assert.Equal(t, int64(cap(*data)), reserved, "%s: reserved in the intake", c.name)
		} else {
			assert.Equal(t, smallFrame, cap(*data), "%s: a small buffer", c.name)
			assert.Zero(t, reserved, "%s: the intake not asked", c.name)
		}
		assert.Equal(t, reserved, in.held(), c.name)
		in.add(-reserved)
		putFrame(data)
	}
}

// The pong timer waits a whole timeout while the reader is held, and
// after a release as long as the reader was held since the ping went out
// (less what has passed since the pong was due): a short hold adds as
// much, not a whole timeout.
func TestPongWaitAddsWhatTheReaderWasHeld(t *testing.T) {
	t.Parallel()
	const timeout = 2 * time.Second
	h := newHoldClock()
	h.base = h.base.Add(-10 * time.Second) // the reader started 10 s ago
	ping := h.base.Add(time.Second)
	due := ping.Add(timeout)
	assert.Equal(t, time.Duration(0), h.pongWait(due, due, h.heldFor(ping), timeout), "never held")
	mark := h.heldFor(ping)
	r := &reader{held: h}
	r.hold(true)
	assert.Equal(t, timeout, h.pongWait(due.Add(time.Hour), due, mark, timeout), "held")
	// Held since 5 s after the start (after the ping), released now.
	h.v.Store(-int64(5 * time.Second))
	r.hold(false)
	released := h.base.Add(time.Duration(h.v.Load()))
	held := released.Sub(h.base.Add(5 * time.Second))
	require.Greater(t, held, 4*time.Second)
	assert.Equal(t, held, time.Duration(h.heldFor(released)), "the hold counted")
	assert.Equal(t, held-500*time.Millisecond, h.pongWait(due.Add(500*time.Millisecond), due, mark, timeout),
		"due plus the hold, less the half second since due")
	assert.LessOrEqual(t, h.pongWait(due.Add(held), due, mark, timeout), time.Duration(0), "the hold's time has passed")
	(&reader{}).hold(true) // no clock: nothing to tell

	// Holds of microseconds, one after another (a gateway that pushes a
	// small reading more often than the pong timeout): the pong is due
	// all the same.
	h2 := newHoldClock()
	r2 := &reader{held: h2}
	start := time.Now()
	mark2 := h2.heldFor(start)
	for range 100 {
		r2.hold(true)
		r2.hold(false)
	}
	tiny := time.Duration(h2.heldFor(time.Now()) - mark2)
	assert.Less(t, tiny, 100*time.Millisecond)
	assert.LessOrEqual(t, h2.pongWait(start.Add(timeout+tiny), start.Add(timeout), mark2, timeout), time.Duration(0),
		"short holds do not grant a whole timeout each")
}

// metered is a reader run with an inbox of its own that nothing gives
// back unless the test does (an actor that does not keep up): the cost of
// each frame delivered, and the reader's end, arrive on the channels.
type metered struct {
	inbox *semaphore.Weighted
	costs chan int64
	ended chan error
}

func runMetered(t *testing.T, client *websocket.Conn, cfg Config) *metered {
	t.Helper()
	cfg = cfg.withDefaults()
	m := &metered{inbox: semaphore.NewWeighted(int64(cfg.InboxBytes)), costs: make(chan int64, 64), ended: make(chan error, 1)}
	r := &reader{ws: client, inbox: m.inbox, intake: newIntake(1 << 30), cfg: cfg, log: zerolog.Nop(),
		deliver: func(_ ctc.Message, _ error, cost, _ int64, _ *[]byte) bool {
			m.costs <- cost
			return false
		},
		end: func(err error) {
			select {
			case m.ended <- err:
			default:
			}
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go r.run(ctx, done)
	t.Cleanup(func() { cancel(); client.Close(); <-done })
	return m
}

// cost waits for the next frame's delivery and returns its inbox cost.
func (m *metered) cost(t *testing.T) int64 {
	t.Helper()
	select {
	case c := <-m.costs:
		return c
	case err := <-m.ended:
		t.Fatalf("the reader ended instead: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no frame delivered")
	}
	return 0
}

// frameOf is an unknown notification of exactly size bytes.
func frameOf(t *testing.T, size int) []byte {
	t.Helper()
	const head, tail = `{"Type":"NOT_SIM_FLOOD","From":"SERV","Target":"UI","Data":{"Pad":"`, `"}}`
	require.Greater(t, size, len(head)+len(tail))
	return []byte(head + strings.Repeat("x", size-len(head)-len(tail)) + tail)
}

// A peer that sends more bytes than the byte bucket holds is cut off with
// errFlood, even in a few frames far under the frame limits: the bytes
// are metered on their own. What fits in the burst is delivered.
func TestReaderCutsOffAByteFlood(t *testing.T) {
	t.Parallel()
	cfg := Config{PongTimeout: time.Hour,
		FloodFrameRate: 1 << 20, FloodFrameBurst: 1 << 30, // the frame count alone never trips
		FloodByteRate: 1, FloodByteBurst: 64 << 10}
	client, peer := meteredPair(t, &cfg)
	m := runMetered(t, client, cfg)
	frame := frameOf(t, 16000) // small frames: the reading intake is not asked
	for i := range 4 {         // 64,000 bytes: within the burst of 65,536
		require.NoError(t, peer.WriteMessage(websocket.TextMessage, frame))
		assert.EqualValues(t, len(frame)+4<<10, m.cost(t), "frame %d delivered", i+1)
	}
	assert.Empty(t, m.ended, "not cut off within the burst")
	require.NoError(t, peer.WriteMessage(websocket.TextMessage, frame)) // 80,000 bytes: past it
	select {
	case err := <-m.ended:
		require.ErrorIs(t, err, errFlood)
		assert.Contains(t, err.Error(), "flooding: more than")
	case <-m.costs:
		t.Fatal("the fifth frame, past the byte burst, was delivered")
	case <-time.After(10 * time.Second):
		t.Fatal("the byte flood was not cut off")
	}
	assert.Empty(t, m.costs, "the frame past the limit is not delivered")
}

// Every frame waiting for the actor costs its bytes plus 4 KiB of the
// inbox (README: "a frame counts its bytes plus 4 KiB"), so a flood of
// tiny frames fills it as surely as large ones: with room for eight tiny
// frames' costs, the ninth waits until the actor has handled one. A
// frame larger than the whole inbox costs all of it and passes alone.
func TestInboxChargesEveryFrameItsOverhead(t *testing.T) {
	t.Parallel()
	client, peer := socketPair(t)
	tiny := frameOf(t, 80)
	perFrame := int64(len(tiny) + 4<<10)
	capacity := 8 * perFrame
	m := runMetered(t, client, Config{PongTimeout: time.Hour, InboxBytes: int(capacity)})
	for range 9 {
		require.NoError(t, peer.WriteMessage(websocket.TextMessage, tiny))
	}
	for i := range 8 {
		assert.Equal(t, perFrame, m.cost(t), "frame %d's cost", i+1)
	}
	// 8 × 80 bytes of text, and not one more byte fits: the reader is
	// waiting for room, or is about to.
	require.False(t, m.inbox.TryAcquire(1), "eight tiny frames fill the inbox")
	m.inbox.Release(perFrame) // the actor handled one
	assert.Equal(t, perFrame, m.cost(t), "the ninth, once one was handled")
	m.inbox.Release(8 * perFrame)

	big := frameOf(t, int(capacity)+1000)
	require.NoError(t, peer.WriteMessage(websocket.TextMessage, big))
	assert.Equal(t, capacity, m.cost(t), "a frame larger than the inbox takes all of it")
	m.inbox.Release(capacity)
}
