package actors_test

// Hostile peers that keep a large message open within the letter of the
// open-message bound. (Found by an audit, helper 1, whose tests these are.)

import (
	"context"
	"encoding/binary"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors"
	"github.com/ctcgw/gatewayd/actors/actorstest"
)

// openHeader is the header of an unmasked (server) text frame, not
// final, of n bytes.
func openHeader(n int) []byte {
	h := []byte{0x01, 127}
	return binary.BigEndian.AppendUint64(h, uint64(n))
}

// tricklePeer logs in (rawPeer) and, on every connection, begins a
// reading of first bytes at once (enough for the intake to count 4 MiB
// for it), then sends one more byte of it, as a continuation frame of
// its own, every every: data keeps coming, a byte at a time, and the
// message never ends. It answers pings throughout.
func tricklePeer(t *testing.T, first int, every time.Duration, opened *atomic.Int64) *rawPeer {
	return newRawPeer(t, "127.0.0.1:0", func(p *rawPeer, raw net.Conn) {
		head := `{"Type":"NOT_DYN_READING","Data":{"X":"`
		frame := append(openHeader(first), head...)
		frame = append(frame, strings.Repeat("0", first-len(head))...)
		if p.write(raw, frame) != nil {
			return
		}
		opened.Add(1)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-tick.C:
				if p.write(raw, []byte{0x00, 1, '0'}) != nil {
					return
				}
			}
		}
	})
}

// README ("A burst of readings waits in the sockets"): "Once let in, a
// large message must keep coming: no data for GATEWAY_PONG_TIMEOUT ...,
// or not whole within READING_TIMEOUT ..., ends the connection ... and
// what it held goes back at once (a gateway that kept a large message
// open held it until its connection ended, and two such gateways filled
// the 8 MiB)"; and "A gateway ... can make *its own* connection fail, and
// nothing more".
//
// Two gateways each send 3 MiB of a reading (the intake counts 4 MiB for
// each: it is full) and then one byte a second, within the pong timeout:
// the message keeps "coming", so only the READING_TIMEOUT bound ends it.
// That is at least half READING_TIMEOUT, the intake's wait: every other
// gateway's reading meanwhile waits the whole intake wait, as it did
// before the bound (the very harm the bound was for). And each time it is
// cut, the peer logs in again (its backoff was reset: the connection was
// healthy for a ping interval) and holds the intake again.
//
// Would catch: a bound that lets a message that trickles hold the intake
// for as long as a stalled one held it before the fix.
func TestTricklingOpenMessagesDoNotHoldTheIntake(t *testing.T) {
	cfg := actorstest.FastConfig()
	cfg.PongTimeout = 3 * time.Second
	cfg.ReadingTimeout = 40 * time.Second // an intake wait of 20 s
	h := newHarness(t, cfg)
	honest, sensor := honestSensor(t, h)

	var opened atomic.Int64
	peers := []*rawPeer{tricklePeer(t, 3<<20, time.Second, &opened), tricklePeer(t, 3<<20, time.Second, &opened)}
	for i, p := range peers {
		addRawGateway(t, h, "trickle"+string(rune('a'+i)), p.url)
	}
	eventually(t, func() bool { return actors.IntakeHeld(h.Runtime) >= 7<<20 }, 30*time.Second, "the open messages fill the intake")
	t.Logf("intake holds %d bytes", actors.IntakeHeld(h.Runtime))

	r, s, err := h.Store.CreateReading(context.Background(), uuid.New(), sensor.ID, gatewayd.TriggerManual)
	require.NoError(t, err)
	asked := time.Now()
	require.NoError(t, h.Runtime.TakeReading(context.Background(), r, s.Serial, 25600))
	var got gatewayd.Reading
	eventually(t, func() bool {
		got, err = h.Store.GetReading(context.Background(), r.ID)
		return err == nil && got.Status.Done()
	}, 60*time.Second, "the honest reading is final")
	took := time.Since(asked)
	t.Logf("honest reading %s after %s; intake %d bytes; open messages begun %d", got.Status, took.Round(time.Millisecond),
		actors.IntakeHeld(h.Runtime), opened.Load())
	assert.Equal(t, gatewayd.ReadingComplete, got.Status, errText(got))
	assert.Equal(t, gatewayd.StateAuthenticated, h.Status(honest.ID).State)
	// A stalled message is cut after the pong timeout (3 s), and the
	// honest reading, first in line, is then let in: well within 10 s.
	assert.Less(t, took, 10*time.Second,
		"a gateway's reading waited the whole intake wait (20 s) behind two gateways trickling a byte a second into open messages")
}

