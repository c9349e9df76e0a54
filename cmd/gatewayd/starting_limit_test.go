package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/api"
)

// (Found by an audit, helper 4, whose test this is.) README, API_MAX_CONNECTIONS: "past it a new
// connection is answered 503 SERVICE_UNAVAILABLE (the error envelope,
// with Retry-After: 1 ...)"; API.md: every error has one shape. While
// serve starts, the starting server answers on the API's port: past
// API_MAX_CONNECTIONS it gave fasthttp's plain-text 503, written before
// the request was read. Four addresses each holding their share (a
// quarter) fill the limit; a fifth gets the API's 503 once it asks.
// Would catch: the starting server refusing past the limit in plain text,
// or before the request.
func TestStartingServerPastTheLimitAnswersTheEnvelope(t *testing.T) {
	t.Parallel()
	const maxConns = 8
	dial := startWaiting(t, maxConns, nil)
	// Each holds its connections by sending half a head (the server
	// closes each at its 1 s read timeout).
	for _, from := range []string{"127.0.0.71", "127.0.0.72", "127.0.0.73", "127.0.0.74"} {
		for range maxConns / 4 {
			_, _ = io.WriteString(dial(from), "GET /api/health HTTP/1.1\r\n")
		}
	}
	// The backlog is accepted in order: the eight are counted before the
	// fifth address's connection is looked at.
	c := dial("127.0.0.75")
	_, err := io.WriteString(c, "GET /api/health HTTP/1.1\r\nHost: t\r\nX-Request-Id: fifth\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "%s", b)
	var env struct{ Error struct{ Code string } }
	require.NoError(t, json.Unmarshal(b, &env), "the error envelope, not plain text: %q", b)
	assert.Equal(t, "SERVICE_UNAVAILABLE", env.Error.Code)
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))
	assert.Equal(t, "fifth", resp.Header.Get("X-Request-Id"))
}

// startWaiting serves the starting server (waiting for the database) on
// a loopback port, at most maxConns connections, refusals counted by
// refused (nil: not), until the test ends. It returns a dial from a
// given loopback address; each connection has a 10 s deadline and is
// closed when the test ends.
func startWaiting(t *testing.T, maxConns int, refused func(full bool)) (dial func(from string) net.Conn) {
	t.Helper()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	h := api.Starting(api.StartingOptions{Started: time.Now(), Log: zerolog.Nop(),
		State: func() (bool, string) { return false, "waiting for the database" }})
	s := serveStarting(tcp.(*net.TCPListener), h, maxConns, 0, refused, zerolog.Nop())
	t.Cleanup(func() {
		s.handOver()
		_ = tcp.Close()
	})
	addr := tcp.Addr().String()
	return func(from string) net.Conn {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		return c
	}
}
