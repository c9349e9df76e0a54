package api_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/api"
)

// API.md §3: 503 SERVICE_UNAVAILABLE is for a database that "cannot serve
// the request: unreachable, refusing new connections … or did not answer
// in time". Readings requested while their gateway is deleted (§4
// cascades, §8) are a client race, not an outage: each should be stored
// (202, or here 409 since no actor runs it) or find the sensor gone (404).
// Without any held lock, the natural race deadlocked in PostgreSQL
// (the reading's insert held the sensor and waited for the gateway, the
// deletion held the gateway and waited for the sensor) and the reading
// got 503 after PostgreSQL's deadlock_timeout. (Found by an audit, helper
// 9, whose tests these are.)
func TestReadingsRacingAGatewayDeleteAreNeverUnavailable(t *testing.T) {
	t.Parallel()
	e, pool := poolEnv(t, api.Options{})
	ctx := context.Background()
	factory := e.factory(e.org("Race"), "Plant")

	var unavailable, other atomic.Int32
	var others sync.Map
	const rounds = 40
	for round := 0; round < rounds && unavailable.Load() == 0; round++ {
		gw := e.gateway(factory, fmt.Sprintf("race-%d", round))["id"].(string)
		var sensor string
		require.NoError(t, pool.QueryRow(ctx, `INSERT INTO sensors (gateway_id, serial, name) VALUES ($1, 1, 's') RETURNING id::text`,
			gw).Scan(&sensor))

		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := 0; w < 3; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					r := e.do("POST", "/api/sensors/"+sensor+"/readings", nil)
					switch r.status {
					case 202, 409, 404:
					case 503:
						unavailable.Add(1)
					default:
						other.Add(1)
						others.Store(r.status, string(r.body))
					}
					if r.status == 404 {
						return // the sensor is gone
					}
				}
			}()
		}
		r := e.do("DELETE", "/api/gateways/"+gw, nil)
		close(stop)
		wg.Wait()
		require.Equal(t, 204, r.status, string(r.body))
	}
	others.Range(func(k, v any) bool { t.Logf("unexpected %v: %v", k, v); return true })
	if unavailable.Load() > 0 {
		assert.Contains(t, e.logText(), "deadlock detected", "the 503s cause, as logged")
	}
	assert.Zero(t, other.Load(), "answers other than 202/404/409")
	assert.Zero(t, unavailable.Load(), "readings racing their gateway's deletion answered 503 SERVICE_UNAVAILABLE (a deadlock, not an outage)")
}