// README, as above: the bound ends one open message ("what it held goes
// back at once"), and "A gateway ... can make *its own* connection fail,
// and nothing more". A peer cut off for an open message logs in again and
// opens the next: its backoff was reset, as the connection it lost had
// stayed up a ping interval (here 1 s, as the 30 s default is shorter
// than the 60 s a trickled message may take), so it is back within about
// BACKOFF_INITIAL. Two such gateways keep the intake full nearly all the
// time, for as long as they like, and every other gateway's readings,
// one after another, each wait for the intake.
//
// Would catch: a bound that only ends one message, while the gateway
// holds the intake again at once, connection after connection.
func TestOpenMessagesRenewedAtEveryConnectionDoNotKeepTheIntakeFull(t *testing.T) {
	cfg := actorstest.FastConfig()
	cfg.PongTimeout = 2 * time.Second
	cfg.PingInterval = time.Second
	cfg.ReadingTimeout = 6 * time.Second // an intake wait of 3 s
	cfg.BackoffInitial, cfg.BackoffMax = time.Second, 30*time.Second
	h := newHarness(t, cfg)
	_, sensor := honestSensor(t, h)

	var opened atomic.Int64
	for i := range 2 {
		p := tricklePeer(t, 3<<20, 500*time.Millisecond, &opened)
		addRawGateway(t, h, "renew"+string(rune('a'+i)), p.url)
	}
	eventually(t, func() bool { return actors.IntakeHeld(h.Runtime) >= 7<<20 }, 30*time.Second, "the open messages fill the intake")

	// Sample the intake while an honest gateway takes readings one after
	// another.
	stop := make(chan struct{})
	sampled := make(chan [2]int, 1)
	go func() {
		full, all := 0, 0
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				sampled <- [2]int{full, all}
				return
			case <-tick.C:
				all++
				if actors.IntakeHeld(h.Runtime) >= 7<<20 {
					full++
				}
			}
		}
	}()
	start := time.Now()
	var waits []time.Duration
	for time.Since(start) < 25*time.Second {
		r, s, err := h.Store.CreateReading(context.Background(), uuid.New(), sensor.ID, gatewayd.TriggerManual)
		require.NoError(t, err)
		asked := time.Now()
		require.NoError(t, h.Runtime.TakeReading(context.Background(), r, s.Serial, 25600))
		var got gatewayd.Reading
		eventually(t, func() bool {
			got, err = h.Store.GetReading(context.Background(), r.ID)
			return err == nil && got.Status.Done()
		}, 30*time.Second, "honest reading final")
		require.Equal(t, gatewayd.ReadingComplete, got.Status, errText(got))
		waits = append(waits, time.Since(asked).Round(time.Millisecond))
	}
	close(stop)
	s := <-sampled
	frac := float64(s[0]) / float64(s[1])
	t.Logf("over %s: open messages begun %d, intake full %.0f%% of the time; honest readings took %v",
		time.Since(start).Round(time.Second), opened.Load(), 100*frac, waits)
	assert.GreaterOrEqual(t, opened.Load(), int64(4), "the peers opened a message at every connection")
	assert.Less(t, frac, 0.5, "two gateways kept the shared intake full %.0f%% of the time, connection after connection", 100*frac)
}

// README: "The processors' queue (32 MiB of text, 1,024 readings) then
// fills only if readers outwait their hold, and a reading that finds it
// full fails `processing overloaded`", and "A gateway ... can make *its
// own* connection fail, and nothing more".
//
// Scaled down: an intake of 1 MiB before a processors' queue of 2 MiB. A
// burst of 30 honest readings (~170 KB each) waits its turn at the intake
// and completes (the control round). Then one gateway trickles a byte a
// second into an open reading of 600 KiB (the intake counts 1 MiB for it:
// full) and a second burst comes: every reader outwaits its hold (half
// READING_TIMEOUT; the message is open until READING_TIMEOUT), all read at once, and the queue overflows: honest
// readings fail "processing overloaded" because of another gateway.
//
// Would catch: a bound on open messages loose enough that one gateway
// still defeats the intake for everyone.
func TestTricklingOpenMessageDoesNotMakeABurstOverflowTheProcessors(t *testing.T) {
	cfg := actorstest.FastConfig()
	cfg.PongTimeout = 3 * time.Second
	// An intake wait of 10 s: honest readers that outwait it are the
	// open message's doing, not a loaded box's slow processing.
	cfg.ReadingTimeout = 20 * time.Second
	cfg.ReadingIntakeBytes = 1 << 20
	cfg.ReadingBacklogBytes = 2 << 20
	h := newHarness(t, cfg)
	gws, _ := h.AddAuthenticated("honest", 30)

	bad := burstReadings(t, h, gws, time.Minute)
	require.Empty(t, bad, "control: a burst with the intake free of open messages")

	var opened atomic.Int64
	p := tricklePeer(t, 600<<10, time.Second, &opened)
	addRawGateway(t, h, "trickle", p.url)
	eventually(t, func() bool { return opened.Load() >= 1 }, 30*time.Second, "the peer opens a message")
	eventually(t, func() bool { return actors.IntakeHeld(h.Runtime) >= 1<<20 }, 10*time.Second, "the open message fills the intake")
	start := time.Now()
	bad = burstReadings(t, h, gws, time.Minute)
	t.Logf("burst behind an open message: final after %s; %d of %d not COMPLETE: %v", time.Since(start).Round(time.Millisecond),
		len(bad), len(gws), bad)
	assert.Empty(t, bad, "honest readings failed because another gateway kept a message open a byte at a time")
}
