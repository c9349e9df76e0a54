package web_test

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/internal/testutil"
	"github.com/ctcgw/gatewayd/store"
)

// (Found by an audit, helper 14, whose test this is.) A sensor's page offers its equipment from
// names.all('equipment'): every machine of every factory, read through
// listAll, which stops at 5000 (and which a failed page turns into none:
// .catch(() => [])). Since 2956289 that read is made again on every
// navigation. In a fleet with more machines than that, the sensor's own
// machine (its name sorting after the first 5000) is not among the
// select's options, the select shows "None", and saving any other
// setting (here: the reading interval) sends equipment_id: null: the
// sensor is silently unassigned from its machine.
func TestSensorSettingsKeepEquipmentInBigFleet(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h)
	ctx := context.Background()
	g, _ := h.Add("bigfleet")
	var sensorID uuid.UUID
	testutil.Eventually(t, func() bool {
		list, err := h.Store.GatewaySensors(ctx, g.ID)
		if err == nil && len(list) > 0 {
			sensorID = list[0].ID
		}
		return sensorID != uuid.Nil
	}, 10*time.Second, "the gateway's sensors, discovered after its login")

	mine, err := h.Store.CreateEquipment(ctx, store.NewEquipment{FactoryID: g.FactoryID, Name: "zz press"})
	require.NoError(t, err)
	_, err = h.Store.UpdateSensor(ctx, sensorID, store.SensorPatch{EquipmentID: store.Some(&mine.ID)})
	require.NoError(t, err)
	// 5000 other machines, in the same factory, named before it.
	_, err = h.Pool.Exec(ctx, `INSERT INTO equipment (factory_id, name) SELECT $1, 'aa machine ' || lpad(i::text, 5, '0') FROM generate_series(1, 5000) i`, g.FactoryID)
	require.NoError(t, err)

	b := newBrowser(t)
	b.do("the sensor's page", chromedp.Navigate(base+"/#/sensors/"+sensorID.String()))
	b.wait("its settings drawn", `document.querySelector('section[aria-labelledby=set-h] input[name=reading_interval]')`, 60*time.Second)
	b.do("a reading interval", chromedp.SetValue(`section[aria-labelledby=set-h] input[name=reading_interval]`, "15m"),
		chromedp.Click(`section[aria-labelledby=set-h] button[type=submit]`))
	testutil.Eventually(t, func() bool {
		s, err := h.Store.GetSensor(ctx, sensorID)
		return err == nil && s.ReadingInterval != nil
	}, 10*time.Second, "the reading interval saved")
	s, err := h.Store.GetSensor(ctx, sensorID)
	require.NoError(t, err)
	if assert.NotNil(t, s.EquipmentID, "saving the reading interval unassigned the sensor from its machine") {
		assert.Equal(t, mine.ID, *s.EquipmentID)
	}
}
