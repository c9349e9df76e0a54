package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/internal/testutil"
)

// README "Shutdown": "connections that have not sent a byte yet are
// closed (a request under way is still answered)". The other half of
// TestASilentConnectionDoesNotHoldTheShutdown: a connection whose request
// had begun (half its head) when the signal came is not closed with the
// silent ones; the rest of its request, sent after the shutdown began,
// is answered. Would catch: a shutdown that drops every connection not yet
// in a handler. (Checked by an audit, helper 5, whose test this is.)
func TestARequestUnderWayAtTheSignalIsAnswered(t *testing.T) {
	t.Parallel()
	gw := startServe(t, []string{"DATABASE_URL=" + tmpl.New(t), "ENCRYPTION_KEY=" + key, "AUTH_ENABLED=false",
		"SHUTDOWN_TIMEOUT=6s", "LOG_FORMAT=json"})
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", gw.port))
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, "GET /api/health HTTP/1.1\r\n")
	require.NoError(t, err)
	// Accepted before the signal: accepts are in order, and a later
	// connection is answered. Its bytes may not have been read yet: they
	// are there, and count as a request under way.
	require.Equal(t, 200, getJSON(t, fmt.Sprintf("http://127.0.0.1:%d/api/health", gw.port), nil))

	require.NoError(t, gw.cmd.Process.Signal(syscall.SIGTERM))
	testutil.Eventually(t, func() bool { return strings.Contains(gw.logs.String(), "shutting down") }, 10*time.Second,
		"the shutdown began")
	_, err = io.WriteString(c, "Host: t\r\n\r\n")
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err, "the request under way was answered\n%s", gw.logs)
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	assert.Equal(t, 200, res.StatusCode)
	gw.waitExit(t, 15*time.Second)
	assert.NoError(t, gw.err)
}
