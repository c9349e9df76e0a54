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

	"github.com/ctcgw/gatewayd/internal/logging"
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

// The same for the answers given while serve starts (serveStarting): a
// standby, waiting for another gatewayd to stop, may answer for hours,
// and its fasthttp allocated a whole announced Content-Length, up to its
// default 4 MiB, at the head of every request. A body costs what arrives
// there too, and one that does arrive still gets its 503.
func TestAStandbyDoesNotPinAnnouncedBodies(t *testing.T) {
	t.Parallel()
	dbURL := tmpl.New(t)
	env := []string{"DATABASE_URL=" + dbURL, "ENCRYPTION_KEY=" + key, "AUTH_ENABLED=false"}
	startServe(t, env)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	debug := ln.Addr().String()
	require.NoError(t, ln.Close())
	second := startServeUntil(t, logging.APIStarting, append(env, "DEBUG_ADDR="+debug))
	testutil.Eventually(t, func() bool { return strings.Contains(second.logs.String(), "waiting for it to stop") }, 20*time.Second,
		"the second waits")
	addr := fmt.Sprintf("127.0.0.1:%d", second.port)

	// A body that arrives is answered, whole or chunked.
	body := `{"name":"` + strings.Repeat("x", 500<<10) + `"}`
	for _, chunked := range []bool{false, true} {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		head := "POST /api/organizations HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
		if chunked {
			head += "Transfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body), body)
		} else {
			head += fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body)
		}
		go func() { _, _ = io.WriteString(c, head) }()
		require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		require.NoError(t, err, "chunked=%v", chunked)
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		c.Close()
		require.Equal(t, 503, resp.StatusCode, "chunked=%v: %s", chunked, raw)
		require.Contains(t, string(raw), "gatewayd is starting")
	}

	// Heads announcing 4 MiB, and a byte: each is held for the starting
	// server's 1 s read timeout, in which the heap is read.
	before := heapOf(t, debug)
	const conns = 64
	start := time.Now()
	for range conns {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		_, err = io.WriteString(c, "POST /api/organizations HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 4194304\r\n\r\n{")
		require.NoError(t, err)
	}
	var grown float64
	for i := 0; i < 3 || time.Since(start) < 700*time.Millisecond; i++ {
		grown = max(grown, heapOf(t, debug)-before)
	}
	t.Logf("%d heads announcing 4 MiB: a standby's live heap grew %.1f MiB at most", conns, grown/(1<<20))
	require.Less(t, grown, float64(16<<20), "%d heads announcing 4 MiB hold %.0f MiB of a standby's live heap for its 1 s read timeout",
		conns, grown/(1<<20))
}
