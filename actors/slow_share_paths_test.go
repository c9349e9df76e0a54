package actors

// (Checked by an audit, helper 2, whose test this is.)

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"golang.org/x/sync/semaphore"

	"github.com/ctcgw/gatewayd/ctc"
)

// The intake and the slow messages' share under a randomized mix of
// peers (fixed seed), all at once: messages sent whole, messages that
// trickle until slow and then end, grow past their buffer while slow,
// stop (stalled), or whose peer goes away half way, of three sizes, into
// a share too small for all of them (some are stalled when they turn
// slow or grow, some evicted by a smaller one).
// Whatever happened to each, once every reader has ended nothing is
// counted in either. Would catch: a message's bytes not given back, or
// given back to the wrong one, on any of those paths (a recount then a
// refused delivery, a release while slow, a refused turn to slow, an
// eviction racing the message's end).
func TestSlowShareGivenBackOnEveryPath(t *testing.T) {
	t.Parallel()
	in, slow := newIntake(64<<20), newSlowShare(1536<<10)
	cfg := Config{PongTimeout: 400 * time.Millisecond, ReadingTimeout: 3 * time.Second}.withDefaults()
	rng := rand.New(rand.NewPCG(7, 7))
	const peers = 10
	var delivered, evicted, refused atomic.Int64
	var wg sync.WaitGroup
	for range peers {
		client, peer := socketPair(t)
		inbox := semaphore.NewWeighted(int64(cfg.InboxBytes))
		r := &reader{ws: client, inbox: inbox, intake: in, slow: slow, cfg: cfg, log: zerolog.Nop(),
			deliver: func(_ ctc.Message, _ error, cost, _ int64, _ *[]byte) bool {
				delivered.Add(1)
				inbox.Release(cost)
				return false // refused: the reader gives the reservation back
			},
			end: func(err error) {
				switch {
				case strings.Contains(err.Error(), "took its place"):
					evicted.Add(1)
				case strings.Contains(err.Error(), "hold their share"):
					refused.Add(1)
				}
			},
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go r.run(ctx, done)
		t.Cleanup(func() { cancel(); client.Close(); <-done })
		script := make([]int, 3)
		for k := range script {
			script[k] = rng.IntN(5)
		}
		// Buffers of 256 KiB, 512 KiB and 1 MiB: the smaller evict the larger.
		first := []int{40 << 10, 300 << 10, 700 << 10}[rng.IntN(3)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-done }()
			defer peer.Close()
			for _, what := range script {
				if !sendScripted(peer, what, first) {
					return
				}
			}
		}()
	}
	// So that the test shows it reached the share at all.
	var peak atomic.Int64
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		for !waitedFor(&wg, 5*time.Millisecond) {
			peak.Store(max(peak.Load(), slow.held()))
		}
	}()
	<-watching
	assert.Positive(t, peak.Load(), "some message turned slow")
	assert.Eventually(t, func() bool { return slow.held() == 0 && in.held() == 0 }, 5*time.Second, 10*time.Millisecond,
		"given back: intake %d, share %d", in.held(), slow.held())
	t.Logf("delivered %d; stalled: %d for a smaller message, %d for want of room", delivered.Load(), evicted.Load(), refused.Load())
}

// sendScripted sends one message of the kind what, and reports whether
// the connection may go on.
func sendScripted(peer *websocket.Conn, what, first int) bool {
	write := func(fin bool, op byte, p []byte) bool {
		_ = peer.UnderlyingConn().SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, err := peer.UnderlyingConn().Write(unmaskedFrame(fin, op, p))
		return err == nil
	}
	trickle := func(d time.Duration) bool {
		for end := time.Now().Add(d); time.Now().Before(end); {
			if !write(false, 0, []byte("0")) {
				return false
			}
			time.Sleep(50 * time.Millisecond)
		}
		return true
	}
	if !write(false, 1, []byte(openHead+strings.Repeat("0", first))) {
		return false
	}
	switch what {
	case 0: // whole at once
		return write(true, 0, []byte(`"}}`))
	case 1: // slow, then whole
		return trickle(300*time.Millisecond) && write(true, 0, []byte(`"}}`))
	case 2: // slow, grows while slow, then whole
		return trickle(300*time.Millisecond) && write(false, 0, []byte(strings.Repeat("0", 512<<10))) &&
			trickle(100*time.Millisecond) && write(true, 0, []byte(`"}}`))
	case 3: // slow, then the peer goes away
		trickle(300 * time.Millisecond)
		return false
	default: // stops: stalled
		time.Sleep(600 * time.Millisecond)
		return false
	}
}

// waitedFor reports whether wg is done, waiting at most d.
func waitedFor(wg *sync.WaitGroup, d time.Duration) bool {
	c := make(chan struct{})
	go func() { wg.Wait(); close(c) }()
	select {
	case <-c:
		return true
	case <-time.After(d):
		return false
	}
}
