package api_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/api"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// keepAliveFrom opens a keep-alive connection from the address from and
// asks GET /api/health on it; it returns the connection (left open) and
// the answer's status.
func keepAliveFrom(t *testing.T, from, addr string) (net.Conn, int) {
	t.Helper()
	c, err := dialerFrom(from).Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = io.WriteString(c, "GET /api/health HTTP/1.1\r\nHost: t\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return c, 0 // refused before a request was read: reset
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusTooManyRequests {
		var e struct{ Error struct{ Code string } }
		require.NoError(t, json.Unmarshal(b, &e), "%s", b)
		assert.Equal(t, "TOO_MANY_REQUESTS", e.Error.Code)
		assert.True(t, resp.Close, "Connection: close")
	}
	return c, resp.StatusCode
}

// "A hostile client harms only itself": one client address that opened
// API_MAX_CONNECTIONS keep-alive connections (each asked GET /api/health
// once, no token needed, then left idle: held for the 2 min idle timeout,
// renewed by one request a connection) left no connection for anyone
// else: another client got fasthttp's 503 "Server.Concurrency limit
// exceeded". With the real binary at the default 4,096: 4,000 idle
// connections from one address held RSS 30 → 124 MB. (Found by an audit,
// helper 3, whose test this is.) One address now holds at most a quarter.
func TestOneClientCannotTakeEveryConnection(t *testing.T) {
	const limit = 16
	e := newEnv(t, api.Options{MaxConnections: limit})
	addr := e.serve()
	served := 0
	for range limit {
		if _, code := keepAliveFrom(t, "127.0.0.2", addr); code == http.StatusOK {
			served++
		}
	}
	assert.Equal(t, limit/4, served, "one address's share: a quarter of API_MAX_CONNECTIONS")
	// Another client, another address.
	d := dialerFrom("127.0.0.3")
	other := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
	resp, b := getFrom(t, other, "http://"+addr+"/api/health")
	assert.Equal(t, 200, resp.StatusCode,
		"another client is served while one address holds idle keep-alive connections: got %d %q", resp.StatusCode, b)
}

// A client's share comes back as its connections close, and its event
// streams count against it for as long as they run.
func TestAClientsShareCountsStreamsAndComesBack(t *testing.T) {
	e := newEnv(t, api.Options{MaxConnections: 100, MaxClientConnections: 2})
	addr := e.serve()
	first, code := keepAliveFrom(t, "127.0.0.4", addr)
	require.Equal(t, http.StatusOK, code)

	stream, err := dialerFrom("127.0.0.4").Dial("tcp", addr)
	require.NoError(t, err)
	defer stream.Close()
	_, err = io.WriteString(stream, "GET /api/events HTTP/1.1\r\nHost: t\r\n\r\n")
	require.NoError(t, err)
	require.NoError(t, stream.SetReadDeadline(time.Now().Add(10*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(stream), nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "the stream, the client's second connection")

	_, code = keepAliveFrom(t, "127.0.0.4", addr)
	assert.NotEqual(t, http.StatusOK, code, "a third connection, while the stream runs")

	require.NoError(t, first.Close())
	require.NoError(t, stream.Close())
	testutil.Eventually(t, func() bool {
		_, code := keepAliveFrom(t, "127.0.0.4", addr)
		return code == http.StatusOK
	}, 10*time.Second, "the share back once the client's connections closed")
}
