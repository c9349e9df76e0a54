package actors_test

// (Checked by an audit, helper 10, whose test this is.) A gateway that logs in, answers its
// discovery and subscription, and hangs up, again and again (connection
// churn), leaves no goroutine behind per connection. What it would
// catch: a reader, dial, timer or ping goroutine that outlives its
// connection: the goroutine count would grow with the number of logins. (The real binary, 40 such
// gateways for 2 minutes, 3,047 logins: go_goroutines 87 -> 86, RSS +10
// MiB; see the audit report.)

import (
	goruntime "runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"

	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

var churnMore = 600

func TestChurningGatewayLeavesNothingBehind(t *testing.T) {
	if testutil.OwnProcess(t) {
		return
	}
	cfg := actorstest.FastConfig()
	cfg.BackoffInitial, cfg.BackoffMax = 10*time.Millisecond, 20*time.Millisecond
	h := actorstest.New(t, tmpl, cfg)
	var logins atomic.Int64
	url := actorstest.ServePeer(t, func(ws *websocket.Conn) {
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if answerLogin(func(m []byte) { _ = ws.WriteMessage(websocket.TextMessage, m) }, b, emptyList) {
				logins.Add(1)
				return // hang up
			}
		}
	})
	for i := range 4 {
		addRawGateway(t, h, "churn-"+string(rune('a'+i)), url)
	}
	testutil.Eventually(t, func() bool { return logins.Load() >= 40 }, 60*time.Second, "40 logins")
	g0, heap0, logs0 := goruntime.NumGoroutine(), liveHeap(), len(h.Logs.String())
	n0 := logins.Load()
	testutil.Eventually(t, func() bool { return logins.Load() >= n0+int64(churnMore) }, 300*time.Second, "more logins")
	// Sample a few times: a connection in flight has its goroutines.
	var g1 int
	var heap1 uint64
	g1, heap1 = 1<<30, 1<<62
	for range 5 {
		g1, heap1 = min(g1, goruntime.NumGoroutine()), min(heap1, liveHeap())
	}
	// The harness keeps every log line (and every state change) in memory:
	// what they grew by is the test's, not the runtime's.
	logs := len(h.Logs.String()) - logs0
	t.Logf("after %d logins: goroutines %d, live heap %d KiB; after %d more: %d, %d KiB (the harness's log buffer +%d KiB)",
		n0, g0, heap0>>10, logins.Load()-n0, g1, heap1>>10, logs>>10)
	assert.LessOrEqual(t, g1, g0+20, "goroutines grew with the logins")
	// The live heap does grow, ~2.6 KiB a login, but a heap profile puts
	// all of it in the event broker's ring (events.DefaultRingSize, 10,000
	// events: bounded) and the harness's own record of every state change
	// (actorstest.Signal), not in the runtime; the real binary's RSS rose
	// 10 MiB over 3,047 logins. So only the goroutines are asserted here.
	_ = heap1
}
