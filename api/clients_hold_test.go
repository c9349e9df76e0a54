package api_test

// Checks of the per-client connection cap (clients.go). Each says what
// it would catch. (Checked by an audit, helper 1, whose tests these are.)

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/api"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// rawFrom dials addr from the address from; the connection is closed at
// the test's end if the test has not closed it.
func rawFrom(t *testing.T, from, addr string) *net.TCPConn {
	t.Helper()
	c, err := dialerFrom(from).Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	return c.(*net.TCPConn)
}

// reset closes c with a RST instead of a FIN.
func reset(c *net.TCPConn) {
	_ = c.SetLinger(0)
	_ = c.Close()
}

// readAnswer reads one answer from c; 0 if none came.
func readAnswer(c net.Conn) int {
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// countsBackToZero waits until the app counts no connection of anyone.
func countsBackToZero(t *testing.T, app *api.App, what string) {
	t.Helper()
	testutil.Eventually(t, func() bool { return len(api.ClientConnections(app)) == 0 }, 10*time.Second,
		"%s: every connection closed, yet the app still counts %v", what, api.ClientConnections(app))
}

// fullShare asserts that the client from is served on share keep-alive
// connections at once (then closes them): its count did not leak. It
// tries again for a while: a connection the client ended while it was
// still in the listen backlog is counted from its accept until fasthttp
// finds it dead, a moment later.
func fullShare(t *testing.T, from, addr string, share int) {
	t.Helper()
	testutil.Eventually(t, func() bool {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				_ = c.Close()
			}
		}()
		for range share {
			c, code := keepAliveFrom(t, from, addr)
			held = append(held, c)
			if code != http.StatusOK {
				return false
			}
		}
		return true
	}, 10*time.Second, "a full share of %d for %s", share, from)
}

