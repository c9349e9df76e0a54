package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/internal/testutil"
)

// The mission: a hostile client harms only itself, and everything gatewayd
// holds for a request ends with it. api/edge.go kept, per request with a
// body, its request line in a map keyed by fasthttp's pooled
// *RequestHeader, put when the header was read (headerReceived) and taken
// when the body was read (screen) or failed (readFailed). A request with
// "Expect: 100-continue" whose client was gone before the "100 Continue"
// was written skipped both (fasthttp just drops the connection): the entry
// stayed, and its key kept the whole pooled RequestCtx alive after
// sync.Pool let go of it. A client without any token that sent such
// headers and reset the connection leaked ~1 KiB a connection, for ever,
// and none of these requests got the access-log line every request gets.
// (Found by an audit, helper 2, whose test this is.)
func TestAbandonedExpectContinueRequestsLeakNothing(t *testing.T) {
	t.Parallel()
	_, env := migrated(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	debug := ln.Addr().String()
	require.NoError(t, ln.Close())
	gw := startServe(t, append(env, "DEBUG_ADDR="+debug)) // access control on: the client has no token
	addr := fmt.Sprintf("127.0.0.1:%d", gw.port)

	// The live heap, after a collection (pprof's gc=1 on DEBUG_ADDR).
	heap := func() float64 {
		t.Helper()
		var v float64
		for range 2 { // twice: sync.Pool lets go of what it holds over two collections
			resp, err := http.Get("http://" + debug + "/debug/pprof/heap?debug=1&gc=1")
			require.NoError(t, err)
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				if s, ok := strings.CutPrefix(sc.Text(), "# HeapAlloc = "); ok {
					v, err = strconv.ParseFloat(s, 64)
					require.NoError(t, err)
				}
			}
			resp.Body.Close()
		}
		require.NotZero(t, v, "no HeapAlloc in the heap profile")
		return v
	}
	head := "POST /api/organizations HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r"
	wave := func() {
		t.Helper()
		conns := make([]*net.TCPConn, 0, 200)
		for range 200 {
			c, err := net.Dial("tcp", addr)
			require.NoError(t, err)
			tc := c.(*net.TCPConn)
			require.NoError(t, tc.SetLinger(0)) // close sends a reset
			_, err = tc.Write([]byte(head))     // all of the head but its last byte
			require.NoError(t, err)
			conns = append(conns, tc)
		}
		// The head's last byte and, right behind it, the reset: gatewayd
		// reads a whole head whose client is gone.
		for _, c := range conns {
			_, _ = c.Write([]byte("\n"))
			_ = c.Close()
		}
	}
	wave() // warms fasthttp's pools
	wave()
	before := heap()
	for range 15 {
		wave()
		// Each wave's connections end; a new wave then finds pools
		// emptied by the collections heap() makes.
		heap()
	}
	// The connections are gone on gatewayd's side too once it has no
	// open connection but the pprof ones (which are on DEBUG_ADDR).
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + addr + "/api/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	}, 10*time.Second, 20*time.Millisecond)
	grown := heap() - before
	t.Logf("live heap grew %.0f KiB over 3,000 abandoned requests", grown/1024)
	require.Less(t, grown, float64(512<<10),
		"3,000 requests abandoned before their 100 Continue leave %.0f KiB in gatewayd's live heap", grown/1024)
	// Every request is logged once: these as the failed body reads they
	// are (or, had the reset come after "100 Continue", that read's 400).
	const requests = 17 * 200
	line := `"method":"POST","path":"/api/organizations","status":400`
	testutil.Eventually(t, func() bool { return strings.Count(gw.logs.String(), line) >= requests },
		10*time.Second, "every abandoned request is logged")
	require.Equal(t, requests, strings.Count(gw.logs.String(), `"path":"/api/organizations"`), "requests logged")
}
