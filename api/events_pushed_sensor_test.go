package api_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A NOT_DYN_READING nobody asked for, about a serial gatewayd does not
// know yet, inserts that sensor (API.md §7: "nothing a gateway reports is
// dropped"; §8: stored with trigger GATEWAY). The new sensor is a sensor
// change a client can see in GET /api/gateways/:id/sensors, and the
// reading.completed that follows names it as sensor_id, so /api/events
// must announce it with sensor.updated {id, gateway_id} (API.md §9), on
// the unfiltered stream and on the gateway's factory's stream alike.
// (Found by an audit, helper 5, whose test this is.) It never came:
// store.SaveReadings inserted the sensor with changed=false and a nil
// factory_id, and the writer only published the readings.
func TestSensorInsertedByAPushedReadingIsAnnounced(t *testing.T) {
	e, id, sg, _ := readingEnv(t)
	base := e.listen()
	all, stopAll := subscribe(t, base, "")
	defer stopAll()
	plant, stopPlant := subscribe(t, base, "?factory_id="+e.factoryID)
	defer stopPlant()
	require.Eventually(t, func() bool { return e.h.Telemetry.Events.Subscribers() == 2 }, 5*time.Second, 5*time.Millisecond)

	const serial = 777 // unknown to gatewayd and to the simulator's list
	require.NotContains(t, e.sensorsOf(id), float64(serial))
	require.Equal(t, 1, sg.PushReading(serial))

	for name, ch := range map[string]<-chan sse{"unfiltered": all, "factory_id": plant} {
		// Everything up to the reading that names the new sensor.
		var before []sse
		done := next(t, ch, func(ev sse) bool {
			before = append(before, ev)
			return ev.Event == "reading.completed" && ev.Data["gateway_id"] == id
		}, name+": reading.completed of the pushed reading")
		sensorID, _ := done.Data["sensor_id"].(string)
		require.NotEmpty(t, sensorID)
		require.Equal(t, sensorID, e.sensorsOf(id)[serial]["id"], "the reading's sensor is the inserted one")
		announced := false
		for _, ev := range before {
			if ev.Event == "sensor.updated" && ev.Data["id"] == sensorID {
				announced = true
				assert.Equal(t, id, ev.Data["gateway_id"])
			}
		}
		if !announced { // not before its reading: at least soon after
			ev := next(t, ch, func(ev sse) bool { return ev.Event == "sensor.updated" && ev.Data["id"] == sensorID },
				name+": sensor.updated for the sensor the pushed reading inserted")
			assert.Equal(t, id, ev.Data["gateway_id"])
		}
	}
}
