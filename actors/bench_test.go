package actors

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
)

func BenchmarkBackoff(b *testing.B) {
	for i := 0; b.Loop(); i++ {
		_ = backoff(i%12+1, time.Second, 30*time.Second, 2, rand.Float64())
	}
}

// BenchmarkGatewayMemory reports the live heap a gateway that is not
// connected costs (B/gateway): 5,000 gateways whose dial was refused,
// each in BACKOFF with its actor, retry timer and supervisor record.
// Each iteration takes seconds; run it with -benchtime 1x (or 3x).
func BenchmarkGatewayMemory(b *testing.B) {
	cfg := Config{ConnectTimeout: time.Second, AuthTimeout: time.Second, CommandTimeout: time.Second,
		BackoffInitial: time.Hour, BackoffMax: time.Hour, BackoffMultiplier: 2, PingInterval: time.Minute, PongTimeout: time.Minute,
		DialConcurrency: 64, RestartLimit: 3, RestartWindow: time.Minute, ReconcileInterval: time.Hour}
	rt := Start(cfg, fixedSource{}, zerolog.Nop())
	defer func() { _ = rt.Shutdown(context.Background()) }()
	require.Eventually(b, rt.Ready, 10*time.Second, 5*time.Millisecond)
	const n = 5000
	var total float64
	rounds := 0
	for b.Loop() {
		before := liveHeap()
		ids := startGateways(rt, n, gatewayd.DesiredConnected)
		require.Eventually(b, func() bool {
			list, err := rt.Statuses(context.Background(), nil)
			if err != nil {
				return false // the deadline reports it
			}
			backingOff := 0
			for _, st := range list {
				if st.State == gatewayd.StateBackoff {
					backingOff++
				}
			}
			return backingOff == n
		}, time.Minute, 50*time.Millisecond, "every gateway in BACKOFF")
		total += float64(liveHeap()-before) / n
		rounds++
		rt.GatewaysRemoved(ids, nil)
		require.Eventually(b, func() bool {
			count, _ := rt.Counts()
			return count == 0
		}, time.Minute, 10*time.Millisecond, "every gateway removed")
	}
	b.ReportMetric(total/float64(rounds), "B/gateway")
}
