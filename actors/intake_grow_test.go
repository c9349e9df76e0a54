package actors

// Checks of the intake's growth paths. (Checked by an audit, helper 13,
// whose tests these are.)

import (
	"context"
	"encoding/binary"
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

// rawFrame writes one unmasked (server to client) WebSocket frame.
func rawFrame(t *testing.T, ws *websocket.Conn, fin bool, op byte, p []byte) {
	t.Helper()
	_, err := ws.UnderlyingConn().Write(unmaskedFrame(fin, op, p))
	require.NoError(t, err)
}

// unmaskedFrame is one unmasked WebSocket frame of any length.
func unmaskedFrame(fin bool, op byte, p []byte) []byte {
	h := []byte{op}
	if fin {
		h[0] |= 0x80
	}
	switch n := len(p); {
	case n < 126:
		h = append(h, byte(n))
	case n < 1<<16:
		h = append(h, 126, byte(n>>8), byte(n))
	default:
		h = append(h, 127)
		h = binary.BigEndian.AppendUint64(h, uint64(n))
	}
	return append(h, p...)
}

// A frame waiting to grow whose connection goes away gives back every
// byte it held, and the stuck count returns to 0. Would catch: a leak on
// the grow-cancelled path of readFrame (the intake slowly fills for ever).
func TestGrowCancelledGivesEverythingBack(t *testing.T) {
	t.Parallel()
	client, peer := socketPair(t)
	// The frame is larger than any pooled buffer (poolFrameLimit: other
	// tests running in parallel leave theirs in the pool), so whatever
	// buffer it starts in, its growth past 1 MiB does not fit.
	const other = 3 << 20
	in := newIntake(4 << 20)
	in.add(other) // others' readings
	cfg := Config{PongTimeout: time.Hour, ReadingTimeout: time.Hour}.withDefaults()
	r := &reader{ws: client, inbox: semaphore.NewWeighted(int64(cfg.InboxBytes)), intake: in, cfg: cfg, log: zerolog.Nop(),
		deliver: func(ctc.Message, error, int64, int64, *[]byte) bool { return false },
		end:     func(error) {},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go r.run(ctx, done)
	msg := `{"Type":"NOT_DYN_READING","Data":{"X":"` + strings.Repeat("0", 3<<19) + `"}}`
	require.NoError(t, peer.WriteMessage(websocket.TextMessage, []byte(msg)))
	require.Eventually(t, func() bool { return in.queued() == 1 }, 10*time.Second, time.Millisecond, "the frame waits to grow")
	in.mu.Lock()
	stuck := in.stuck
	in.mu.Unlock()
	assert.GreaterOrEqual(t, stuck, int64(frameReserve), "the frame's reservation so far is stuck")
	cancel()
	<-done
	assert.Equal(t, int64(other), in.held(), "all the frame's bytes given back")
	in.mu.Lock()
	defer in.mu.Unlock()
	assert.Zero(t, in.stuck)
	assert.Zero(t, in.waiters.Len())
}

// A grower let in by the stuck rule and then cancelled gives back what it
// was let in with. Would catch: letInLocked's stuck -= held being undone
// twice, or the cancelled grant kept.
func TestUnstuckGrowerCancelled(t *testing.T) {
	t.Parallel()
	in := newIntake(100)
	require.True(t, in.admit(context.Background(), 80, time.Hour))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// Already cancelled: but the stuck rule lets it in before the select.
	ok := in.grow(ctx, 80, 80, time.Hour)
	if ok {
		in.add(-80)
	}
	in.add(-80)
	assert.Zero(t, in.held())
	in.mu.Lock()
	defer in.mu.Unlock()
	assert.Zero(t, in.stuck)
}

// A multi-byte character split across continuation frames is valid UTF-8
// once gorilla reassembles the message: the reading is decoded, not
// dropped. Would catch: the UTF-8 check run per fragment or per read.
func TestUTF8SplitAcrossFragments(t *testing.T) {
	t.Parallel()
	client, peer := socketPair(t)
	got := runReader(t, client, newIntake(1<<30), Config{})
	msg := []byte(`{"Type":"NOT_DYN_TEMP","Data":{"Serial":"é€😀","Temperature":21.5}}`)
	i := strings.Index(string(msg), "é") + 1 // inside é
	j := strings.Index(string(msg), "😀") + 2 // inside the emoji
	rawFrame(t, peer, false, 1, msg[:i])
	rawFrame(t, peer, false, 0, msg[i:j])
	rawFrame(t, peer, false, 0, nil)
	rawFrame(t, peer, true, 0, msg[j:])
	select {
	case d := <-got:
		require.NoError(t, d.err)
		require.IsType(t, &ctc.Temperature{}, d.msg)
	case <-time.After(10 * time.Second):
		t.Fatal("nothing delivered")
	}
	// And a large one (read through the growth loop), split the same way.
	big := []byte(`{"Type":"NOT_DYN_TEMP","Data":{"Serial":"` + strings.Repeat("é", 300<<10) + `","Temperature":21.5}}`)
	for k := 0; k < len(big); k += 100001 { // odd size: splits é
		end := min(k+100001, len(big))
		op := byte(0)
		if k == 0 {
			op = 1
		}
		rawFrame(t, peer, end == len(big), op, big[k:end])
	}
	select {
	case d := <-got:
		if d.err != nil {
			assert.NotContains(t, d.err.Error(), "UTF-8")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nothing delivered")
	}
}