// Would catch: a connection whose end (any way it ends, at any stage)
// does not give its client's count back. The client would then be
// refused 429 for good once the leaks reach its share. Each way of ending
// runs share+1 times, so a leak of one per run exhausts the share.
func TestClientCountComesBackHoweverAConnectionEnds(t *testing.T) {
	const share = 3
	const from = "127.0.0.21"
	e := newEnv(t, api.Options{MaxConnections: 100, MaxClientConnections: share, ReadTimeout: 300 * time.Millisecond,
		EventsKeepAlive: 50 * time.Millisecond})
	addr := e.serve()
	head := "GET /api/health HTTP/1.1\r\nHost: t\r\n\r\n"
	ends := map[string]func(){
		"connect, close": func() { _ = rawFrom(t, from, addr).Close() },
		"connect, reset": func() { reset(rawFrom(t, from, addr)) },
		"half a head, close": func() {
			c := rawFrom(t, from, addr)
			_, _ = io.WriteString(c, "GET /api/hea")
			_ = c.Close()
		},
		"half a head, reset": func() {
			c := rawFrom(t, from, addr)
			_, _ = io.WriteString(c, "GET /api/health HTTP/1.1\r\nHo")
			reset(c)
		},
		"a request, reset before the answer is read": func() {
			c := rawFrom(t, from, addr)
			_, _ = io.WriteString(c, head)
			reset(c)
		},
		"write side closed after a request (half-close)": func() {
			c := rawFrom(t, from, addr)
			_, _ = io.WriteString(c, head)
			_ = c.CloseWrite()
			_, _ = io.Copy(io.Discard, c)
			_ = c.Close()
		},
		"pipelined requests, reset mid-answers": func() {
			c := rawFrom(t, from, addr)
			_, _ = io.WriteString(c, strings.Repeat(head, 50))
			var b [100]byte
			_, _ = c.Read(b[:])
			reset(c)
		},
		"slow head past the read timeout (408)": func() {
			c := rawFrom(t, from, addr)
			_, _ = io.WriteString(c, "GET /api/health HTTP/1.1\r\n")
			_, _ = io.Copy(io.Discard, c) // until the server closes
			_ = c.Close()
		},
		"nothing sent, closed by the server at the read timeout": func() {
			c := rawFrom(t, from, addr)
			_, _ = io.Copy(io.Discard, c)
			_ = c.Close()
		},
		"body over the limit (413, closed)": func() {
			c := rawFrom(t, from, addr)
			_, _ = io.WriteString(c, "POST /api/organizations HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 9999999\r\n\r\n")
			_, _ = io.Copy(io.Discard, c)
			_ = c.Close()
		},
		"100-continue, client gone before it": func() {
			c := rawFrom(t, from, addr)
			_, _ = io.WriteString(c, "POST /api/organizations HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 20\r\n\r\n")
			reset(c)
		},
		"HTTP/2 preface": func() {
			c := rawFrom(t, from, addr)
			_, _ = io.WriteString(c, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
			_, _ = io.Copy(io.Discard, c)
			_ = c.Close()
		},
		"event stream, closed by the client": func() {
			c := rawFrom(t, from, addr)
			_, _ = io.WriteString(c, "GET /api/events HTTP/1.1\r\nHost: t\r\n\r\n")
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			require.NoError(t, err)
			require.Equal(t, 200, resp.StatusCode)
			_, _ = br.ReadString(':') // a keep-alive comment
			_ = c.Close()
		},
		"event stream, reset by the client before its head": func() {
			c := rawFrom(t, from, addr)
			_, _ = io.WriteString(c, "GET /api/events HTTP/1.1\r\nHost: t\r\n\r\n")
			reset(c)
		},
		"refused 429 (over the share), reset mid-answer": func() {
			// The share is held, so this one is refused; it goes away
			// while its refusal waits or writes.
			countsBackToZero(t, e.app, "the previous round's held connections")
			var held []net.Conn
			for range share {
				c, code := keepAliveFrom(t, from, addr)
				require.Equal(t, 200, code)
				held = append(held, c)
			}
			for range 5 {
				c := rawFrom(t, from, addr)
				_, _ = io.WriteString(c, head)
				reset(c)
				c = rawFrom(t, from, addr)
				reset(c)
			}
			for _, c := range held {
				_ = c.Close()
			}
		},
	}
	for name, end := range ends {
		for range share + 1 {
			end()
		}
		countsBackToZero(t, e.app, name)
		fullShare(t, from, addr, share)
		countsBackToZero(t, e.app, name+" (after the full share)")
	}
}

// Would catch: a client connecting through the IPv4-mapped IPv6 form of
// its address (a dual-stack listener, the default API_HOST 0.0.0.0 is not
// one but "::" is) counted apart from its plain IPv4 form: twice the
// share for one host. And ::1 counted with 127.0.0.1.
func TestIPv4MappedAddressIsTheIPv4Client(t *testing.T) {
	e := newEnv(t, api.Options{MaxConnections: 100, MaxClientConnections: 2})
	addr, _ := e.serveOn("[::]:0")
	_, portText, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	port, err := strconv.Atoi(portText)
	require.NoError(t, err)
	v4 := fmt.Sprintf("127.0.0.1:%d", port)
	for range 2 {
		_, code := keepAliveFrom(t, "127.0.0.1", v4)
		require.Equal(t, 200, code)
	}
	// Through an AF_INET6 socket to the mapped address: the server sees
	// ::ffff:127.0.0.1.
	// (Go's dialer refuses a mapped address on tcp6: the socket by hand.)
	fd, err := syscall.Socket(syscall.AF_INET6, syscall.SOCK_STREAM, 0)
	require.NoError(t, err)
	sa := &syscall.SockaddrInet6{Port: port}
	copy(sa.Addr[:], net.ParseIP("::ffff:127.0.0.1").To16())
	require.NoError(t, syscall.Connect(fd, sa))
	f := os.NewFile(uintptr(fd), "mapped")
	c, err := net.FileConn(f)
	require.NoError(t, err)
	_ = f.Close()
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = io.WriteString(c, "GET /api/health HTTP/1.1\r\nHost: t\r\n\r\n")
	require.NoError(t, err)
	assert.Equal(t, http.StatusTooManyRequests, readAnswer(c), "the mapped form is the same client")
	assert.Equal(t, map[string]int{"127.0.0.1": 2}, api.ClientConnections(e.app))

	_, code := keepAliveFrom(t, "::1", fmt.Sprintf("[::1]:%d", port))
	assert.Equal(t, 200, code, "::1 is another client")
}

// Would catch: one client (127.0.0.1) starving another (127.0.0.2) with
// everything it can hold at once: its share taken by idle keep-alives,
// slow heads and event streams, and a stream of connections over its
// share that send nothing (each holding a refusal's goroutine for its
// waits), or that pipeline requests. The other client must be answered,
// each request within a second, and its event stream must start.
func TestOneClientCannotStarveAnother(t *testing.T) {
	const share = 6
	e := newEnv(t, api.Options{MaxConnections: 4 * share, MaxClientConnections: share})
	addr := e.serve()
	const bad = "127.0.0.22"
	// The share: 2 idle keep-alives, 2 slow heads, 2 event streams.
	for range 2 {
		_, code := keepAliveFrom(t, bad, addr)
		require.Equal(t, 200, code)
	}
	for range 2 {
		c := rawFrom(t, bad, addr)
		_, _ = io.WriteString(c, "GET /api/health HTTP/1.1\r\n")
	}
	for range 2 {
		c := rawFrom(t, bad, addr)
		_, _ = io.WriteString(c, "GET /api/events HTTP/1.1\r\nHost: t\r\n\r\n")
		require.Equal(t, 200, readStreamHead(t, c))
	}
	// The flood: connections over the share, as fast as they are refused.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var flooded atomic.Int64
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := dialerFrom(bad).Dial("tcp", addr)
				if err != nil {
					continue
				}
				flooded.Add(1)
				if w%2 == 0 { // send nothing, hold it open for a while
					go func() {
						_ = c.SetDeadline(time.Now().Add(3 * time.Second))
						_, _ = io.Copy(io.Discard, c)
						_ = c.Close()
					}()
				} else {
					_, _ = io.WriteString(c, strings.Repeat("GET /api/health HTTP/1.1\r\nHost: t\r\n\r\n", 20))
					_ = c.Close()
				}
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	testutil.Eventually(t, func() bool { return flooded.Load() > 200 }, 10*time.Second, "the flood runs")

	const good = "127.0.0.23"
	other := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: dialerFrom(good).DialContext}}
	defer other.CloseIdleConnections()
	for i := range 30 {
		start := time.Now()
		resp, b := getFrom(t, other, "http://"+addr+"/api/health")
		require.Equal(t, 200, resp.StatusCode, "request %d of the other client: %s", i, b)
		assert.Less(t, time.Since(start), time.Second, "request %d of the other client", i)
		if i%10 == 0 {
			other.CloseIdleConnections() // a new connection too
		}
	}
	c := rawFrom(t, good, addr)
	_, _ = io.WriteString(c, "GET /api/events HTTP/1.1\r\nHost: t\r\n\r\n")
	assert.Equal(t, 200, readStreamHead(t, c), "the other client's event stream")
	assert.Equal(t, share, api.ClientConnections(e.app)[bad], "the hostile client holds its share, no more")
}

