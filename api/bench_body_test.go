package api_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/api"
	"github.com/ctcgw/gatewayd/internal/testutil"
	"github.com/ctcgw/gatewayd/store"
)

// BenchmarkPostBody: a POST over one kept loopback connection, through
// fasthttp's read, the edge (which reads a streamed body, api/body.go)
// and the JSON parse, answered 400 (a field missing) without a database
// round trip: what reading a body costs, small (the hot path: all of it
// in fasthttp's first 8 KiB) and past 8 KiB. Allocations are the
// client's and the server's.
func BenchmarkPostBody(b *testing.B) {
	for _, c := range []struct {
		name string
		size int
	}{{"200B", 200}, {"64KiB", 64 << 10}} {
		b.Run(c.name, func(b *testing.B) {
			pool, _ := tmpl.Pool(b)
			sealer, err := store.NewSealer(testutil.Key)
			require.NoError(b, err)
			app := api.New(store.New(pool, sealer), &fakeRuntime{ready: true}, zerolog.New(io.Discard).Level(zerolog.InfoLevel),
				api.Options{MetricsDisabled: true})
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(b, err)
			go func() { _ = app.Listener(ln) }()
			b.Cleanup(func() { _ = app.ShutdownWithTimeout(time.Second) })
			conn, err := net.Dial("tcp", ln.Addr().String())
			require.NoError(b, err)
			defer conn.Close()
			body := `{"description":"` + strings.Repeat("d", c.size-len(`{"description":""}`)) + `"}`
			req := []byte(request("POST", "/api/organizations", "application/json", body))
			br := bufio.NewReader(conn)
			b.SetBytes(int64(len(req)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := conn.Write(req); err != nil {
					b.Fatal(err)
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 400 {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
		})
	}
}
