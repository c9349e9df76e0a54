package api_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/api"
	"github.com/ctcgw/gatewayd/events"
)

// rawStream asks for /api/events on a connection of its own and returns
// the parsed head and a reader positioned at the first byte of the body.
func rawStream(t *testing.T, base string, header string) (*http.Response, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = io.WriteString(conn, "GET /api/events HTTP/1.1\r\nHost: t\r\n"+header+"\r\n")
	require.NoError(t, err)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	return resp, br
}

// An event stream's response is written by gatewayd once it has taken the
// connection over: every header the middleware set is there, and the body
// is the SSE text itself, delimited by the connection's close, with no
// chunk framing.
func TestEventStreamHeadAndRawBody(t *testing.T) {
	e := newLiveEnvWith(t, actorstest.FastConfig(), api.Options{CORSOrigins: []string{"http://dash.example"}})
	base := e.listen()
	resp, br := rawStream(t, base, "X-Request-Id: stream-head-1\r\nOrigin: http://dash.example\r\n")
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	assert.Equal(t, "no-cache", resp.Header.Get("Cache-Control"))
	assert.Equal(t, "stream-head-1", resp.Header.Get("X-Request-Id"))
	assert.Equal(t, "http://dash.example", resp.Header.Get("Access-Control-Allow-Origin"))
	assert.NotEmpty(t, resp.Header.Get("Content-Security-Policy"))
	assert.Empty(t, resp.TransferEncoding, "no chunked framing")
	assert.EqualValues(t, -1, resp.ContentLength, "the body runs until the connection closes")
	assert.True(t, resp.Close, "Connection: close")
	_, err := http.ParseTime(resp.Header.Get("Date"))
	assert.NoError(t, err, "Date %q", resp.Header.Get("Date"))

	first := make([]byte, len(": keep-alive\n\n"))
	_, err = io.ReadFull(br, first)
	require.NoError(t, err)
	assert.Equal(t, ": keep-alive\n\n", string(first))
	broker := e.h.Telemetry.Events
	require.Eventually(t, func() bool { return broker.Subscribers() == 1 }, 5*time.Second, 5*time.Millisecond)
	id, err := broker.Publish(events.Event{Type: "test.raw", Data: []byte(`{"n":1}`)})
	require.NoError(t, err)
	want := "id: " + strconv.FormatUint(id, 10) + "\nevent: test.raw\ndata: {\"n\":1}\n\n"
	got := make([]byte, len(want))
	_, err = io.ReadFull(br, got)
	require.NoError(t, err)
	assert.Equal(t, want, string(got))
}

// Shutdown ends the streams it no longer sees (they left fasthttp's
// hands), after flushing what they hold, and returns once they are done,
// even while the broker is still open.
func TestShutdownEndsTheStreams(t *testing.T) {
	e := newLiveEnvWith(t, actorstest.FastConfig(), api.Options{})
	base := e.listen()
	evs1, stop1 := subscribe(t, base, "")
	defer stop1()
	evs2, stop2 := subscribe(t, base, "")
	defer stop2()
	broker := e.h.Telemetry.Events
	require.Eventually(t, func() bool { return broker.Subscribers() == 2 }, 5*time.Second, 5*time.Millisecond)
	_, err := broker.Publish(events.Event{Type: "test.before", Data: []byte(`{}`)})
	require.NoError(t, err)

	require.NoError(t, e.app.ShutdownWithTimeout(5*time.Second))
	// Returned: both streams have ended, and each got the event first.
	assert.Zero(t, broker.Subscribers())
	for _, evs := range []<-chan sse{evs1, evs2} {
		ev := next(t, evs, func(s sse) bool { return true }, "the event published before shutdown")
		assert.Equal(t, "test.before", ev.Event)
		select {
		case _, ok := <-evs:
			assert.False(t, ok, "nothing after it: the stream ended")
		case <-time.After(5 * time.Second):
			t.Fatal("the stream did not end at shutdown")
		}
	}
}

// Streams count against API_MAX_CONNECTIONS though fasthttp no longer
// sees them: with a limit of 2, two streams fill it and a third is
// refused with the API's 503.
func TestEventStreamsCountAgainstTheConnectionLimit(t *testing.T) {
	e := newLiveEnvWith(t, actorstest.FastConfig(), api.Options{MaxConnections: 2, MaxClientConnections: 100}) // the global limit, not a client's share
	base := e.listen()
	broker := e.h.Telemetry.Events
	for i := range 2 {
		resp, _ := rawStream(t, base, "")
		require.Equal(t, 200, resp.StatusCode, "stream %d", i+1)
		require.Eventually(t, func() bool { return broker.Subscribers() == i+1 }, 5*time.Second, 5*time.Millisecond)
		// fasthttp stops counting the connection only after the stream
		// has started on it (see streams.full); until then it counts
		// twice, and the next stream would be refused one early.
		require.Eventually(t, func() bool { return e.app.Server().GetOpenConnectionsCount() == 0 }, 5*time.Second, 5*time.Millisecond)
	}
	resp, br := rawStream(t, base, "")
	assert.Equal(t, 503, resp.StatusCode)
	body, err := io.ReadAll(io.LimitReader(br, int64(max(resp.ContentLength, 0))))
	require.NoError(t, err)
	assert.Contains(t, string(body), `"SERVICE_UNAVAILABLE"`)
	assert.Equal(t, 2, broker.Subscribers())
}

// A stream whose client reads nothing holds shutdown for at most
// streamsShutdownWait, whatever its write timeout: the gateways' close
// comes after, within the same SHUTDOWN_TIMEOUT.
func TestShutdownDoesNotWaitForAnUnreadStream(t *testing.T) {
	unreadStreamHoldsShutdown(t, 0, 5*time.Second)
}

// With a short SHUTDOWN_TIMEOUT, a quarter of it: a fixed 2 s overran a
// SHUTDOWN_TIMEOUT of 1 s, and the gateways and the pool got what was
// left, nothing (found by an audit, helper 10).
func TestShutdownGivesAnUnreadStreamAQuarterOfItsTimeout(t *testing.T) {
	unreadStreamHoldsShutdown(t, 800*time.Millisecond, time.Second)
}

func unreadStreamHoldsShutdown(t *testing.T, shutdownTimeout, within time.Duration) {
	e := newLiveEnvWith(t, actorstest.FastConfig(), api.Options{EventsWriteTimeout: time.Minute, ShutdownTimeout: shutdownTimeout})
	base := e.listen()
	broker := e.h.Telemetry.Events
	filler := []byte(`{"pad":"` + strings.Repeat("x", 16<<10) + `"}`)
	for range 1000 {
		_, err := broker.Publish(events.Event{Type: "test.filler", Data: filler})
		require.NoError(t, err)
	}
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.Write([]byte("GET /api/events HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 1\r\n\r\n"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return broker.Subscribers() == 1 }, 5*time.Second, 5*time.Millisecond)
	start := time.Now() // its backlog is being written to a socket nobody reads
	require.NoError(t, e.app.ShutdownWithTimeout(10*time.Second))
	assert.Less(t, time.Since(start), within, "shutdown waited for a client that reads nothing")
}
