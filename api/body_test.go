package api_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/api"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// paddedOrg is a valid organization body of n bytes: a short name and
// whitespace, so its size is what the edge reads, not what is stored.
func paddedOrg(name string, n int) string {
	b := `{"name":"` + name + `"`
	return b + strings.Repeat(" ", n-len(b)-1) + "}"
}

// A body past the first 8 KiB is read by the edge, not by fasthttp
// (StreamRequestBody; api/body.go): it is still whole before any handler,
// bounded by BodyLimit and the read timeout, logged once when it fails,
// and leaves a kept connection at the next request.
func TestStreamedBodies(t *testing.T) {
	const readTimeout = 2 * time.Second
	e := newEnv(t, api.Options{ReadTimeout: readTimeout})
	addr := e.serve()

	t.Run("a large body, then a pipelined request, on one connection", func(t *testing.T) {
		for _, size := range []int{8 << 10, 8<<10 + 1, 100 << 10, api.BodyLimit} {
			body := paddedOrg(fmt.Sprintf("big-%d", size), size)
			conn, err := net.Dial("tcp", addr)
			require.NoError(t, err)
			_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
			go func() {
				_, _ = io.WriteString(conn, request("POST", "/api/organizations", "application/json", body)+
					"GET /api/health HTTP/1.1\r\nHost: t\r\nX-Request-Id: after-the-body\r\n\r\n")
			}()
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			require.NoError(t, err)
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Equal(t, 201, resp.StatusCode, "%d bytes: %s", size, raw)
			assert.Contains(t, string(raw), fmt.Sprintf(`"name":"big-%d"`, size))
			resp, err = http.ReadResponse(br, nil)
			require.NoError(t, err, "%d bytes: the next request on the connection is answered", size)
			resp.Body.Close()
			assert.Equal(t, 200, resp.StatusCode)
			assert.Equal(t, "after-the-body", resp.Header.Get("X-Request-Id"))
			conn.Close()
		}
	})

	t.Run("chunked, in many chunks", func(t *testing.T) {
		r := rawPost(t, addr, "/api/organizations", paddedOrg("chunked-big", 300<<10), true)
		require.Equal(t, 201, r.status, string(r.body))
		r = rawPost(t, addr, "/api/organizations", paddedOrg("chunked-at-limit", api.BodyLimit), true)
		require.Equal(t, 201, r.status, string(r.body))
	})

	t.Run("Expect: 100-continue", func(t *testing.T) {
		body := paddedOrg("expected", 200<<10)
		conn, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		_, err = fmt.Fprintf(conn, "POST /api/organizations HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n", len(body))
		require.NoError(t, err)
		br := bufio.NewReader(conn)
		line, err := br.ReadString('\n')
		require.NoError(t, err)
		require.Contains(t, line, "100 Continue")
		_, err = br.ReadString('\n') // the blank line after it
		require.NoError(t, err)
		go func() { _, _ = io.WriteString(conn, body) }()
		resp, err := http.ReadResponse(br, nil)
		require.NoError(t, err)
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, 201, resp.StatusCode, string(raw))
	})

	t.Run("one that stops past 8 KiB is 408 at the read timeout", func(t *testing.T) {
		for _, head := range []string{
			"POST /api/organizations HTTP/1.1\r\nHost: t\r\nX-Request-Id: stalled-length\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n",
			// In a chunk, and at a chunk's end (before its CRLF).
			"POST /api/organizations HTTP/1.1\r\nHost: t\r\nX-Request-Id: stalled-chunked\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n8000\r\n",
			"POST /api/organizations HTTP/1.1\r\nHost: t\r\nX-Request-Id: stalled-chunk-end\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5000\r\n",
		} {
			r := exchange(t, addr, head+paddedOrg("stalled", 20<<10), 20*time.Second)
			assertEnvelope(t, r.response, 408, "REQUEST_TIMEOUT")
			assert.True(t, r.closed)
			assert.GreaterOrEqual(t, r.elapsed, readTimeout-100*time.Millisecond, "at the read timeout")
			l := e.loggedOnce(t, r.response)
			assert.Equal(t, "POST", l["method"])
			assert.Equal(t, "/api/organizations", l["path"])
			assert.GreaterOrEqual(t, l["duration_ms"], float64(readTimeout/time.Millisecond), "measured from the first byte")
		}
	})

	t.Run("one abandoned past 8 KiB is logged once, at once", func(t *testing.T) {
		for _, tc := range []struct{ id, head string }{
			{"gone-length", "Content-Length: 100000\r\n\r\n"},
			{"gone-chunked", "Transfer-Encoding: chunked\r\n\r\n5000\r\n"},
		} {
			conn, err := net.Dial("tcp", addr)
			require.NoError(t, err)
			_, err = io.WriteString(conn, "POST /api/organizations HTTP/1.1\r\nHost: t\r\nX-Request-Id: "+tc.id+
				"\r\nContent-Type: application/json\r\n"+tc.head+paddedOrg("gone", 20<<10))
			require.NoError(t, err)
			require.NoError(t, conn.Close())
			testutil.Eventually(t, func() bool { return len(e.accessLines(tc.id)) >= 1 }, readTimeout/2, "%s is logged before the read timeout", tc.id)
			lines := e.accessLines(tc.id)
			require.Len(t, lines, 1, tc.id)
			assert.EqualValues(t, 400, lines[0]["status"], tc.id)
			assert.Equal(t, "/api/organizations", lines[0]["path"], tc.id)
		}
	})

	t.Run("a chunked body past the limit is 413 without reading it all", func(t *testing.T) {
		// Chunks that announce more than the limit in all, and stop: the
		// refusal comes when the limit is passed, not at the read timeout.
		head := "POST /api/organizations HTTP/1.1\r\nHost: t\r\nX-Request-Id: chunked-over\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
		chunk := fmt.Sprintf("%x\r\n%s\r\n", 512<<10, strings.Repeat(" ", 512<<10))
		r := exchange(t, addr, head+chunk+chunk+"10\r\n"+strings.Repeat(" ", 16), 20*time.Second)
		assertEnvelope(t, r.response, 413, "PAYLOAD_TOO_LARGE")
		assert.True(t, r.closed)
		assert.Less(t, r.elapsed, readTimeout, "at once")
		e.loggedOnce(t, r.response)
	})

	t.Run("a length over the limit is 413 at once, before any byte of its body", func(t *testing.T) {
		r := exchange(t, addr, "POST /api/organizations HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"+
			fmt.Sprintf("Content-Length: %d\r\n\r\n", api.BodyLimit+1), 20*time.Second)
		assertEnvelope(t, r.response, 413, "PAYLOAD_TOO_LARGE")
		assert.True(t, r.closed)
		assert.Less(t, r.elapsed, readTimeout, "at once, not at the read timeout")
		e.loggedOnce(t, r.response)

		// With Expect: 100-continue, as before the edge read bodies: the
		// 100 (fasthttp's, before any hook can answer), then the 413.
		conn, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(readTimeout / 2))
		_, err = fmt.Fprintf(conn, "POST /api/organizations HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n", api.BodyLimit+1)
		require.NoError(t, err)
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		require.NoError(t, err)
		require.Equal(t, 100, resp.StatusCode)
		resp, err = http.ReadResponse(br, nil)
		require.NoError(t, err, "the 413 comes at once, before the read timeout")
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assertEnvelope(t, response{status: resp.StatusCode, header: resp.Header, body: raw}, 413, "PAYLOAD_TOO_LARGE")
		assert.True(t, resp.Close)
	})
}
