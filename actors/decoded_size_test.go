package actors_test

import (
	"bytes"
	"fmt"
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// What one gateway's frames cost once decoded (README, "What a hostile
// peer can and cannot do": "decoded frames waiting for its actor are
// bounded at 1 MiB …, so a flood costs bounded memory"; API.md §4: "what
// one gateway can make the service hold in memory is bounded"). The inbox
// charges a frame its bytes, and the frame is decoded before it is handed
// to the actor: fields decoded into Go values of any shape (NOT_DYN_TEMP's
// Temp, RTN_LOGIN's AccessLevel and Verified, RTN_ERR's Attempt,
// NOT_DYN_READING's ID) built whatever tree the gateway sent, ~21 bytes of
// heap per byte of frame, and a sensor list was decoded three times whole
// before all but 4,096 entries were dropped. The frames below are within
// every flood limit (4 MiB < the read limit, ≤ 8 MiB/s after a burst of
// 32 MiB). (Found by an audit, helper 5, whose tests these are.)

// tempTreeFrame is a NOT_DYN_TEMP of about size bytes whose Temp is
// elem repeated ([elem,elem,…]).
func tempTreeFrame(size int, elem string) []byte {
	var b bytes.Buffer
	b.Grow(size)
	b.WriteString(`{"Type":"NOT_DYN_TEMP","From":"SERV","Target":"UI","Data":{"Serial":"1","Temp":[`)
	tail := `]}}`
	for first := true; b.Len()+len(elem)+1+len(tail) < size; first = false {
		if !first {
			b.WriteByte(',')
		}
		b.WriteString(elem)
	}
	b.WriteString(tail)
	return b.Bytes()
}

// sendPaced is a peer's own pace: it sends frame burst times at once, then
// one per gap (a ticker, not sleeps), n in all, counting each in sent. It
// says whether all were sent: a failed write or stop ends it early.
func sendPaced(ws *websocket.Conn, frame []byte, n, burst int, gap time.Duration, stop <-chan struct{}, sent *atomic.Int64) bool {
	tick := time.NewTicker(gap)
	defer tick.Stop()
	for i := range n {
		if i >= burst {
			select {
			case <-tick.C:
			case <-stop:
				return false
			}
		}
		if ws.WriteMessage(websocket.TextMessage, frame) != nil {
			return false
		}
		sent.Add(1)
	}
	return true
}

// pushingPeer logs in, answers discovery with [] and the subscription,
// then sends frame burst times at once and then every gap, n in all.
type pushingPeer struct {
	url  string
	sent atomic.Int64
	done atomic.Bool
}

func newPushingPeer(t *testing.T, frame []byte, burst, n int, gap time.Duration) *pushingPeer {
	t.Helper()
	p := &pushingPeer{}
	p.url = actorstest.ServePeer(t, func(ws *websocket.Conn) {
		subscribed := make(chan struct{})
		left := make(chan struct{}) // the handler returned: the sender stops
		defer close(left)
		go func() {
			select {
			case <-subscribed:
			case <-left:
				return
			}
			if sendPaced(ws, frame, n, burst, gap, left, &p.sent) {
				p.done.Store(true)
			}
		}()
		once := false
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if answerLogin(func(m []byte) { _ = ws.WriteMessage(websocket.TextMessage, m) }, b, emptyList) && !once {
				once = true
				close(subscribed)
			}
		}
	})
	return p
}

