package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/internal/testutil"
)

// settledHeap is heapOf after two collections: what a sync.Pool keeps
// (encoding/json's buffers, as large as the largest answer encoded) lasts
// one collection more, and is no answer's.
func settledHeap(t *testing.T, debug string) float64 {
	t.Helper()
	heapOf(t, debug)
	return heapOf(t, debug)
}

// unreadRequests sends path on conns connections with a tiny receive
// window and never reads the answers.
func unreadRequests(t *testing.T, port, conns int, path string) {
	t.Helper()
	for range conns {
		d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
			return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		}}
		c, err := d.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		_, err = io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: t\r\n\r\n")
		require.NoError(t, err)
	}
}

// "A hostile client harms only itself". The waveform and spectrum answers
// were held under api.AnswerBudget, but every other answer was built whole
// in memory and held until fasthttp had written it, up to the 30 s write
// timeout. GET /api/gateways/status is not paged (API.md §4: "every
// matching gateway, not paged"), so its answer grows with the fleet; a
// viewer that asked for it on many connections and read none made
// gatewayd hold one whole copy per connection (24 held 55 MiB), without
// bound but API_MAX_CONNECTIONS. (Found by an audit, helper 2, whose test
// this is.) Answers of api.HeldAnswerMin bytes or more are now held under
// api.JSONBudget, a quarter of it per client.
func TestStatusListsAClientDoesNotReadAreBoundedInMemory(t *testing.T) {
	t.Parallel()
	dbURL, env := migrated(t)

	// A fleet of 4,000 gateways, disconnected (nothing is dialed), with
	// very long names (1,200 characters): a status list of ~6 MB, what a
	// fleet of ~18,000 gateways with ordinary names makes.
	const fleet = 4000
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `WITH f AS (
		INSERT INTO factories (organization_id, name) SELECT id, 'F' FROM organizations LIMIT 1 RETURNING id)
	INSERT INTO gateways (factory_id, gateway_id, name, url, email, password_encrypted, desired_state)
	SELECT f.id, 'gw-' || i, repeat('n', 1200) || i, 'ws://127.0.0.1:9/gw', 'e@example.com', 'v1:AAAA', 'DISCONNECTED'
	FROM f, generate_series(1, $1) AS i`, fleet)
	require.NoError(t, err)
	require.NoError(t, conn.Close(ctx))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	debug := ln.Addr().String()
	require.NoError(t, ln.Close())
	gw := startServe(t, append(env, "AUTH_ENABLED=false", "DEBUG_ADDR="+debug))
	base := fmt.Sprintf("http://127.0.0.1:%d", gw.port)
	testutil.Eventually(t, func() bool {
		resp, err := http.Get(base + "/api/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, 60*time.Second, "ready")

	// One honest read: how large the answer is.
	const path = "/api/gateways/status"
	resp, err := http.Get(base + path)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode, string(body[:min(len(body), 300)]))
	// Over the 4 MiB the kernel may take into a loopback connection's
	// buffers: an unread answer stays in gatewayd's heap (at 2.4 MB, as
	// the audit had it, the kernel took whole answers on a quiet box).
	require.Greater(t, len(body), 5<<20, "the fleet's status list is over 5 MiB")
	before := settledHeap(t, debug)

	// The hostile viewer: 24 requests, a small receive window, nothing read.
	const conns = 24
	unreadRequests(t, gw.port, conns, path)
	// Each request is logged once its answer is made (or refused), before
	// it is written: wait until all of them are, then look at the heap.
	testutil.Eventually(t, func() bool { return strings.Count(gw.logs.String(), `"path":"`+path+`"`) >= 1+conns },
		2*time.Minute, "every request was answered")
	grown := settledHeap(t, debug) - before
	refused := strings.Count(gw.logs.String(), `"path":"`+path+`","status":503`)
	t.Logf("%d of %d unread requests refused (503)", refused, conns)

	// Meanwhile a well-behaved client is still served promptly.
	start := time.Now()
	hr, err := http.Get(base + "/api/health")
	require.NoError(t, err)
	hr.Body.Close()
	require.Equal(t, 200, hr.StatusCode)
	t.Logf("health answered in %v; status list %d bytes; heap grew %.1f MiB with %d unread answers",
		time.Since(start), len(body), grown/(1<<20), conns)

	const bound = 32 << 20 // twice a client's share of api.JSONBudget
	require.Less(t, grown, float64(bound),
		"%d status lists (%d bytes each) one client does not read hold %.0f MiB of gatewayd's live heap for up to the 30 s write timeout (bound: %d MiB); one client on API_MAX_CONNECTIONS (4,096) connections holds ~%.0f MiB",
		conns, len(body), grown/(1<<20), bound>>20, grown/conns*4096/(1<<20))

	// Another client (another address) gets the status list meanwhile.
	other := &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext}}
	resp, err = other.Get(base + path)
	require.NoError(t, err)
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode, "%.300s", got)
	require.Greater(t, len(got), 5<<20)
}
