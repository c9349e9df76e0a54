package api_test

// The HTTP edge under hostile clients. (Found by an audit, helper 4, whose
// tests these are.)

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/api"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// postOver POSTs n times from client and tallies the answers' statuses
// and the transport errors (a request that got no answer at all).
func postOver(t *testing.T, client *http.Client, url string, n int) (map[int]int, []string) {
	t.Helper()
	got := map[int]int{}
	var errs []string
	for range n {
		resp, err := client.Post(url, "application/json", strings.NewReader(`{"name":"`+strings.Repeat("x", 2000)+`"}`))
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		got[resp.StatusCode]++
	}
	return got, errs
}

// README (API_MAX_CONNECTIONS_PER_CLIENT): "past it a new connection is
// answered 429 TOO_MANY_REQUESTS (the error envelope, ...) once its
// request's first bytes arrive (at most 0.5 s)". The refusals that wait
// for their request share 64 slots (maxRefusing) among all clients; past
// them the 429 is written the moment the connection is accepted, before
// the request, which is what helper 11 found makes Go's client fail with
// a transport error instead of seeing the 429. One hostile address that
// opens over-share connections and sends nothing (64 a second is enough)
// takes every slot, so every other client over its share gets the
// immediate answer: the hostile client degrades the others' refusals.
// Would catch: refusal slots that one client can take from the others.
func TestOneClientCannotTakeTheOthersRefusals(t *testing.T) {
	e := newEnv(t, api.Options{MaxConnections: 1000, MaxClientConnections: 1})
	addr := e.serve()
	const bad, victim = "127.0.0.60", "127.0.0.61"
	_, code := keepAliveFrom(t, bad, addr)
	require.Equal(t, http.StatusOK, code)
	_, code = keepAliveFrom(t, victim, addr)
	require.Equal(t, http.StatusOK, code)

	// The hostile client: over-share connections that send nothing and
	// never close, kept at 100 open at once.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var opened atomic.Int64
	for range 4 {
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
				opened.Add(1)
				go func() {
					_ = c.SetDeadline(time.Now().Add(2 * time.Second))
					_, _ = io.Copy(io.Discard, c)
					_ = c.Close()
				}()
				time.Sleep(20 * time.Millisecond) // 4 × 50 a second
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	// The hostile client has opened more than the 64 slots, and holds all
	// the slots it can (every one of them before the fix, its quarter
	// after).
	testutil.Eventually(t, func() bool { return opened.Load() > 100 && api.Refusing(e.app) >= 16 }, 10*time.Second,
		"the hostile client's refusals take every slot they can")

	client := &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: dialerFrom(victim).DialContext, DisableKeepAlives: true}}
	got, errs := postOver(t, client, "http://"+addr+"/api/organizations", 40)
	require.Empty(t, errs, "another client over its share is answered 429, not a transport error (answers: %v)", got)
	require.Equal(t, map[int]int{http.StatusTooManyRequests: 40}, got)
}

// README: "Past API_MAX_CONNECTIONS new connections get 503 and are
// closed"; API.md: every error has one shape, and responses carry an
// X-Request-Id and the security headers. fasthttp's own 503 is written
// the moment the connection is accepted, before the request, in plain
// text, and the connection closed with the request unread: the failure
// helper 11 fixed for the per-client 429. A Go client sees a transport
// error ("Unsolicited response received on idle HTTP channel", or a
// reset) instead of the 503, so it cannot tell "full, retry later" from
// "server gone".
// Would catch: connections past API_MAX_CONNECTIONS that get no answer a
// client can read.
func TestPastMaxConnectionsAClientReads503(t *testing.T) {
	const limit = 4
	e := newEnv(t, api.Options{MaxConnections: limit, MaxClientConnections: 1})
	addr := e.serve()
	for _, from := range []string{"127.0.0.62", "127.0.0.63", "127.0.0.64", "127.0.0.65"} {
		_, code := keepAliveFrom(t, from, addr)
		require.Equal(t, http.StatusOK, code)
	}
	client := &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: dialerFrom("127.0.0.66").DialContext, DisableKeepAlives: true}}
	got, errs := postOver(t, client, "http://"+addr+"/api/organizations", 40)
	require.Empty(t, errs, "a client past API_MAX_CONNECTIONS is answered 503, not a transport error (answers: %v)", got)
	require.Equal(t, map[int]int{http.StatusServiceUnavailable: 40}, got)
}

