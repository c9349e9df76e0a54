package api

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/internal/netutil"
)

// README "Shutdown": "connections that have not sent a byte yet are closed
// (a request under way is still answered)". At shut, a connection whose
// client sent nothing is closed; one whose first bytes wait unread in the
// kernel (the server's goroutine for it has not run yet) and one already
// read from are kept; one accepted after shut is closed at once. Would
// catch: a shutdown that loses a request its client had sent, or keeps
// waiting for a silent connection. (helper 5)
func TestShutClosesOnlyConnectionsThatSentNothing(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer raw.Close()
	s := &silentConns{}
	ln := s.wrap(raw)
	dial := func(send string) (client, server net.Conn) {
		t.Helper()
		client, err := net.Dial("tcp", raw.Addr().String())
		require.NoError(t, err)
		t.Cleanup(func() { client.Close() })
		server, err = ln.Accept()
		require.NoError(t, err)
		t.Cleanup(func() { server.Close() })
		if send != "" {
			_, err = io.WriteString(client, send)
			require.NoError(t, err)
		}
		return client, server
	}
	_, silent := dial("")
	_, unread := dial("GET / HTTP/1.1\r\n")
	_, read := dial("GET / HTTP/1.1\r\n")
	buf := make([]byte, 64)
	n, err := read.Read(buf)
	require.NoError(t, err)
	require.Positive(t, n)
	// The unread bytes are in the kernel (loopback delivers at once; wait
	// for them rather than assume it).
	require.Eventually(t, func() bool { return netutil.Pending(unread.(*quietConn).Conn) }, 5*time.Second, time.Millisecond)

	s.shut()
	closed := func(c net.Conn) bool {
		_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		_, err := c.Read(buf)
		ne, ok := err.(net.Error)
		return err != nil && !(ok && ne.Timeout())
	}
	assert.True(t, closed(silent), "the connection that sent nothing is closed")
	n, err = unread.Read(buf)
	assert.NoError(t, err, "the unread request is kept")
	assert.Equal(t, "GET / HTTP/1.1\r\n", string(buf[:n]))
	assert.False(t, closed(read), "the connection read from is kept")

	// Accepted after shut: closed at once (Accept goes on to the next).
	late, err := net.Dial("tcp", raw.Addr().String())
	require.NoError(t, err)
	defer late.Close()
	go func() { _, _ = ln.Accept() }()
	_ = late.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = late.Read(buf)
	assert.Error(t, err, "closed by the server")
	ne, ok := err.(net.Error)
	assert.False(t, ok && ne.Timeout(), "closed, not left open: %v", err)
}
