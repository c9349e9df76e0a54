// Package telemetry carries what the runtime observes to the metrics and
// to the event stream: it is the runtime's Observer.
package telemetry

import (
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/events"
	"github.com/ctcgw/gatewayd/metrics"
)

// Observer counts and publishes; it is safe for concurrent use.
type Observer struct {
	Metrics *metrics.Metrics
	Events  *events.Broker
	Log     zerolog.Logger
}

// GatewayState publishes gateway.state and moves the state gauges. The
// event's data is {id, factory_id, gateway_id, name, from, to, at,
// last_error} (appendStateEvent).
func (o *Observer) GatewayState(from gatewayd.State, st gatewayd.Status) {
	o.Metrics.GatewayState(from, st.State)
	if st.State == "" {
		return // removed: the API publishes gateway.deleted
	}
	data := appendStateEvent(make([]byte, 0, stateEventSize), st, from)
	_, err := o.Events.Publish(events.Event{Type: events.TypeGatewayState, FactoryID: st.FactoryID, GatewayID: st.ID, Data: data})
	o.published(events.TypeGatewayState, err)
}

// Dialed counts a dial.
func (o *Observer) Dialed(err error, took time.Duration) { o.Metrics.Dialed(err == nil, took) }

// LoginAnswered counts an answer to POST_LOGIN.
func (o *Observer) LoginAnswered(result string) { o.Metrics.LoginAnswered(result) }

// ActorRestarted counts a restart.
func (o *Observer) ActorRestarted() { o.Metrics.ActorRestarted() }

// FloodCutOff counts a flooding gateway cut off.
func (o *Observer) FloodCutOff() { o.Metrics.FloodCutOff() }

type sensorEvent struct {
	ID        uuid.UUID `json:"id"`
	GatewayID uuid.UUID `json:"gateway_id"`
}

// SensorsChanged publishes sensor.updated for each sensor.
func (o *Observer) SensorsChanged(refs []gatewayd.SensorRef) {
	for _, r := range refs {
		o.publish(events.TypeSensorUpdated, r.FactoryID, r.GatewayID, sensorEvent{ID: r.ID, GatewayID: r.GatewayID})
	}
}

type readingEvent struct {
	ID        uuid.UUID              `json:"id"`
	SensorID  uuid.UUID              `json:"sensor_id"`
	GatewayID uuid.UUID              `json:"gateway_id"`
	Trigger   gatewayd.Trigger       `json:"trigger"`
	Status    gatewayd.ReadingStatus `json:"status"`
}

// ReadingsDone counts readings and publishes reading.completed or
// reading.failed for each.
func (o *Observer) ReadingsDone(refs []gatewayd.ReadingRef) {
	for _, r := range refs {
		o.Metrics.ReadingDone(r)
		typ := events.TypeReadingCompleted
		if r.Status == gatewayd.ReadingFailed {
			typ = events.TypeReadingFailed
		}
		o.publish(typ, r.FactoryID, r.GatewayID, readingEvent{ID: r.ID, SensorID: r.SensorID, GatewayID: r.GatewayID,
			Trigger: r.Trigger, Status: r.Status})
	}
}

// GatewayChanged publishes gateway.created, updated or deleted (from the
// API, which knows which).
func (o *Observer) GatewayChanged(typ string, g gatewayd.GatewayRef) {
	o.publish(typ, g.FactoryID, g.ID, struct {
		ID        uuid.UUID `json:"id"`
		FactoryID uuid.UUID `json:"factory_id"`
	}{g.ID, g.FactoryID})
}

func (o *Observer) publish(typ string, factoryID, gatewayID uuid.UUID, payload any) {
	_, err := o.Events.PublishJSON(typ, factoryID, gatewayID, payload)
	o.published(typ, err)
}

// published logs an event that could not be published.
func (o *Observer) published(typ string, err error) {
	if err != nil {
		o.Log.Error().Err(err).Str("type", typ).Msg("event not published")
	}
}
