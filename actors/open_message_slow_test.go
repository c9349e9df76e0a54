package actors

// A slow open message and the shared intake. (Found by an audit, helper
// 1, whose test this is.)

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/semaphore"

	"github.com/ctcgw/gatewayd/ctc"
)

// README: "A large message still open half GATEWAY_PONG_TIMEOUT after it
// was let in ... is slow, and stops counting in the 8 MiB until it is
// whole". A message that goes on a byte at a time stops counting once
// slow, counts again (what it grew to) when it is whole and handed over,
// and one that then stalls gives back nothing twice.
// Would catch: a slow message that holds the shared intake until the
// reading timeout; a whole one handed over uncounted (the ledger would
// give back bytes never counted); a double give-back.
func TestASlowMessageStopsCountingUntilWhole(t *testing.T) {
	t.Parallel()
	for _, end := range []string{"whole", "stalled"} {
		t.Run(end, func(t *testing.T) {
			t.Parallel()
			client, peer := socketPair(t)
			in := newIntake(64 << 20)
			cfg := Config{PongTimeout: time.Second, ReadingTimeout: time.Hour}.withDefaults()
			atHandover := make(chan int64, 1)
			ended := make(chan error, 1)
			r := &reader{ws: client, inbox: semaphore.NewWeighted(int64(cfg.InboxBytes)), intake: in, cfg: cfg, log: zerolog.Nop(),
				deliver: func(_ ctc.Message, _ error, _, reserved int64, _ *[]byte) bool {
					atHandover <- in.held() - reserved // what else is counted: nothing
					return false
				},
				end: func(err error) { ended <- err },
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go r.run(ctx, done)
			t.Cleanup(func() { cancel(); client.Close(); <-done })

			rawFrame(t, peer, false, 1, []byte(openHead+strings.Repeat("0", 300<<10))) // grows once: 512 KiB counted
			require.Eventually(t, func() bool { return in.held() >= 512<<10 }, 5*time.Second, 5*time.Millisecond)
			// A byte every 200 ms: data keeps coming, slowly.
			deadline := time.Now().Add(10 * time.Second)
			for in.held() != 0 {
				require.True(t, time.Now().Before(deadline), "still counted: %d bytes", in.held())
				rawFrame(t, peer, false, 0, []byte("0"))
				time.Sleep(200 * time.Millisecond)
			}
			if end == "whole" {
				rawFrame(t, peer, true, 0, []byte(`"}}`))
				select {
				case other := <-atHandover:
					assert.Zero(t, other, "counted again, as much as it hands over")
				case err := <-ended:
					t.Fatalf("ended: %v", err)
				case <-time.After(10 * time.Second):
					t.Fatal("not handed over")
				}
			} else {
				err := waitEnd(t, ended, 10*time.Second)
				require.ErrorIs(t, err, errStalled)
			}
			assert.Eventually(t, func() bool { return in.held() == 0 }, 5*time.Second, 5*time.Millisecond)
			// Once the reader has stopped, nothing more can be given back.
			cancel()
			client.Close()
			<-done
			assert.Zero(t, in.held(), "given back once")
		})
	}
}
