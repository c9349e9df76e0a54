package main

import (
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/ctc/ctctest"
	"github.com/ctcgw/gatewayd/internal/logging"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// silentGate forwards connections to PostgreSQL until partition: from then
// on nothing passes either way and no reset reaches gatewayd (its sockets
// stay open and silent), while PostgreSQL's side of every connection is
// ended, as the server's TCP keepalive ends the sessions of a peer it can
// no longer reach (tcp_keepalives_idle, README "One instance per
// database"). New connections are accepted and never answered.
type silentGate struct {
	ln     net.Listener
	target string
	cut    atomic.Bool
	mu     sync.Mutex
	up     []net.Conn // gate → PostgreSQL
	down   []net.Conn // gatewayd → gate
	wg     sync.WaitGroup
}

func newSilentGate(t *testing.T, target string) *silentGate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	g := &silentGate{ln: ln, target: target}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			g.mu.Lock()
			g.down = append(g.down, c)
			g.mu.Unlock()
			if g.cut.Load() {
				continue // held, never answered
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			g.mu.Lock()
			g.up = append(g.up, up)
			g.mu.Unlock()
			g.wg.Add(2)
			go g.pipe(up, c, false)
			go g.pipe(c, up, true)
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		g.mu.Lock()
		for _, c := range append(g.up, g.down...) {
			_ = c.Close()
		}
		g.mu.Unlock()
		g.wg.Wait()
	})
	return g
}

// pipe copies src to dst while the gate is not cut. toClient: dst is
// gatewayd's side, which is never closed by the gate.
func (g *silentGate) pipe(dst, src net.Conn, toClient bool) {
	defer g.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !g.cut.Load() {
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			if !toClient && !g.cut.Load() {
				_ = dst.Close()
			}
			if toClient && !g.cut.Load() {
				_ = dst.Close()
			}
			return
		}
	}
}

// partition cuts the network silently and ends PostgreSQL's side of
// every session (its keepalive giving up on the unreachable peer).
func (g *silentGate) partition() {
	g.cut.Store(true)
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range g.up {
		_ = c.Close()
	}
}

// README, "One instance per database": one process runs a database's
// gateways; the lock exists because a second process "opened a second
// socket to every gateway". For a silent partition README says the
// standby "does not take over in that time" (the server's TCP keepalive,
// tcp_keepalives_idle), and the running process "keeps its gateways".
// Once the server's keepalive did end the running process's sessions
// (here at once), the standby took the lock, waited its grace and dialled
// every gateway, while the running process, whose lock check had no
// deadline, never learned it lost the lock and kept its sockets: every
// gateway had two live connections, for as long as the partition lasted.
// (Found by an audit, helper 10, whose test this is.) Now the running
// process, having seen the standby wait, stands down when its check goes
// unanswered.
func TestSilentPartitionLeavesOneConnectionPerGateway(t *testing.T) {
	t.Parallel()
	sim, err := ctctest.NewServer("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(sim.Close)
	sg := sim.Add("gw-1", ctctest.Config{Email: "e@example.com", Password: "p"})
	dbURL := tmpl.New(t)
	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	gate := newSilentGate(t, u.Host)
	u.Host = gate.ln.Addr().String()
	first := startServe(t, []string{"DATABASE_URL=" + u.String(), "ENCRYPTION_KEY=" + key, "AUTH_ENABLED=false"})
	registerGateway(t, first.port, sg)
	second := startServeUntil(t, logging.APIStarting, []string{"DATABASE_URL=" + dbURL, "ENCRYPTION_KEY=" + key, "AUTH_ENABLED=false"})
	testutil.Eventually(t, func() bool { return strings.Contains(second.logs.String(), "waiting for it to stop") }, 20*time.Second,
		"the second waits")
	testutil.Eventually(t, func() bool { return strings.Contains(first.logs.String(), logging.StandbyWaits) }, 20*time.Second,
		"the first sees it wait")

	gate.partition()
	require.True(t, second.logged(t, logging.APIListening, 30*time.Second), "the standby took over:\n%s", second.logs)
	testutil.Eventually(t, func() bool { return sg.Stats().Logins >= 2 }, 20*time.Second, "the standby logs in")
	// The first has had the standby's grace (5 s) to stand down; it is
	// given 20 s more.
	testutil.Poll(func() bool { return sg.Stats().Open == 1 }, 20*time.Second)
	assert.Equal(t, 1, sg.Stats().Open, "one live connection to the gateway once the standby runs it; first still running: %v\nfirst:\n%s",
		first.cmd.ProcessState == nil, tail(first.logs.String(), 2000))
}

func tail(s string, n int) string { return s[max(0, len(s)-n):] }