type decodedRun struct {
	baseline, peak uint64        // HeapInuse
	cpu            time.Duration // process CPU (user+sys) while pushing
	wall           time.Duration
	sent           int64
	worstStatus    time.Duration // an honest neighbour's status
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runDecodedFlood pushes frame (burst at once, then one every 600 ms: 4
// MiB frames at ~6.7 MiB/s, under the 8 MiB/s sustained limit) from one
// gateway for n frames, and measures the heap and an honest neighbour.
func runDecodedFlood(t *testing.T, frame []byte, burst, n int) decodedRun {
	cfg := actorstest.FastConfig()
	cfg.PingInterval = 2 * time.Second
	cfg.PongTimeout = 30 * time.Second // a pong behind 4 MiB frames is not what is measured
	h := actorstest.New(t, tmpl, cfg)
	gws, _ := h.AddAuthenticated("neighbour", 1)
	p := newPushingPeer(t, frame, burst, n, 600*time.Millisecond)
	hostile := addRawGateway(t, h, "hostile", p.url)
	h.WaitState(hostile.ID, gatewayd.StateAuthenticated, 10*time.Second)

	var r decodedRun
	var peakHeap func() uint64
	r.baseline, peakHeap = sampleHeap(t)
	start, cpu0 := time.Now(), cpuTime()
	testutil.Eventually(t, func() bool {
		t0 := time.Now()
		st := h.Status(gws[0].ID)
		r.worstStatus = max(r.worstStatus, time.Since(t0))
		require.Equal(t, gatewayd.StateAuthenticated, st.State, "the neighbour keeps its connection")
		return p.done.Load()
	}, 120*time.Second, "hostile sent all its frames")
	// Its last frames decoded and handled: it is still connected (never
	// cut off for flooding) and its actor answers.
	st := h.Status(hostile.ID)
	r.cpu, r.wall = cpuTime()-cpu0, time.Since(start)
	r.peak = peakHeap()
	r.sent = p.sent.Load()
	assert.Equal(t, gatewayd.StateAuthenticated, st.State, "the pushing gateway stayed within the flood limits (last_error %s)", ptrText(st.LastError))
	t.Logf("frame %d B x %d sent in %s: heap in use baseline %d MiB, peak %d MiB (+%d MiB = %.1f B per B of one frame); CPU %s (%.0f%% of one core); neighbour status worst %s",
		len(frame), r.sent, r.wall.Round(time.Millisecond), r.baseline>>20, r.peak>>20, (r.peak-min(r.peak, r.baseline))>>20,
		float64(r.peak-min(r.peak, r.baseline))/float64(len(frame)), r.cpu.Round(time.Millisecond),
		100*r.cpu.Seconds()/r.wall.Seconds(), r.worstStatus.Round(time.Millisecond))
	return r
}

const hostileFrameSize = 4<<20 - 1024 // under the 4 MiB read limit

// sampleHeap collects garbage and returns the heap in use, and a function
// that stops sampling it every 10 ms (as the test's end does) and returns
// the highest sample.
func sampleHeap(t *testing.T) (baseline uint64, peak func() uint64) {
	goruntime.GC()
	goruntime.GC()
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	baseline = ms.HeapInuse
	stop := make(chan struct{})
	sampled := make(chan struct{})
	var high atomic.Uint64
	go func() {
		defer close(sampled)
		for {
			var ms goruntime.MemStats
			goruntime.ReadMemStats(&ms)
			if ms.HeapInuse > high.Load() {
				high.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	var once sync.Once
	end := func() {
		once.Do(func() {
			close(stop)
			<-sampled
		})
	}
	t.Cleanup(end)
	return baseline, func() uint64 {
		end()
		return high.Load()
	}
}

// A Temp of [{},{},…] in 4 MiB frames, 6 at once and then one every
// 600 ms, within every flood limit: the heap grew ~250 MiB. What one
// gateway makes the process hold should stay near what the README bounds
// it at (a frame in hand plus the 1 MiB inbox, well under the 32 MiB byte
// burst; 64 MiB is allowed, twice the burst; frames of the same size
// whose Temp is one string grew it by ~27 MiB).
func TestDecodedTempTreesOfOneGatewayAreBounded(t *testing.T) {
	if testutil.OwnProcess(t) {
		return
	}
	r := runDecodedFlood(t, tempTreeFrame(hostileFrameSize, "{}"), 6, 10)
	assert.Less(t, r.peak-min(r.peak, r.baseline), uint64(64<<20),
		"one gateway's NOT_DYN_TEMP frames (4 MiB each, within the flood limits) grew the heap by %d MiB", (r.peak-r.baseline)>>20)
}

// Two gateways answer their discovery with a sensor list of ~315,000
// entries each (`"serial":{}`, 4 MiB, under the read limit): gatewayd keeps
// the lowest 4,096 of each (README), and first built every entry three
// times (a map of raw entries, the lenient entries, the list), on the
// actor, bounded by neither the inbox nor any slot of the process: +167
// MiB for one gateway, +524 MiB for three (the audit's count).
func TestHugeSensorListsOfTwoGatewaysAreBounded(t *testing.T) {
	if testutil.OwnProcess(t) {
		return
	}
	hugeSensorLists(t, 2)
}

func hugeSensorLists(t *testing.T, k int) {
	cfg := actorstest.FastConfig()
	// What is measured is the heap a list costs, not how soon it comes:
	// with -race on a loaded CI box the peer took more than the fast
	// config's 5 s to make and send a 4 MiB answer, so the discovery
	// timed out and the pong behind the frame came late, again and again,
	// and no list was ever stored.
	cfg.CommandTimeout = time.Minute
	cfg.PongTimeout = time.Minute
	h := actorstest.New(t, tmpl, cfg)
	h.ShutdownWait = 2 * time.Minute
	baseline, peakHeap := sampleHeap(t)
	start, cpu0 := time.Now(), cpuTime()
	var hostiles []gatewayd.Gateway
	for i := range k {
		p := newBigListPeer(t, 315_000, 1)
		hostiles = append(hostiles, addRawGateway(t, h, fmt.Sprintf("biglist%d", i), p.url))
	}
	testutil.Eventually(t, func() bool {
		for _, g := range hostiles {
			list, err := h.Store.GatewaySensors(t.Context(), g.ID)
			if err != nil || len(list) != gatewayd.MaxGatewaySensors {
				return false
			}
		}
		return true
	}, 180*time.Second, "each list's first %d sensors stored", gatewayd.MaxGatewaySensors)
	cpu, wall := cpuTime()-cpu0, time.Since(start)
	peak := peakHeap()
	grew := peak - min(peak, baseline)
	t.Logf("%d gateway(s), one 4 MiB sensor list each: heap in use baseline %d MiB, peak %d MiB (+%d MiB = %.0f B per B of one frame); CPU %s in %s",
		k, baseline>>20, peak>>20, grew>>20, float64(grew)/float64(4<<20), cpu.Round(time.Millisecond), wall.Round(time.Millisecond))
	assert.Less(t, grew, uint64(64<<20), "%d gateway(s)' 4 MiB sensor lists grew the heap by %d MiB", k, grew>>20)
}

// The same frames from a peer that never answers the login (no
// credentials needed: anything at a gateway's URL): every frame sent
// before a login is decoded before it is dropped.
func TestDecodedTempTreesBeforeALoginAreBounded(t *testing.T) {
	if testutil.OwnProcess(t) {
		return
	}
	cfg := actorstest.FastConfig()
	h := actorstest.New(t, tmpl, cfg)
	gws, _ := h.AddAuthenticated("neighbour", 1)
	frame := tempTreeFrame(hostileFrameSize, "{}")
	var sent atomic.Int64
	const n = 10
	url := actorstest.ServePeer(t, func(ws *websocket.Conn) {
		go func() { // drain, never answer
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					return
				}
			}
		}()
		sendPaced(ws, frame, n, 6, 600*time.Millisecond, nil, &sent) // under 8 MiB/s after the burst
	})
	baseline, peakHeap := sampleHeap(t)
	hostile := addRawGateway(t, h, "nologin", url)
	testutil.Eventually(t, func() bool {
		require.Equal(t, gatewayd.StateAuthenticated, h.Status(gws[0].ID).State, "the neighbour keeps its connection")
		return sent.Load() >= n
	}, 120*time.Second, "the peer sent its frames")
	st := h.Status(hostile.ID)
	peak := peakHeap()
	grew := peak - min(peak, baseline)
	t.Logf("peer without a login: %d frames of %d B; hostile %s (%v); heap in use baseline %d MiB, peak %d MiB (+%d MiB)",
		sent.Load(), len(frame), st.State, ptrText(st.LastError), baseline>>20, peak>>20, grew>>20)
	assert.NotEqual(t, gatewayd.StateAuthenticated, st.State)
	assert.Less(t, grew, uint64(64<<20), "a peer that never logged in grew the heap by %d MiB", grew>>20)
}

func ptrText(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}
