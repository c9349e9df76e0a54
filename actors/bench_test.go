package actors

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/rs/zerolog"

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
	for !rt.Ready() {
		time.Sleep(5 * time.Millisecond)
	}
	const n = 5000
	var total float64
	rounds := 0
	for b.Loop() {
		before := liveHeap()
		ids := startGateways(rt, n, gatewayd.DesiredConnected)
		for deadline := time.Now().Add(time.Minute); ; {
			backingOff := 0
			list, err := rt.Statuses(context.Background(), nil)
			if err != nil {
				b.Fatal(err)
			}
			for _, st := range list {
				if st.State == gatewayd.StateBackoff {
					backingOff++
				}
			}
			if backingOff == n {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d gateways in BACKOFF after a minute", backingOff, n)
			}
			time.Sleep(50 * time.Millisecond)
		}
		total += float64(liveHeap()-before) / n
		rounds++
		rt.GatewaysRemoved(ids)
		for {
			if count, _ := rt.Counts(); count == 0 {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	b.ReportMetric(total/float64(rounds), "B/gateway")
}
