package actors

import (
	"context"
	"errors"
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

// readerEnd runs a reader on client and returns what it delivers and the
// error it ends with.
func readerEnd(t *testing.T, client *websocket.Conn, in *intake, cfg Config) (<-chan delivered, <-chan error) {
	t.Helper()
	return readerEndWithShare(t, client, in, nil, cfg)
}

// readerEndWithShare is readerEnd with the slow messages' share.
func readerEndWithShare(t *testing.T, client *websocket.Conn, in *intake, slow *slowShare, cfg Config) (<-chan delivered, <-chan error) {
	t.Helper()
	got := make(chan delivered, 4)
	ended := make(chan error, 1)
	cfg = cfg.withDefaults()
	inbox := semaphore.NewWeighted(int64(cfg.InboxBytes))
	r := &reader{ws: client, inbox: inbox, intake: in, slow: slow, cfg: cfg, log: zerolog.Nop(),
		deliver: func(msg ctc.Message, err error, cost, _ int64, text *[]byte) bool {
			got <- delivered{msg, err, text}
			inbox.Release(cost) // handled
			return false
		},
		end: func(err error) { ended <- err },
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go r.run(ctx, done)
	t.Cleanup(func() { cancel(); client.Close(); <-done })
	return got, ended
}

func waitEnd(t *testing.T, ended <-chan error, within time.Duration) error {
	t.Helper()
	select {
	case err := <-ended:
		return err
	case <-time.After(within):
		t.Fatal("the reader did not end")
		return nil
	}
}

const openHead = `{"Type":"NOT_DYN_READING","Data":{"X":"`

// A large message whose data stops ends the connection after the pong
// timeout, and gives back everything it held.
func TestOpenMessageStalls(t *testing.T) {
	t.Parallel()
	client, peer := socketPair(t)
	in := newIntake(64 << 20)
	_, ended := readerEnd(t, client, in, Config{PongTimeout: 500 * time.Millisecond, ReadingTimeout: time.Hour})
	rawFrame(t, peer, false, 1, []byte(openHead+strings.Repeat("0", 40000)))
	rawFrame(t, peer, false, 0, []byte(strings.Repeat("0", 40000)))
	err := waitEnd(t, ended, 10*time.Second)
	require.ErrorIs(t, err, errStalled)
	assert.Contains(t, err.Error(), "no data for 500ms")
	assert.Zero(t, in.held())
}

// A large message that goes on coming, a byte at a time, but is not
// whole within the reading timeout ends the connection too.
func TestOpenMessageTrickles(t *testing.T) {
	t.Parallel()
	client, peer := socketPair(t)
	in := newIntake(64 << 20)
	_, ended := readerEnd(t, client, in, Config{PongTimeout: time.Second, ReadingTimeout: 2 * time.Second})
	// Before the message's first frame: the reader's 2 s start when it
	// reads it (taken after, the test once measured 1.998 s).
	started := time.Now()
	rawFrame(t, peer, false, 1, []byte(openHead+strings.Repeat("0", 40000)))
	stop := make(chan struct{})
	trickled := make(chan struct{})
	go func() {
		defer close(trickled)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := peer.UnderlyingConn().Write([]byte{0x00, 1, '0'}); err != nil { // a continuation of one byte
					return
				}
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-trickled })
	err := waitEnd(t, ended, 20*time.Second)
	require.ErrorIs(t, err, errStalled)
	assert.Contains(t, err.Error(), "not read whole within 2s")
	assert.GreaterOrEqual(t, time.Since(started), 2*time.Second, "the trickle kept it open until then")
	assert.Zero(t, in.held())
}

// Time the reader was held back by a full intake is not the peer's: a
// message held longer than the reading timeout while it grew is still
// read whole.
func TestOpenMessageHeldByTheIntakeIsNotCut(t *testing.T) {
	t.Parallel()
	client, peer := socketPair(t)
	const limit = 1 << 20
	in := newIntake(limit)
	in.add(limit) // full with other gateways' readings, for good
	// Each growth waits intakeWait (500 ms), then goes on: four growths
	// from 256 KiB to 4 MiB wait 2 s, longer than the reading timeout.
	cfg := Config{PongTimeout: time.Second, ReadingTimeout: time.Second}
	require.Equal(t, 500*time.Millisecond, intakeWait(cfg.withDefaults()))
	got, ended := readerEnd(t, client, in, cfg)
	msg := openHead + strings.Repeat("0", 3<<20) + `"}}`
	require.NoError(t, peer.WriteMessage(websocket.TextMessage, []byte(msg)))
	select {
	case d := <-got:
		// Delivered as a reading (whose samples do not decode): what
		// matters is that it was read whole.
		if d.err != nil {
			assert.False(t, errors.Is(d.err, errStalled), "%v", d.err)
		}
	case err := <-ended:
		t.Fatalf("the reader ended: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("nothing delivered")
	}
	// And the next frame is read without a deadline left behind.
	time.Sleep(1500 * time.Millisecond) // longer than both bounds: quiet between messages is allowed
	require.NoError(t, peer.WriteMessage(websocket.TextMessage, []byte(`{"Type":"NOT_DYN_TEMP","Data":{"Serial":"1","Temperature":21.5}}`)))
	select {
	case d := <-got:
		require.NoError(t, d.err)
		assert.IsType(t, &ctc.Temperature{}, d.msg)
	case err := <-ended:
		t.Fatalf("the reader ended between messages: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("nothing delivered")
	}
}
