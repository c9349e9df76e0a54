package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/internal/logging"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// (Checked by an audit, helper 16, whose test this is.) README "Start":
// while the database is waited for the port answers, and
// "once the database answers and the runtime starts, the API proper takes
// the port over"; starting.go: "no client is refused in between". Clients
// hammering health across the hand-over each get an answer: no refused,
// reset or unanswered connection.
func TestHandOverLosesNoClient(t *testing.T) {
	t.Parallel()
	dbURL := tmpl.New(t)
	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	gate := newDBGate(t, u.Host)
	u.Host = gate.ln.Addr().String()
	gw := startServeUntil(t, logging.APIStarting, []string{"DATABASE_URL=" + u.String(), "ENCRYPTION_KEY=" + key,
		"API_MAX_CONNECTIONS_PER_CLIENT=1000"})
	base := fmt.Sprintf("http://127.0.0.1:%d/api/health", gw.port)

	var stop atomic.Bool
	var ok, starting atomic.Int64
	var mu sync.Mutex
	var failures []string
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
			for !stop.Load() {
				res, err := c.Get(base)
				if err != nil {
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
					continue
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%d %s", res.StatusCode, b))
					mu.Unlock()
					continue
				}
				if strings.Contains(string(b), `"unreachable"`) {
					starting.Add(1)
				}
				ok.Add(1)
			}
		}()
	}
	testutil.Eventually(t, func() bool { return ok.Load() >= 50 }, 20*time.Second, "answers while starting")
	gate.open.Store(true)
	require.True(t, gw.logged(t, logging.APIListening, 30*time.Second), "exited:\n%s", gw.logs)
	after := ok.Load()
	testutil.Eventually(t, func() bool { return ok.Load() >= after+200 }, 20*time.Second, "answers after the hand-over")
	stop.Store(true)
	wg.Wait()
	t.Logf("%d answers, %d while starting", ok.Load(), starting.Load())
	assert.Positive(t, starting.Load())
	assert.Empty(t, failures, "every client answered across the hand-over")
}
