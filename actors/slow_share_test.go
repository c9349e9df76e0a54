package actors

import (
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// README: a slow message "counts, until it is whole, in a share of its
// own as large as the 8 MiB"; "When that share has no room, as the
// message turns slow or grows, the message is stalled". Two gateways trickle 1 MiB messages into a 1.5 MiB share:
// the first to turn slow takes its place in the share and goes on to be
// delivered; the second is stalled when it turns slow, and nothing stays
// counted anywhere. Would catch: slow messages counted nowhere (a few
// hundred gateways trickling 4 MiB messages held gigabytes: the second
// would never end); a share not given back when the message is whole or
// dropped.
func TestSlowMessagesHaveABoundedShare(t *testing.T) {
	t.Parallel()
	in, slow := newIntake(64<<20), newSlowShare(1536<<10)
	cfg := Config{PongTimeout: time.Second, ReadingTimeout: time.Hour}.withDefaults()
	clientA, peerA := socketPair(t)
	clientB, peerB := socketPair(t)
	gotA, endedA := readerEndWithShare(t, clientA, in, slow, cfg)
	_, endedB := readerEndWithShare(t, clientB, in, slow, cfg)

	body := openHead + strings.Repeat("0", 700<<10) // grows to a 1 MiB buffer
	rawFrame(t, peerA, false, 1, []byte(body))
	require.Eventually(t, func() bool { return in.held() >= 1<<20 }, 5*time.Second, 5*time.Millisecond)
	// A byte every 100 ms: A's message keeps coming, slowly, until it is
	// slow and counted in the share instead.
	trickleUntil(t, peerA, func() bool { return slow.held() >= 1<<20 }, in, slow)
	assert.Zero(t, in.held(), "a slow message no longer counts in the intake")

	rawFrame(t, peerB, false, 1, []byte(body))
	deadline := time.Now().Add(10 * time.Second)
	var errB error
	for errB == nil {
		require.True(t, time.Now().Before(deadline), "B was never stalled: intake %d, share %d", in.held(), slow.held())
		rawFrame(t, peerA, false, 0, []byte("0"))
		rawFrame(t, peerB, false, 0, []byte("0"))
		select {
		case errB = <-endedB:
		case err := <-endedA:
			t.Fatalf("A ended: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	require.ErrorIs(t, errB, errStalled)
	assert.Contains(t, errB.Error(), "other slow messages hold their share")
	assert.Eventually(t, func() bool { return in.held() == 0 }, 5*time.Second, 5*time.Millisecond, "B gave back what it held")
	assert.GreaterOrEqual(t, slow.held(), int64(1<<20), "A still holds its place in the share")

	rawFrame(t, peerA, true, 0, []byte(`"}}`))
	select {
	case <-gotA: // whole, and handed over (decoded or not: this is about its bytes)
	case err := <-endedA:
		t.Fatalf("A ended: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("A's message was not delivered")
	}
	assert.Eventually(t, func() bool { return in.held() == 0 && slow.held() == 0 }, 5*time.Second, 5*time.Millisecond,
		"given back: intake %d, share %d", in.held(), slow.held())
}

// A slow message that outgrows the share is stalled as it grows, and
// gives back what it held there. Would catch: growth of a slow message
// counted nowhere (one message grew to 8 MiB uncounted).
func TestASlowMessageThatOutgrowsTheShareStalls(t *testing.T) {
	t.Parallel()
	in, slow := newIntake(64<<20), newSlowShare(768<<10)
	cfg := Config{PongTimeout: time.Second, ReadingTimeout: time.Hour}.withDefaults()
	client, peer := socketPair(t)
	_, ended := readerEndWithShare(t, client, in, slow, cfg)

	rawFrame(t, peer, false, 1, []byte(openHead+strings.Repeat("0", 300<<10)))
	trickleUntil(t, peer, func() bool { return slow.held() > 0 }, in, slow)
	// The first message in the share passes alone, whatever its size (as
	// in the intake); its buffer then doubles, which does not fit in 768 KiB.
	held := slow.held()
	require.GreaterOrEqual(t, held, int64(512<<10))
	rawFrame(t, peer, false, 0, []byte(strings.Repeat("0", int(held))))
	err := waitEnd(t, ended, 10*time.Second)
	require.ErrorIs(t, err, errStalled)
	assert.Contains(t, err.Error(), "other slow messages hold their share")
	assert.Eventually(t, func() bool { return in.held() == 0 && slow.held() == 0 }, 5*time.Second, 5*time.Millisecond,
		"given back: intake %d, share %d", in.held(), slow.held())
}

// trickleUntil sends a byte of the open message on peer every 100 ms (a
// peer trickling its message: the pace is the scenario) until turned
// reports true, and fails the test if that takes over 10 s.
func trickleUntil(t *testing.T, peer *websocket.Conn, turned func() bool, in *intake, slow *slowShare) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !turned() {
		require.True(t, time.Now().Before(deadline), "never turned slow: intake %d, share %d", in.held(), slow.held())
		rawFrame(t, peer, false, 0, []byte("0"))
		time.Sleep(100 * time.Millisecond)
	}
}
