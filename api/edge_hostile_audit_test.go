package api_test

// Audit, helper 4: the HTTP edge under hostile clients.

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/api"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// postOver POSTs n times from client and tallies the answers' statuses
// and the transport errors (a request that got no answer at all).
func postOver(t *testing.T, client *http.Client, url string, n int) (map[int]int, []string) {
	t.Helper()
	got := map[int]int{}
	var errs []string
	for range n {
		resp, err := client.Post(url, "application/json", strings.NewReader(`{"name":"`+strings.Repeat("x", 2000)+`"}`))
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		got[resp.StatusCode]++
	}
	return got, errs
}

// README (API_MAX_CONNECTIONS_PER_CLIENT): "past it a new connection is
// answered 429 TOO_MANY_REQUESTS (the error envelope, ...) once its
// request's first bytes arrive (at most 0.5 s)". The refusals that wait
// for their request share 64 slots (maxRefusing) among all clients; past
// them the 429 is written the moment the connection is accepted, before
// the request, which is what helper 11 found makes Go's client fail with
// a transport error instead of seeing the 429. One hostile address that
// opens over-share connections and sends nothing (64 a second is enough)
// takes every slot, so every other client over its share gets the
// immediate answer: the hostile client degrades the others' refusals.
// Would catch: refusal slots that one client can take from the others.
func TestOneClientCannotTakeTheOthersRefusals(t *testing.T) {
	e := newEnv(t, api.Options{MaxConnections: 1000, MaxClientConnections: 1})
	addr := e.serve()
	const bad, victim = "127.0.0.60", "127.0.0.61"
	_, code := keepAliveFrom(t, bad, addr)
	require.Equal(t, http.StatusOK, code)
	_, code = keepAliveFrom(t, victim, addr)
	require.Equal(t, http.StatusOK, code)

	// The hostile client: over-share connections that send nothing and
	// never close, kept at 100 open at once.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var opened atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := dialerFrom(bad).Dial("tcp", addr)
				if err != nil {
					continue
				}
				opened.Add(1)
				go func() {
					_ = c.SetDeadline(time.Now().Add(2 * time.Second))
					_, _ = io.Copy(io.Discard, c)
					_ = c.Close()
				}()
				time.Sleep(20 * time.Millisecond) // 4 × 50 a second
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	// The hostile client has opened more than the 64 slots, and holds all
	// the slots it can (every one of them before the fix, its quarter
	// after).
	testutil.Eventually(t, func() bool { return opened.Load() > 100 && api.Refusing(e.app) >= 16 }, 10*time.Second,
		"the hostile client's refusals take every slot they can")

	client := &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: dialerFrom(victim).DialContext, DisableKeepAlives: true}}
	got, errs := postOver(t, client, "http://"+addr+"/api/organizations", 40)
	require.Empty(t, errs, "another client over its share is answered 429, not a transport error (answers: %v)", got)
	require.Equal(t, map[int]int{http.StatusTooManyRequests: 40}, got)
}

// README: "Past API_MAX_CONNECTIONS new connections get 503 and are
// closed"; API.md: every error has one shape, and responses carry an
// X-Request-Id and the security headers. fasthttp's own 503 is written
// the moment the connection is accepted, before the request, in plain
// text, and the connection closed with the request unread: the failure
// helper 11 fixed for the per-client 429. A Go client sees a transport
// error ("Unsolicited response received on idle HTTP channel", or a
// reset) instead of the 503, so it cannot tell "full, retry later" from
// "server gone".
// Would catch: connections past API_MAX_CONNECTIONS that get no answer a
// client can read.
func TestPastMaxConnectionsAClientReads503(t *testing.T) {
	const limit = 4
	e := newEnv(t, api.Options{MaxConnections: limit, MaxClientConnections: 1})
	addr := e.serve()
	for _, from := range []string{"127.0.0.62", "127.0.0.63", "127.0.0.64", "127.0.0.65"} {
		_, code := keepAliveFrom(t, from, addr)
		require.Equal(t, http.StatusOK, code)
	}
	client := &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: dialerFrom("127.0.0.66").DialContext, DisableKeepAlives: true}}
	got, errs := postOver(t, client, "http://"+addr+"/api/organizations", 40)
	require.Empty(t, errs, "a client past API_MAX_CONNECTIONS is answered 503, not a transport error (answers: %v)", got)
	require.Equal(t, map[int]int{http.StatusServiceUnavailable: 40}, got)
}
