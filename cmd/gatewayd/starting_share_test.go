package main

import (
	"bufio"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// (Found by an audit, helper 1, whose test this is.) README, API_MAX_CONNECTIONS_PER_CLIENT: "past it a new
// connection is answered 429 ... so one address cannot take every
// connection". While serve starts (waiting for the database, or a standby
// waiting for hours for the other gatewayd to stop) the starting server
// answers on the API's port with no per-client share: one address that
// keeps API_MAX_CONNECTIONS connections open (each sends nothing, is
// closed at the 1 s read timeout and opened again) leaves every other
// client fasthttp's plain 503, its health and readiness probes included.
// Would catch: the starting server without the per-client cap.
func TestStartingServerHasAPerClientShare(t *testing.T) {
	t.Parallel()
	const maxConns = 8
	var overShare, full atomic.Int64
	dial := startWaiting(t, maxConns, func(past bool) {
		if past {
			full.Add(1)
		} else {
			overShare.Add(1)
		}
	})
	// The hostile address: every connection there is, kept open by
	// sending nothing (the server closes each at its read timeout).
	var held sync.WaitGroup
	for range maxConns {
		c := dial("127.0.0.41")
		held.Add(1)
		go func() {
			defer held.Done()
			_, _ = io.Copy(io.Discard, c)
		}()
	}
	// Another address asks for its health while they are held (well
	// within their 1 s).
	c := dial("127.0.0.42")
	_, err := io.WriteString(c, "GET /api/health HTTP/1.1\r\nHost: t\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode, "another client gets the starting server's health, not the concurrency limit's 503: %s", b)
	assert.Contains(t, string(b), `"status":"ok"`)
	held.Wait()
	// The refusals are counted (gatewayd_http_connections_refused_total):
	// the hostile address's over its share (6, unless the server closed
	// its first two at their read timeout before all were dialled).
	assert.Positive(t, overShare.Load(), "refusals over the share counted")
	assert.Zero(t, full.Load(), "none past API_MAX_CONNECTIONS")
}
