package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
)

// (Found by an audit, helper 4, whose test this is.) README ("Lenient fields"), the project's written choice where API.md §7
// is silent: "A serial a list leaves out is disconnected unless the
// gateway has heard from it since the list (a temperature or a reading's
// start after the answer keeps it connected: the gateway just reported
// it; the next list decides again)". So a list at t1 that leaves serial 2
// out, then a temperature of serial 2 at t2 > t1, leave it connected —
// whatever order the two writes reach the database in (the writer's
// batch order, or the API's discover merging after the writer's flush).
// Here the list is written first, then the temperature: serial 2 stays
// disconnected, though the gateway reported it after the list, while the
// other order leaves it connected. The same two facts give two answers.
func TestTemperatureAfterAListConnectsWhateverTheWriteOrder(t *testing.T) {
	ctx := context.Background()
	for _, listFirst := range []bool{false, true} {
		name := map[bool]string{false: "temperature written first", true: "list written first"}[listFirst]
		t.Run(name, func(t *testing.T) {
			s, _, _, g := withGateway(t, "T"+name[:4])
			t0 := time.Now().UTC().Truncate(time.Millisecond).Add(-time.Minute)
			require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: t0,
				Sensors: []gatewayd.SensorReport{report(1, "A"), report(2, "B")}}})))
			t1, t2 := t0.Add(time.Second), t0.Add(2*time.Second)
			list := func() {
				require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: t1,
					Sensors: []gatewayd.SensorReport{report(1, "A")}}})))
			}
			temp := func() {
				require.NoError(t, errOf(s.RecordTemperatures(ctx, []gatewayd.Temperature{{GatewayID: g.ID, Serial: 2,
					Celsius: 21.5, At: t2}})))
			}
			if listFirst {
				list()
				temp()
			} else {
				temp()
				list()
			}
			got := sensorsBySerial(t, s, g.ID)[2]
			assert.True(t, t2.Equal(got.LastSeenAt), "last_seen_at is the temperature's")
			assert.True(t, got.Connected, "heard from at %s, after the list of %s: connected", t2, t1)
		})
	}
}