// The mission's "a hostile client harms only itself", README ("a client
// that reads too slowly gets event: overflow and is closed, never slowing
// anyone else"). An event stream reads what its client sends after the
// request only to notice when the client goes (watchClient), 64 bytes a
// read(2), for as long as the stream runs: a client that sends junk on
// its stream without end kept a server goroutine busy a core's worth
// (measured on this box: a reader of 64 bytes a read takes 138 MiB in 2 s
// on loopback, one core flat out; a client's share of API_MAX_CONNECTIONS
// streams could pin every core). Nothing a stream's client sends is ever
// used (a pipelined request on it would never be answered), and any other
// connection that sends garbage is answered 400 and closed.
// Would catch: a stream that goes on reading whatever its client sends.
func TestAStreamWhoseClientSendsWithoutEndIsClosed(t *testing.T) {
	e := newEnv(t, api.Options{MaxConnections: 100})
	addr := e.serve()
	c := rawFrom(t, "127.0.0.67", addr)
	_, err := io.WriteString(c, "GET /api/events HTTP/1.1\r\nHost: t\r\n\r\n")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, readStreamHead(t, c))
	junk := make([]byte, 64<<10)
	for i := range junk {
		junk[i] = 'x'
	}
	wrote := make(chan int64, 1)
	go func() {
		var n int64
		defer func() { wrote <- n }()
		for {
			_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			k, err := c.Write(junk)
			n += int64(k)
			if err != nil {
				return
			}
		}
	}()
	select {
	case n := <-wrote:
		t.Logf("the server ended the stream after %d bytes of junk", n)
	case <-time.After(10 * time.Second):
		_ = c.Close()
		t.Fatalf("the stream still reads its client's junk after 10 s (%d bytes)", <-wrote)
	}
}

// README ("Requests refused before routing"): a "malformed request line or
// header" gets 400 in the error envelope and its connection is closed (as
// RFC 9110 §5.1 has it, a field name is a token). fasthttp refuses a name
// with a space or tab in it, and took any other byte: a NUL, a control
// character, a parenthesis, non-ASCII. Such a header was ignored and the
// connection kept: "Transfer-Encoding\x00: chunked" made a body that
// gatewayd did not see, and its bytes were served as the next request
// (request smuggling, wherever a proxy in front reads that header as its
// name without the NUL). Go's net/http refuses these names with 400.
// Would catch: a header whose name is not a token that is not refused, or
// whose connection carries on.
func TestHeaderNamesThatAreNotTokensAreRefused(t *testing.T) {
	e := newEnv(t, api.Options{})
	addr := e.serve()
	smuggled := "GET /api/health HTTP/1.1\r\nHost: t\r\nX-Request-Id: smuggled\r\n\r\n"
	for _, name := range []string{"X-Bad\x00", "Transfer-Encoding\x00", "X\x01Y", "X(y)", "X-Ä", "X\x7f"} {
		req := "POST /api/organizations HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n" + name +
			": chunked\r\n\r\nc\r\n" + `{"name":"a"}` + "\r\n0\r\n\r\n" + smuggled
		r := exchange(t, addr, req, 5*time.Second)
		assertEnvelope(t, r.response, http.StatusBadRequest, "VALIDATION_ERROR")
		require.True(t, r.closed, "the connection of a request with the header name %q is closed", name)
	}
	require.Empty(t, e.accessLines("smuggled"), "nothing after a malformed header is served")
}
