package actors_test

// (Found by an audit, helper 10, whose test this is.) Many gateways at once, each within every per-gateway
// bound, against the reading intake's global bound.
//
// README ("A burst of readings waits in the sockets, not the heap"): a
// reader that is reading a reading, or any frame larger than 32 KiB,
// "stops before it reads on while 8 MiB of readings are between the
// sockets and the database (frames read and waiting in the gateways'
// actors, text waiting for the two processing workers, packed samples
// waiting for the writer)", and "a thousand gateways waiting with a
// reading each cost 64 KiB, not their frames".
//
// The intake is asked for frameReserve (256 KiB) when a large frame's
// head has been read, and the reader then reads the frame whole, up to
// the 4 MiB read limit, without asking for more: a 4 MiB frame counts
// 256 KiB. 8 MiB / 256 KiB = 32 readers are let in at once, and each
// holds up to 4 MiB while it waits for a decoding slot (the crunch, which
// the processing workers share: one large reading being analysed holds
// it). So 32 gateways, each sending one 4 MiB reading (a frame a second
// at most, well within the flood limits of 8 MiB/s), make gatewayd hold
// ~128 MiB of frames (plus the doubling garbage of reading them) where
// the README promises 8 MiB; and readers that outwait their hold (half
// READING_TIMEOUT) read on regardless.
//
// What it would catch: the intake counting a large frame's reserve rather
// than its bytes. With the frame's growth charged to the intake (and the
// reader waiting for room before it reads on) the live heap stays near
// 8 MiB + one frame passing alone.

import (
	"bytes"
	"fmt"
	goruntime "runtime"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// bigReadingFrame is a NOT_DYN_READING of about size bytes (Type first,
// as gateways write it), its X a long run of "0,".
func bigReadingFrame(size int) []byte {
	var b bytes.Buffer
	b.Grow(size)
	b.WriteString(`{"Type":"NOT_DYN_READING","From":"SERV","Target":"UI","Data":{"ID":1,"Serial":"777","Time":"2026-12-07T00:00:00Z","Y":"0","Z":"0","X":"0`)
	tail := `"}}`
	for b.Len()+2+len(tail) < size {
		b.WriteString(",0")
	}
	b.WriteString(tail)
	return b.Bytes()
}

// onePushPeer logs in, answers discovery with [] and the subscription,
// and once go is closed sends frame once; then it keeps reading (and
// answering pings, which gorilla does).
func onePushPeer(t *testing.T, frame []byte, start <-chan struct{}, sent *sync.WaitGroup) string {
	sent.Add(1)
	return actorstest.ServePeer(t, func(ws *websocket.Conn) {
		var once sync.Once
		var wmu sync.Mutex
		write := func(b []byte) {
			wmu.Lock()
			defer wmu.Unlock()
			_ = ws.WriteMessage(websocket.TextMessage, b)
		}
		left := make(chan struct{})
		defer close(left)
		subscribed := make(chan struct{})
		go func() {
			select {
			case <-subscribed:
			case <-left:
				return
			}
			select {
			case <-start:
			case <-left:
				return
			}
			write(frame)
			sent.Done()
		}()
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if answerLogin(write, b, emptyList) {
				once.Do(func() { close(subscribed) })
			}
		}
	})
}

func liveHeap() uint64 {
	goruntime.GC()
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func TestManyGatewaysLargeFramesStayWithinTheIntake(t *testing.T) {
	if testutil.OwnProcess(t) {
		return
	}
	const peers = 40 // more than the 32 reserves 8 MiB takes
	cfg := actorstest.FastConfig()
	cfg.PingInterval = 2 * time.Second
	cfg.PongTimeout = 60 * time.Second
	cfg.ReadingStartTimeout = 30 * time.Second
	cfg.ReadingTimeout = 120 * time.Second // readers wait up to 60 s for the intake: no one outwaits it here
	h := actorstest.New(t, tmpl, cfg)

	frame := bigReadingFrame(4<<20 - 1024)
	start := make(chan struct{})
	var sent sync.WaitGroup
	ids := make([]gatewayd.Gateway, peers)
	for i := range peers {
		url := onePushPeer(t, frame, start, &sent)
		ids[i] = addRawGateway(t, h, fmt.Sprintf("big-%d", i), url)
	}
	for _, g := range ids {
		h.WaitState(g.ID, gatewayd.StateAuthenticated, 60*time.Second)
	}

	// The decoding slot is busy (as while a large reading is analysed):
	// the readers' frames wait for it, in hand.
	release := actors.HoldCrunch(h.Runtime)
	released := false
	defer func() {
		if !released {
			release()
		}
	}()
	frame = nil
	base := liveHeap()
	close(start)

	// Wait until the intake is full and the rest of the readers wait in
	// it (each reader has read its head by then), then until the live
	// heap stops growing (the admitted readers have read their frames).
	testutil.Eventually(t, func() bool {
		return actors.IntakeWaiting(h.Runtime) >= peers-(8<<20)/(256<<10)
	}, 30*time.Second, "the readers reach the intake")
	var peak, last uint64
	stable := 0
	testutil.Eventually(t, func() bool {
		live := liveHeap()
		peak = max(peak, live)
		if live <= last+(1<<20) {
			stable++
		} else {
			stable = 0
		}
		last = live
		return stable >= 5
	}, 30*time.Second, "the live heap settles")
	grown := int64(peak) - int64(base)
	held := actors.IntakeHeld(h.Runtime)
	waiting := actors.IntakeWaiting(h.Runtime)
	release()
	released = true
	t.Logf("%d gateways x one %d KiB reading, decoding slot busy: intake counts %d KiB (%d readers waiting); live heap %d MiB -> %d MiB (+%d MiB)",
		peers, (4<<20-1024)>>10, held>>10, waiting, base>>20, peak>>20, grown>>20)
	// README: 8 MiB between the sockets and the database, one larger
	// frame passing alone (4 MiB), the waiting readers' heads; 8 MiB more
	// for everything else.
	limit := int64(8<<20 + 4<<20 + 8<<20)
	require.LessOrEqualf(t, grown, limit,
		"%d gateways' large frames, each counted %d KiB by the intake, held %d MiB live (README: readers stop while 8 MiB of readings are between the sockets and the database)",
		peers, 256, grown>>20)
}
