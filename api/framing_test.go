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
)

// smuggled: what comes back for first, a request whose body is itself a
// request; the answers' ids in order.
func smuggled(t *testing.T, addr, first string) []string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	go func() { _, _ = io.WriteString(conn, first) }()
	br := bufio.NewReader(conn)
	var ids []string
	for {
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return ids
		}
		_, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		ids = append(ids, fmt.Sprintf("%d %s", resp.StatusCode, resp.Header.Get("X-Request-Id")))
	}
}

// RFC 9112 §6.3 (quoted by api/edge.go's framingConflict): "If a
// Transfer-Encoding header field is present in a request and the chunked
// transfer coding is not the final encoding, the message body length
// cannot be determined reliably; the server MUST respond with the 400 (Bad
// Request) status code and then close the connection." fasthttp ignored
// "Transfer-Encoding: identity" (no body) and took any other coding for
// chunked, and the request after the head was served. Now each is 400 and
// the connection closed; one chunked still reads its body. (Found by an
// audit, helper 12, whose test this is.)
func TestTransferEncodingNotChunkedIsRefusedAndClosed(t *testing.T) {
	e := newEnv(t, api.Options{ReadTimeout: 3 * time.Second})
	addr := e.serve()
	for _, tc := range []struct{ te, body string }{
		{"identity", ""},
		{"gzip", "2\r\n{}\r\n0\r\n\r\n"},
		{"chunked, identity", "2\r\n{}\r\n0\r\n\r\n"},
		{"gzip, chunked", "2\r\n{}\r\n0\r\n\r\n"},
	} {
		t.Run(tc.te, func(t *testing.T) {
			id := "smuggled-" + strings.ReplaceAll(tc.te, " ", "")
			inner := "GET /api/health HTTP/1.1\r\nHost: t\r\nX-Request-Id: " + id + "\r\n\r\n"
			req := "POST /api/organizations HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: " + tc.te + "\r\n\r\n" + tc.body + inner
			ids := smuggled(t, addr, req)
			require.NotEmpty(t, ids)
			assert.Regexp(t, `^400 `, ids[0], "Transfer-Encoding %q: 400", tc.te)
			assert.Len(t, ids, 1, "Transfer-Encoding %q: the connection is closed after the 400, nothing after the head served: %v", tc.te, ids)
			assert.Empty(t, e.accessLines(id), "Transfer-Encoding %q: the request after the head is not served", tc.te)
		})
	}
	// One chunked coding, in any case, is a body like any other, and the
	// connection stays for the next request.
	body := `{"name":"chunked"}`
	inner := "GET /api/health HTTP/1.1\r\nHost: t\r\nX-Request-Id: after-chunked\r\n\r\n"
	ids := smuggled(t, addr, "POST /api/organizations HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: Chunked\r\n\r\n"+
		fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body), body)+inner)
	require.Len(t, ids, 2, "%v", ids)
	assert.Regexp(t, `^201 `, ids[0])
	assert.Equal(t, "200 after-chunked", ids[1])
}
