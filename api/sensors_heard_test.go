package api_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// (Found by an audit, helper 4, whose test this is.) README ("Lenient fields", the project's choice where API.md §7 is
// silent): "A serial a list leaves out is disconnected unless the gateway
// has heard from it since the list (a temperature or a reading's start
// after the answer keeps it connected: the gateway just reported it; the
// next list decides again)". API.md §7: "NOT_DYN_TEMP sets the sensor's
// last_temperature_c / _at".
//
// A live discover leaves serial 10002 out (connected false), then the
// gateway reports a temperature of 10002: heard from since the list, it
// is connected. It stays connected=false until the next list, while the
// same two facts written in the other order (the writer's flush writes
// temperatures before discoveries) leave it connected.
func TestSensorHeardFromAfterTheListIsConnected(t *testing.T) {
	e, id, sg, sensors := readingEnv(t)
	require.True(t, sg.RemoveSensor(10002))
	r := e.do("POST", "/api/gateways/"+id+"/sensors/discover", nil)
	require.Equal(t, 200, r.status, string(r.body))
	listed := e.sensorsIn(r)
	require.Equal(t, false, listed[10002]["connected"], "left out of the list: disconnected")
	require.Equal(t, true, listed[10001]["connected"])

	require.Equal(t, 1, sg.PushTemperature(10002, 31.5))
	got := e.waitSensors(id, func(m map[float64]map[string]any) bool {
		return m[10002]["last_temperature_c"] == 31.5
	}, "the temperature is stored")[10002]
	seen, err := time.Parse(time.RFC3339, got["last_seen_at"].(string))
	require.NoError(t, err)
	listedAt, err := time.Parse(time.RFC3339, listed[10002]["last_seen_at"].(string))
	require.NoError(t, err)
	require.True(t, seen.After(listedAt), "heard from after the list")
	assert.Equal(t, true, got["connected"], "sensor %s heard from at %s, after the list: connected", sensors[10002]["id"], seen)
}
