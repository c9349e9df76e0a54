// Package events is the in-process event broker behind GET /api/events.
//
// Gateway actors (state changes) and HTTP handlers (CRUD, readings) publish
// into one Broker; every Server-Sent Events stream subscribes to it. The
// broker numbers events, keeps the last few thousand in a ring so that a
// client reconnecting with Last-Event-ID loses nothing, and fans each event
// out with a non-blocking send. Publish never waits on a subscriber: a
// subscriber whose buffer fills is cut off (Overflowed) and its stream ends
// with "event: overflow"; the browser's EventSource then reconnects with
// its Last-Event-ID and resumes from the ring. A slow subscriber only ever
// hurts itself.
//
// The package starts no goroutines. The SSE write loop belongs to the HTTP
// handler; see the package example.
package events

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/google/uuid"
)

// Event types, as in API.md §9. The SSE "event:" line carries the type.
const (
	TypeGatewayState     = "gateway.state"
	TypeGatewayCreated   = "gateway.created"
	TypeGatewayUpdated   = "gateway.updated"
	TypeGatewayDeleted   = "gateway.deleted"
	TypeSensorUpdated    = "sensor.updated"
	TypeReadingCompleted = "reading.completed"
	TypeReadingFailed    = "reading.failed"
)

// ErrInvalidEvent is returned for an event that would break the SSE framing
// or the contract: an empty or multi-line type, or data that is not a
// one-line JSON object.
var ErrInvalidEvent = errors.New("events: invalid event")

// Event is one published event. The broker hands out the published event
// as a pointer shared, never copied, by the ring, every subscriber and every
// replay, so nobody may modify it or its Data after Publish.
type Event struct {
	// ID is assigned by the broker: strictly increasing from 1 within one
	// process. Publish ignores the caller's value.
	ID uint64
	// Type is one of the Type constants.
	Type string
	// FactoryID and GatewayID are what filters match on; uuid.Nil means
	// "not about a factory" / "not about a gateway". They need not appear in
	// Data: a publisher sets FactoryID on every event about something that
	// lives in a factory (a gateway's sensor and reading events carry the
	// gateway's factory), so that a factory_id stream sees the whole story
	// of the factory's gateways.
	FactoryID uuid.UUID
	GatewayID uuid.UUID
	// Data is the JSON object sent on the "data:" line, marshalled once by
	// the publisher (see PublishJSON). It must be one line; empty is sent as
	// {}. In a published event it is part of frame.
	Data []byte

	// frame is the whole SSE frame (id, event and data lines and the blank
	// line), encoded once by Publish so that each delivery is one copy of
	// it; nil in an event that did not come from a broker.
	frame []byte
}

// validate rejects what WriteSSE could not frame, at the publisher, where
// the bug is, rather than in every stream that would later replay it.
// It is cheap: a few byte scans, no parsing.
func (e Event) validate() error {
	if e.Type == "" || !oneLine(e.Type) {
		return fmt.Errorf("%w: type %q is empty or not one line", ErrInvalidEvent, e.Type)
	}
	if len(e.Data) == 0 {
		return nil
	}
	if e.Data[0] != '{' || e.Data[len(e.Data)-1] != '}' {
		return fmt.Errorf("%w: %s data is not a JSON object", ErrInvalidEvent, e.Type)
	}
	if bytes.IndexByte(e.Data, '\n') >= 0 || bytes.IndexByte(e.Data, '\r') >= 0 {
		return fmt.Errorf("%w: %s data is not one line", ErrInvalidEvent, e.Type)
	}
	return nil
}

// Filter selects the events a subscriber wants; a nil field matches any
// event. It mirrors the factory_id and gateway_id query parameters.
type Filter struct {
	FactoryID *uuid.UUID
	GatewayID *uuid.UUID
}

// Match reports whether e passes the filter. An event whose field is
// uuid.Nil never matches a filter on that field: an event with no factory
// (or no gateway) is not about the one the client asked for, and letting it
// through would leak unrelated events into a stream the client scoped.
// Publishers therefore fill FactoryID for everything that has a factory.
func (f Filter) Match(e Event) bool { return f.match(&e) }

func (f Filter) match(e *Event) bool {
	if f.FactoryID != nil && (e.FactoryID == uuid.Nil || e.FactoryID != *f.FactoryID) {
		return false
	}
	if f.GatewayID != nil && (e.GatewayID == uuid.Nil || e.GatewayID != *f.GatewayID) {
		return false
	}
	return true
}

// clone copies the filter's values, so that a caller changing the UUIDs it
// pointed at after Subscribe cannot race with Publish.
func (f Filter) clone() Filter {
	var c Filter
	if f.FactoryID != nil {
		id := *f.FactoryID
		c.FactoryID = &id
	}
	if f.GatewayID != nil {
		id := *f.GatewayID
		c.GatewayID = &id
	}
	return c
}
