package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/internal/logging"
)

// dbGate stands between gatewayd and PostgreSQL: while shut it closes
// every connection at once (a database that is down), once open it
// forwards them.
type dbGate struct {
	ln     net.Listener
	target string
	open   atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newDBGate(t *testing.T, target string) *dbGate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	g := &dbGate{ln: ln, target: target}
	g.wg.Add(1)
	go g.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		g.mu.Lock()
		for _, c := range g.conns {
			_ = c.Close()
		}
		g.mu.Unlock()
		g.wg.Wait()
	})
	return g
}

func (g *dbGate) accept() {
	defer g.wg.Done()
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		if !g.open.Load() {
			_ = c.Close()
			continue
		}
		up, err := net.Dial("tcp", g.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		g.mu.Lock()
		g.conns = append(g.conns, c, up)
		g.mu.Unlock()
		g.wg.Add(2)
		go func() { defer g.wg.Done(); _, _ = io.Copy(up, c); _ = up.Close() }()
		go func() { defer g.wg.Done(); _, _ = io.Copy(c, up); _ = c.Close() }()
	}
}

// While serve waits for its database, the port answers: health 200 with
// the database unreachable (liveness), ready and every other route 503
// SERVICE_UNAVAILABLE. Clients once hung on the bound port for up to the
// 30 s of that wait. Once the database answers, the API proper takes the
// port over.
func TestAnswersWhileWaitingForTheDatabase(t *testing.T) {
	t.Parallel()
	dbURL := tmpl.New(t)
	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	gate := newDBGate(t, u.Host)
	u.Host = gate.ln.Addr().String()
	gw := startServeUntil(t, logging.APIStarting, []string{"DATABASE_URL=" + u.String(), "ENCRYPTION_KEY=" + key})
	base := fmt.Sprintf("http://127.0.0.1:%d", gw.port)

	res, err := http.Get(base + "/api/health")
	require.NoError(t, err)
	var health struct {
		Status   string
		Database string
		Gateways struct{ Total, Authenticated int }
	}
	require.NoError(t, json.NewDecoder(res.Body).Decode(&health))
	_ = res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "ok", health.Status)
	assert.Equal(t, "unreachable", health.Database)
	assert.True(t, res.Close, "answers close their connection")

	for _, path := range []string{"/api/ready", "/api/gateways", "/"} {
		res, err := http.Get(base + path)
		require.NoError(t, err, path)
		var body struct{ Error struct{ Code string } }
		require.NoError(t, json.NewDecoder(res.Body).Decode(&body), path)
		_ = res.Body.Close()
		assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode, path)
		assert.Equal(t, "SERVICE_UNAVAILABLE", body.Error.Code, path)
		assert.Equal(t, "1", res.Header.Get("Retry-After"), path)
	}
	assert.False(t, logging.Listening(gw.logs.String(), fmt.Sprintf("127.0.0.1:%d", gw.port)), "still waiting for the database")

	gate.open.Store(true)
	require.True(t, gw.logged(t, logging.APIListening, 20*time.Second), "exited:\n%s", gw.logs)
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := http.Get(base + "/api/ready")
		require.NoError(t, err)
		_ = res.Body.Close()
		if res.StatusCode == http.StatusOK {
			break
		}
		require.True(t, time.Now().Before(deadline), "not ready: %d", res.StatusCode)
		time.Sleep(20 * time.Millisecond)
	}
	res, err = http.Get(base + "/api/gateways")
	require.NoError(t, err)
	_ = res.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode, "the API proper, with its authentication")
}
