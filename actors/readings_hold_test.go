package actors_test

// (Found by an audit, helper 10, whose tests these are.) The reader's hold (holdClock) since e854840 lasts
// from admitLarge until the large frame is handed to the actor: that now
// includes reading the rest of the frame off the network, which no
// deadline bounds. The pong timer waits for as long as the reader is held
// (pongWait: "all of timeout while the reader is held").

import (
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// A gateway that dies in the middle of sending a reading (its frame's
// header and first bytes arrive, the rest never does; it answers no ping)
// is never found dead: API.md §2 GATEWAY_PONG_TIMEOUT "no pong within
// this: the connection is dead, reconnect". Before e854840 the hold ended
// once the intake let the frame in, and the pong timer failed the
// connection; now the reader counts as held while it waits for the rest
// of the frame, for ever, and the pong timer re-arms for ever: the
// gateway stays AUTHENTICATED with a dead socket.
func TestPeerDeadMidReadingFrameFailsOnPongTimeout(t *testing.T) {
	cfg := actorstest.FastConfig()
	cfg.PingInterval, cfg.PongTimeout = 200*time.Millisecond, time.Second
	h := newHarness(t, cfg)
	p := newRawPeer(t, "127.0.0.1:0", func(p *rawPeer, raw net.Conn) {
		head := []byte(`{"Type":"NOT_DYN_READING","From":"SERV","Target":"UI","Data":{"ID":1,"Serial":"20001","X":"` +
			strings.Repeat("1,", 40))
		hdr := []byte{0x81, 126, 0, 0}
		binary.BigEndian.PutUint16(hdr[2:], 60000) // the frame says 60000 bytes; 100-odd come
		_ = p.write(raw, append(hdr, head...))
		<-p.done
	})
	p.answer = false // a dead peer answers no ping
	g := addRawGateway(t, h, "deadmidframe", p.url)
	h.WaitState(g.ID, gatewayd.StateAuthenticated, 10*time.Second)

	// PONG_TIMEOUT is 1 s: allow ten times that.
	var st gatewayd.Status
	ok := testutil.Poll(func() bool { st = h.Status(g.ID); return st.State != gatewayd.StateAuthenticated }, 10*time.Second)
	require.True(t, ok, "the gateway stopped answering pings mid-frame 10 s ago and is still %s (last_error %v)", st.State, st.LastError)
	require.NotNil(t, st.LastError)
	// Either bound finds it dead first: the pong timer, or the reader's
	// wait for the rest of a large message (errStalled), which is also
	// the pong timeout.
	require.Regexp(t, `no pong within 1s|message stalled: no data for 1s`, *st.LastError)
}

// API.md §8: NOT_DYN_READING "within READING_TIMEOUT" of the start; the
// reading timer waits for a frame the intake held since before the
// deadline (helpers 2 and 8), but not for the next one, sent as early but
// queued behind it in the socket. Here the gateway pushes a reading of
// another sensor 2.5 s after the start and the asked reading's samples
// 3 s after it (READING_TIMEOUT 4 s), while a burst of other gateways'
// readings fills the intake: the pushed frame is held until 4.5 s, the
// samples' frame is read (and held) only then, and the timer, seeing a
// hold begun after the deadline, FAILS the reading "no NOT_DYN_READING
// within 4s" although its samples were on the wire a second before it.
// They are then stored as a GATEWAY reading.
func TestSamplesQueuedBehindAHeldFrameDoNotFailTheirReading(t *testing.T) {
	cfg := actorstest.FastConfig()
	cfg.ReadingStartTimeout, cfg.ReadingTimeout = 10*time.Second, 4*time.Second
	e := scriptHarness(t, newHarness(t, cfg))

	a := e.ask(t)
	require.EqualValues(t, scriptSerial, e.p.take())
	e.p.answerTake()
	e.p.started(true)
	t0 := time.Now() // gatewayd's deadline is a little after t0 + 4 s
	// (No wait for A's RUNNING row: on a loaded box the writer's batch
	// came so late that the frames below went out after the deadline.)

	// A burst of other gateways' readings on their way to the database.
	drain := actors.FillIntake(e.h.Runtime, 1<<30)
	defer drain()

	time.Sleep(time.Until(t0.Add(2500 * time.Millisecond)))
	axis := strings.TrimSuffix(strings.Repeat("9,", 8), ",")
	e.p.notify(`{"Type":"NOT_DYN_READING","From":"SERV","Target":"UI","Data":{"ID":9,"Serial":"20002","Time":"2026-12-06 10:00:00","X":"` +
		axis + `","Y":"` + axis + `","Z":"` + axis + `"}}`) // pushed, another sensor's
	time.Sleep(time.Until(t0.Add(3 * time.Second)))
	e.p.samples(1) // A's, 3 s after its start

	got := e.final(t, a)
	require.Equal(t, gatewayd.ReadingComplete, got.Status, "A's samples were sent 1 s before its deadline; error %q", errText(got))
	assert.Equal(t, 1.0, xMean(t, got))
}

// (Found by an audit, helper 9, whose test this is.) API.md §1 GATEWAY_PONG_TIMEOUT: "no pong within this: the connection is
// dead, reconnect". A gateway whose WebSocket stack stopped answering
// pings (it no longer reads what gatewayd sends: commands and pings go
// unanswered) but still pushes a small reading of its own every 300 ms is
// never failed: each reading passes through admitLarge, which marks the
// reader held for a few microseconds (the intake is empty), and pongWait
// then grants a whole new PONG_TIMEOUT counted from that release. The
// pong was never behind the frame (the hold lasted microseconds), yet the
// timer re-arms for ever and the gateway stays AUTHENTICATED.
func TestPushedReadingsDoNotStretchThePongTimerForever(t *testing.T) {
	cfg := actorstest.FastConfig()
	cfg.PingInterval, cfg.PongTimeout = 200*time.Millisecond, time.Second
	h := newHarness(t, cfg)
	p := newRawPeer(t, "127.0.0.1:0", func(p *rawPeer, raw net.Conn) {
		reading := unmaskedFrame(true, 1, []byte(`{"Type":"NOT_DYN_READING","From":"SERV","Target":"UI","Data":{"ID":1,"Serial":"20001","Time":"2026-12-06 10:00:00","X":"1,2","Y":"1,2","Z":"1,2"}}`))
		tick := time.NewTicker(300 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-tick.C:
				if p.write(raw, reading) != nil {
					return
				}
			}
		}
	})
	p.answer = false // its ping answers stopped
	g := addRawGateway(t, h, "pushnopong", p.url)
	h.WaitState(g.ID, gatewayd.StateAuthenticated, 10*time.Second)

	// PONG_TIMEOUT is 1 s and a ping goes out every 200 ms: allow eight times that.
	var st gatewayd.Status
	ok := testutil.Poll(func() bool { st = h.Status(g.ID); return st.State != gatewayd.StateAuthenticated }, 8*time.Second)
	require.True(t, ok, "no pong for 8 s, yet the gateway is still %s (last_error %v, pongs answered: none)", st.State, st.LastError)
	require.NotNil(t, st.LastError)
	// Either bound finds it dead first: the pong timer, or the reader's
	// wait for the rest of a large message (errStalled), which is also
	// the pong timeout.
	require.Regexp(t, `no pong within 1s|message stalled: no data for 1s`, *st.LastError)
}
