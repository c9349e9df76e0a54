package api_test

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/actors"
	"github.com/ctcgw/gatewayd/actors/actorstest"
)

// benchServe puts the live env's app on a real listener.
// benchConfig keeps the test timeouts but pings at the production period,
// so a benchmark measures requests, not 10,000 pings a second.
func benchConfig() actors.Config {
	c := actorstest.FastConfig()
	c.PingInterval, c.PongTimeout = 30*time.Second, 10*time.Second
	return c
}

func benchServe(b *testing.B, e *liveEnv) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	go func() { _ = e.app.Listener(ln) }()
	b.Cleanup(func() { _ = e.app.ShutdownWithTimeout(time.Second) })
	return "http://" + ln.Addr().String() + "/api"
}

func benchGateways(b *testing.B, e *liveEnv, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i], _ = e.add(fmt.Sprintf("bench-%05d", i))
	}
	require.Eventually(b, func() bool {
		total, auth := e.runtime.Counts()
		return total == n && auth == n
	}, time.Minute, 10*time.Millisecond)
	return ids
}

func get(b *testing.B, c *http.Client, url string) {
	resp, err := c.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Fatalf("%s: %d", url, resp.StatusCode)
	}
}

// BenchmarkStatusOverHTTP: GET /api/gateways/:id/status from parallel
// clients over real sockets, 1,000 authenticated gateways.
func BenchmarkStatusOverHTTP(b *testing.B) {
	e := newLiveEnv(b, benchConfig())
	ids := benchGateways(b, e, 1000)
	base := benchServe(b, e)
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			get(b, c, base+"/gateways/"+ids[rand.IntN(len(ids))]+"/status")
		}
	})
}

// BenchmarkStatusList: GET /api/gateways/status with 5,000 gateways.
func BenchmarkStatusList(b *testing.B) {
	e := newLiveEnv(b, benchConfig())
	benchGateways(b, e, 5000)
	base := benchServe(b, e)
	c := &http.Client{}
	for b.Loop() {
		get(b, c, base+"/gateways/status")
	}
}
