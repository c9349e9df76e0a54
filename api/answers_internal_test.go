package api

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/ctcgw/gatewayd/internal/testutil"
)

// bodyOf is the answer of request n of a route: size bytes or so,
// different for every request.
func bodyOf(n, size int) []byte {
	return bytes.Repeat([]byte(fmt.Sprintf("%08d,", n)), size/9+n%7)
}

// A held answer is the handler's own bytes (c.Send, c.JSON) or the
// response's buffer (c.Write, as /metrics writes): either must reach its
// client whole and unmixed, HEAD answers keep their Content-Length, while
// other answers are made meanwhile.
func TestHeldAnswersAreSentWholeWhateverBufferHoldsThem(t *testing.T) {
	logs := &testutil.SyncBuffer{}
	app := New(nil, nil, zerolog.New(logs), Options{})
	size := func(c *fiber.Ctx) (int, int) {
		n, _ := strconv.Atoi(c.Params("n"))
		return n, c.QueryInt("size", HeldAnswerMin)
	}
	app.Get("/raw/:n", func(c *fiber.Ctx) error {
		n, sz := size(c)
		return c.Send(bodyOf(n, sz))
	})
	app.Get("/pooled/:n", func(c *fiber.Ctx) error {
		n, sz := size(c)
		_, err := c.Write(bodyOf(n, sz))
		return err
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = app.Listener(ln) }()
	t.Cleanup(func() { _ = app.ShutdownWithTimeout(time.Second) })
	client := &http.Client{Timeout: time.Minute}

	// Answers that wait, unread, in a pooled buffer and a raw one (6 MB:
	// more than the kernel takes) while the others below are made.
	const big = 6 << 20
	var held []net.Conn
	for _, route := range []string{"pooled", "raw"} {
		d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
			return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		}}
		conn, err := d.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close() })
		_, err = fmt.Fprintf(conn, "GET /%s/1?size=%d HTTP/1.1\r\nHost: t\r\n\r\n", route, big)
		require.NoError(t, err)
		testutil.Eventually(t, func() bool { return strings.Contains(logs.String(), `"path":"/`+route+`/1","status":200`) },
			time.Minute, "the unread answer is made")
		held = append(held, conn)
	}

	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				n := w*100 + i + 2
				route := []string{"raw", "pooled"}[n%2]
				method := []string{"GET", "GET", "HEAD"}[i%3]
				req, err := http.NewRequest(method, fmt.Sprintf("http://%s/%s/%d", ln.Addr(), route, n), nil)
				if !assert.NoError(t, err) {
					return
				}
				resp, err := client.Do(req)
				if !assert.NoError(t, err) {
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				assert.NoError(t, err)
				assert.Equal(t, 200, resp.StatusCode)
				want := bodyOf(n, HeldAnswerMin)
				assert.Equal(t, int64(len(want)), resp.ContentLength, "%s %s %d", method, route, n)
				if method == "GET" {
					assert.True(t, bytes.Equal(want, b), "%s %d: the answer is another's or cut (%d bytes)", route, n, len(b))
				} else {
					assert.Empty(t, b)
				}
			}
		}()
	}
	wg.Wait()

	for i, conn := range held {
		_ = conn.SetDeadline(time.Now().Add(time.Minute))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		assert.True(t, bytes.Equal(bodyOf(1, big), b), "the %s answer held while others were made is another's or cut",
			[]string{"pooled", "raw"}[i])
	}
}

// BenchmarkHoldLargeSmallAnswer is what every answer under HeldAnswerMin
// (an answer by id) pays for the budget: holdLarge looking at it.
func BenchmarkHoldLargeSmallAnswer(b *testing.B) {
	s := &server{large: newBudget(JSONBudget)}
	app := fiber.New()
	var fctx fasthttp.RequestCtx
	c := app.AcquireCtx(&fctx)
	defer app.ReleaseCtx(c)
	body := bytes.Repeat([]byte("x"), 1500)
	c.Response().SetBodyRaw(body)
	b.ReportAllocs()
	for b.Loop() {
		if err := s.holdLarge(c); err != nil {
			b.Fatal(err)
		}
	}
}
