package api_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/api"
)

// README's error table: 408 REQUEST_TIMEOUT (a request that does not
// arrive whole within the read timeout) and 505 HTTP_VERSION_NOT_SUPPORTED
// can come from any route, as 431 can; the document lists them on every
// operation, with their codes. (Found by an audit, helper 3.)
func TestEdgeAnswersAreDocumented(t *testing.T) {
	e := newEnv(t, api.Options{ReadTimeout: 300 * time.Millisecond})
	doc := loadSpec(t, e)
	addr := e.serve()

	raw := func(req string) response {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer c.Close()
		_, err = c.Write([]byte(req))
		require.NoError(t, err)
		require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return response{status: resp.StatusCode, header: resp.Header, body: body}
	}
	// A body shorter than its Content-Length: 408 once the read timeout passes.
	r := raw("POST /api/organizations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"name\":")
	require.Equal(t, 408, r.status)
	assert.Empty(t, doc.conformance("POST", "/api/organizations", r))

	r = raw("GET /api/health HTTP/2.0\r\nHost: x\r\n\r\n")
	require.Equal(t, 505, r.status)
	assert.Empty(t, doc.conformance("GET", "/api/health", r))

	// Every operation lists both.
	for path, ops := range doc.raw["paths"].(map[string]any) {
		for method, op := range ops.(map[string]any) {
			for _, status := range []int{408, 505} {
				assert.NotNil(t, doc.response(op.(map[string]any), status), "%s %s lists no %d", method, path, status)
			}
		}
	}
}
