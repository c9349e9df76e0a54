package api

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
)

// connOf finds a request's connection from the header fasthttp hands
// HeaderReceived, by where that header sits in its RequestCtx: a fasthttp
// that handed over another header (a copy, or one of its own) would make
// it read memory that is not a RequestCtx. This holds fasthttp to it, on
// each of a keep-alive connection's requests.
func TestConnOfIsTheRequestsConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	seen := make(chan net.Conn, 2)
	srv := &fasthttp.Server{
		HeaderReceived: func(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
			seen <- connOf(h)
			return fasthttp.RequestConfig{}
		},
		Handler: func(fctx *fasthttp.RequestCtx) {
			if got := <-seen; got != fctx.Conn() {
				fctx.SetStatusCode(http.StatusInternalServerError)
			}
		},
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })

	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	br := bufio.NewReader(c)
	for _, body := range []string{"", "{}"} {
		_, err = io.WriteString(c, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
		require.NoError(t, err)
		resp, err := http.ReadResponse(br, nil)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, "connOf is not the handler's connection (body %q)", body)
	}
}
