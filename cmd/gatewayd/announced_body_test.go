package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/internal/testutil"
)

// heapOf reads the live heap (after a collection) of a gatewayd serving
// pprof on debug.
func heapOf(t *testing.T, debug string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + debug + "/debug/pprof/heap?debug=1&gc=1")
	require.NoError(t, err)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "# HeapAlloc = "); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err)
			return f
		}
	}
	t.Fatal("no HeapAlloc in the heap profile")
	return 0
}

// A request body is at most 1 MiB (API.md §3) and must arrive within 10 s
// (README, "Read timeout"), but fasthttp allocated the whole announced
// Content-Length as soon as it had read the head, before any byte of the
// body, any route, any Content-Type check and any token check. A client
// without a token that sent only heads announcing 1 MiB made gatewayd hold
// 1 MiB per connection for the read timeout, again and again: ~100 bytes
// sent pinned 1 MiB, so API_MAX_CONNECTIONS (4,096) such connections
// pinned ~4 GiB. A body now costs what has arrived (api/body.go).
// (Found by an audit, helper 2, whose test this is.)
func TestAnnouncedBodiesDoNotPinMemoryBeforeTheyArrive(t *testing.T) {
	t.Parallel()
	_, env := migrated(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	debug := ln.Addr().String()
	require.NoError(t, ln.Close())
	gw := startServe(t, append(env, "DEBUG_ADDR="+debug)) // access control on: the client has no token
	before := heapOf(t, debug)

	const conns = 64
	sent := 0
	var cs []net.Conn
	for range conns {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", gw.port))
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		cs = append(cs, c)
		head := "POST /api/organizations HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n{"
		_, err = io.WriteString(c, head)
		require.NoError(t, err)
		sent += len(head)
	}
	// The heads are read at once; the bodies never come (408 at 10 s).
	var grown float64
	testutil.Poll(func() bool {
		grown = max(grown, heapOf(t, debug)-before)
		return grown > float64(conns<<20)*0.9
	}, 5*time.Second)
	t.Logf("%d heads announcing 1 MiB (%d bytes sent): live heap grew %.1f MiB", conns, sent, grown/(1<<20))
	const bound = 16 << 20
	require.Less(t, grown, float64(bound),
		"%d connections that sent %d bytes in all (heads announcing 1 MiB bodies, no token) hold %.0f MiB of gatewayd's live heap until the 10 s read timeout (bound: %d MiB); at API_MAX_CONNECTIONS (4,096): ~%.0f MiB",
		conns, sent, grown/(1<<20), bound>>20, grown/conns*4096/(1<<20))

	// The server is reading those bodies all the while: one that arrives
	// whole is answered (401: no token), and its connection kept.
	c := cs[0]
	_, err = io.WriteString(c, `"name":"`+strings.Repeat("x", 1048576-len(`{"name":""}`))+`"}`)
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(30*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	require.Equal(t, 401, resp.StatusCode)
	require.False(t, resp.Close, "the whole body was read: the connection is kept")
}
