package actors

// (Found by an audit, helper 2, whose tests these are.)

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// README (What a hostile peer can and cannot do): "A gateway ... can make
// its own connection fail, and nothing more." With the slow messages'
// share, a gateway that trickles a large message a byte at a time holds
// the share until READING_TIMEOUT, and a gateway on a slow link that
// sends its reading steadily, at its network's speed but over half the
// pong timeout, was stalled when it turned slow ("other slow messages
// hold their share"): the trickler made another gateway's connection
// fail. A slow message that is faster than one the share holds takes
// its place; the slower one is stalled. Would catch: the share refusing
// a steady message in favour of a trickle.
func TestATrickleCannotStallASteadySlowMessage(t *testing.T) {
	t.Parallel()
	in, slow := newIntake(64<<20), newSlowShare(1<<20)
	cfg := Config{PongTimeout: time.Second, ReadingTimeout: time.Hour}.withDefaults()
	clientA, peerA := socketPair(t)
	clientB, peerB := socketPair(t)
	_, endedA := readerEndWithShare(t, clientA, in, slow, cfg)
	gotB, endedB := readerEndWithShare(t, clientB, in, slow, cfg)

	// A, hostile: a message that grows to a 1 MiB buffer, then a byte
	// every 100 ms: slow, it fills the share on its own.
	rawFrame(t, peerA, false, 1, []byte(openHead+strings.Repeat("0", 700<<10)))
	trickleUntil(t, peerA, func() bool { return slow.held() >= 1<<20 }, in, slow)
	trickle := make(chan struct{})
	trickled := make(chan struct{})
	go func() {
		defer close(trickled)
		for {
			select {
			case <-trickle:
				return
			case <-time.After(100 * time.Millisecond):
				if _, err := peerA.UnderlyingConn().Write([]byte{0x00, 1, '0'}); err != nil {
					return
				}
			}
		}
	}()
	defer func() { close(trickle); <-trickled }()

	// B, honest on a slow link: 900 KiB at 64 KiB every 100 ms, steadily,
	// so that it is still open when it turns slow (after 500 ms). Its
	// buffer is likely a pooled one as large as A's (in the suite, one
	// of another test's came by chance, and B was stalled: sizes tied,
	// the share kept the trickle): a tie is broken by progress.
	for range 8 {
		b := make([]byte, 0, poolFrameLimit)
		putFrame(&b)
	}
	rawFrame(t, peerB, false, 1, []byte(openHead))
	for range 14 {
		rawFrame(t, peerB, false, 0, []byte(strings.Repeat("0", 64<<10)))
		time.Sleep(100 * time.Millisecond)
	}
	rawFrame(t, peerB, true, 0, []byte(`"}}`))
	select {
	case <-gotB:
	case err := <-endedB:
		t.Fatalf("B, sending steadily, was cut off: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("B's message was not delivered")
	}
	select {
	case err := <-endedA:
		require.ErrorIs(t, err, errStalled, "A, the trickle, gave its place")
	case <-time.After(5 * time.Second):
		t.Fatal("A was not stalled")
	}
}

// The share's choice (slowShare.take): a message that does not fit takes
// the place of larger ones only, the largest first and no more than it
// needs, and of none if even all of them would not make room; one of a
// size never evicts another of its size; an evicted message takes
// nothing more, and gives back nothing twice. Would catch: an eviction
// that frees nothing useful, a message evicted for one of its own size
// (honest gateways cutting each other off), the share's count off after
// an eviction.
func TestTheSlowShareEvictsOnlyLargerMessages(t *testing.T) {
	t.Parallel()
	msg := func() *openMessage {
		client, _ := socketPair(t)
		return &openMessage{ws: client}
	}
	s := newSlowShare(1000)
	big, mid, small := msg(), msg(), msg()
	require.True(t, s.take(big, 600))
	require.True(t, s.take(mid, 300))
	same := msg()
	require.False(t, s.take(same, 600), "no room, and nothing larger than 600 to make it")
	require.False(t, big.evicted.Load() || mid.evicted.Load())

	require.True(t, s.take(small, 200), "the 600 gives way")
	require.True(t, big.evicted.Load())
	require.False(t, mid.evicted.Load(), "the largest goes first, and alone is enough")
	require.Equal(t, int64(500), s.held())
	require.False(t, s.take(big, 1), "an evicted message takes nothing more")
	s.give(big)
	require.Equal(t, int64(500), s.held(), "nor gives back twice")

	huge := msg()
	require.False(t, s.take(huge, 900), "larger than everything it would evict")
	require.False(t, mid.evicted.Load() || small.evicted.Load(), "and evicts nothing when it cannot fit")
	s.give(mid)
	s.give(small)
	require.Zero(t, s.held())
	require.True(t, s.take(huge, 5000), "alone, whatever its size")
}

// Of two messages of a size, one that stopped making progress (read less
// than progressEvery in its window) gives way to one still coming in;
// two still coming in, or two stalled, keep first come, first kept.
// Would catch: a tie always kept by the incumbent (a steady reading in a
// pooled buffer as large as a trickle's was stalled), or ties evicting
// honest messages for each other.
func TestASlowMessageOfASizeGivesWayOnlyWhenStalled(t *testing.T) {
	t.Parallel()
	now := time.Now()
	msg := func(progressAgo time.Duration) *openMessage {
		client, _ := socketPair(t)
		m := &openMessage{ws: client, window: time.Second}
		m.progressAt.Store(now.Add(-progressAgo).UnixNano())
		return m
	}
	s := newSlowShare(1000)
	trickle, steady := msg(time.Hour), msg(0)
	require.True(t, s.take(trickle, 1000))
	require.True(t, s.take(steady, 1000), "the stalled one of its size gives way")
	require.True(t, trickle.evicted.Load())

	stalled := msg(time.Hour)
	require.False(t, s.take(stalled, 1000), "a stalled one does not evict one still coming in")
	require.False(t, steady.evicted.Load())
	other := msg(0)
	require.False(t, s.take(other, 1000), "nor does one still coming in evict another")
	require.False(t, steady.evicted.Load())
}
