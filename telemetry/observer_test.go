package telemetry_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/events"
	"github.com/ctcgw/gatewayd/metrics"
	"github.com/ctcgw/gatewayd/telemetry"
)

func newObserver() *telemetry.Observer {
	return &telemetry.Observer{Metrics: metrics.New(), Events: events.NewBroker(100), Log: zerolog.Nop()}
}

// gauge reads gatewayd_gateways{state}.
func gauge(t *testing.T, o *telemetry.Observer, state gatewayd.State) float64 {
	t.Helper()
	families, err := o.Metrics.Registry.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != "gatewayd_gateways" {
			continue
		}
		for _, m := range f.GetMetric() {
			if m.GetLabel()[0].GetValue() == string(state) {
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no gatewayd_gateways{state=%q}", state)
	return 0
}

// A gateway removed from the runtime (its last change has no state) leaves
// the state gauges, and publishes no gateway.state (the API publishes
// gateway.deleted).
func TestRemovedGatewayLeavesTheGauges(t *testing.T) {
	o := newObserver()
	sub := o.Events.Subscribe(events.Filter{}, 0, 10)
	defer sub.Close()
	st := gatewayd.Status{ID: uuid.New(), FactoryID: uuid.New(), State: gatewayd.StateAuthenticated, Since: time.Now()}
	o.GatewayState("", st)
	require.Equal(t, 1.0, gauge(t, o, gatewayd.StateAuthenticated))
	require.NotNil(t, sub.Next(), "the state change is published")

	st.State = ""
	o.GatewayState(gatewayd.StateAuthenticated, st)
	assert.Zero(t, gauge(t, o, gatewayd.StateAuthenticated), "a removed gateway is no longer counted")
	assert.Nil(t, sub.Next(), "a removal is no gateway.state")
}

// A gateway's state change carries its factory, so a stream filtered by
// factory_id sees it (events.Filter never matches an event without one).
func TestStateEventsReachTheirFactorysStream(t *testing.T) {
	o := newObserver()
	factory, other := uuid.New(), uuid.New()
	mine := o.Events.Subscribe(events.Filter{FactoryID: &factory}, 0, 10)
	defer mine.Close()
	theirs := o.Events.Subscribe(events.Filter{FactoryID: &other}, 0, 10)
	defer theirs.Close()
	st := gatewayd.Status{ID: uuid.New(), FactoryID: factory, State: gatewayd.StateConnecting, Since: time.Now()}
	o.GatewayState("", st)
	ev := mine.Next()
	require.NotNil(t, ev, "the factory's stream has the gateway's state change")
	assert.Equal(t, events.TypeGatewayState, ev.Type)
	var data map[string]any
	require.NoError(t, json.Unmarshal(ev.Data, &data))
	assert.Equal(t, factory.String(), data["factory_id"])
	assert.Equal(t, "CONNECTING", data["to"])
	assert.Nil(t, theirs.Next(), "another factory's stream does not")
}

// Every sensor in a change is published, each as its own sensor.updated
// with its gateway and factory.
func TestEverySensorChangeIsPublished(t *testing.T) {
	o := newObserver()
	factory, gw := uuid.New(), uuid.New()
	sub := o.Events.Subscribe(events.Filter{FactoryID: &factory, GatewayID: &gw}, 0, 10)
	defer sub.Close()
	refs := []gatewayd.SensorRef{{ID: uuid.New(), GatewayID: gw, FactoryID: factory}, {ID: uuid.New(), GatewayID: gw, FactoryID: factory},
		{ID: uuid.New(), GatewayID: gw, FactoryID: factory}}
	o.SensorsChanged(refs)
	for i, r := range refs {
		ev := sub.Next()
		require.NotNil(t, ev, "sensor %d of %d", i+1, len(refs))
		assert.Equal(t, events.TypeSensorUpdated, ev.Type)
		assert.JSONEq(t, `{"id":"`+r.ID.String()+`","gateway_id":"`+gw.String()+`"}`, string(ev.Data))
	}
	assert.Nil(t, sub.Next())
}

// reading.completed and reading.failed say which reading of which sensor
// and gateway ended, how (status) and why it was taken (trigger).
func TestReadingEventsCarryTheirTriggerAndStatus(t *testing.T) {
	o := newObserver()
	sub := o.Events.Subscribe(events.Filter{}, 0, 10)
	defer sub.Close()
	now := time.Now()
	refs := []gatewayd.ReadingRef{
		{ID: uuid.New(), SensorID: uuid.New(), GatewayID: uuid.New(), FactoryID: uuid.New(), Trigger: gatewayd.TriggerScheduled,
			Status: gatewayd.ReadingComplete, RequestedAt: now, CompletedAt: now},
		{ID: uuid.New(), SensorID: uuid.New(), GatewayID: uuid.New(), FactoryID: uuid.New(), Trigger: gatewayd.TriggerGateway,
			Status: gatewayd.ReadingFailed, RequestedAt: now, CompletedAt: now},
	}
	o.ReadingsDone(refs)
	for _, r := range refs {
		ev := sub.Next()
		require.NotNil(t, ev)
		want := map[gatewayd.ReadingStatus]string{gatewayd.ReadingComplete: events.TypeReadingCompleted,
			gatewayd.ReadingFailed: events.TypeReadingFailed}[r.Status]
		assert.Equal(t, want, ev.Type)
		assert.Equal(t, r.FactoryID, ev.FactoryID)
		assert.Equal(t, r.GatewayID, ev.GatewayID)
		assert.JSONEq(t, `{"id":"`+r.ID.String()+`","sensor_id":"`+r.SensorID.String()+`","gateway_id":"`+r.GatewayID.String()+
			`","trigger":"`+string(r.Trigger)+`","status":"`+string(r.Status)+`"}`, string(ev.Data))
	}
}
