package actors_test

// (Found by an audit, helper 12, whose test this is.) the writer's per-gateway bound on pending sensor
// reports (maxPendingSerials, 1,024) drops real sensors' temperatures in
// normal operation, with the database up.

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/ctc/ctctest"
	"github.com/ctcgw/gatewayd/internal/testutil"
	"github.com/ctcgw/gatewayd/store"
)

// API.md §7: "NOT_DYN_TEMP sets the sensor's last_temperature_c / _at ...
// nothing a gateway reports is dropped." API.md sets no bound on a
// gateway's sensors, and README's flood limits let a peer send bursts of
// 2,000 frames. A gateway with 1,900 discovered sensors that reports each
// one's temperature once (one burst, well inside the flood limits, the
// database up, the production flush interval of 1 s) must get all 1,900
// stored. The writer drops every report past the 1,024th new serial of a
// gateway waiting for the next flush, so ~876 known sensors keep no
// temperature.
func TestTemperatureBurstOfOneGatewayIsStoredWhole(t *testing.T) {
	cfg := actorstest.FastConfig()
	cfg.SensorFlushInterval = time.Second // the production default
	h := newHarness(t, cfg)
	const n = 1900
	name := "many-sensors"
	email, pw := actorstest.Credentials(name)
	sim := h.Sim.Add(name, ctctest.Config{Email: email, Password: pw, Sensors: ctctest.DefaultSensors(n)})
	g, err := h.Store.CreateGateway(context.Background(), store.NewGateway{FactoryID: h.Factory, GatewayID: name, Name: name, URL: sim.URL(), Email: email, Password: pw})
	require.NoError(t, err)
	h.Runtime.GatewayStarted(g.Target(pw))
	h.WaitState(g.ID, gatewayd.StateAuthenticated, 20*time.Second)

	count := func(q string) int {
		var c int
		require.NoError(t, h.Pool.QueryRow(context.Background(), q, g.ID).Scan(&c))
		return c
	}
	// Discovery stored every sensor (not bounded).
	eventually(t, func() bool {
		return count(`SELECT count(*) FROM sensors WHERE gateway_id = $1 AND deleted_at IS NULL`) == n
	}, 30*time.Second, "all %d sensors discovered", n)
	// Subscribed: a push reaches the socket.
	eventually(t, func() bool { return sim.PushTemperature(ctctest.DefaultSerialBase+1, 33.5) == 1 }, 10*time.Second, "subscribed")

	for k := 1; k <= n; k++ {
		require.Equal(t, 1, sim.PushTemperature(ctctest.DefaultSerialBase+int64(k), 33.5))
	}
	stored := func() int {
		return count(`SELECT count(*) FROM sensors WHERE gateway_id = $1 AND deleted_at IS NULL AND last_temperature_c = 33.5`)
	}
	testutil.Poll(func() bool { return stored() >= n }, 20*time.Second) // a miss is told below
	require.Equal(t, gatewayd.StateAuthenticated, h.Status(g.ID).State, "the burst is inside the flood limits")
	require.Equal(t, n, stored(), "every reported temperature stored (API.md §7: nothing a gateway reports is dropped)")
}