func readStreamHead(t *testing.T, c net.Conn) int {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	return resp.StatusCode
}

// Would catch: a refusal logged per connection (a flood of refused
// connections writing a log line each): README, at most once a minute.
func TestRefusalsAreLoggedOnceAMinute(t *testing.T) {
	e := newEnv(t, api.Options{MaxConnections: 100, MaxClientConnections: 1})
	addr := e.serve()
	const from = "127.0.0.24"
	_, code := keepAliveFrom(t, from, addr)
	require.Equal(t, 200, code)
	for range 50 {
		_, code := keepAliveFrom(t, from, addr)
		require.Equal(t, http.StatusTooManyRequests, code)
	}
	assert.Equal(t, 1, strings.Count(e.logText(), "API_MAX_CONNECTIONS_PER_CLIENT reached")+
		strings.Count(e.logText(), "reached API_MAX_CONNECTIONS_PER_CLIENT"), e.logText())
}

// Would catch: shutdown leaving counted connections behind: idle
// keep-alives, an event stream, a request still being read. After it the
// app counts none.
func TestShutdownLeavesNoCountedConnection(t *testing.T) {
	e := newEnv(t, api.Options{MaxConnections: 100, MaxClientConnections: 10})
	addr, done := e.serveOn("127.0.0.1:0")
	const from = "127.0.0.25"
	for range 3 {
		_, code := keepAliveFrom(t, from, addr)
		require.Equal(t, 200, code)
	}
	s := rawFrom(t, from, addr)
	_, _ = io.WriteString(s, "GET /api/events HTTP/1.1\r\nHost: t\r\n\r\n")
	require.Equal(t, 200, readStreamHead(t, s))
	require.Equal(t, 4, api.ClientConnections(e.app)[from])
	require.NoError(t, e.app.ShutdownWithTimeout(5*time.Second))
	<-done
	countsBackToZero(t, e.app, "after shutdown")
}
