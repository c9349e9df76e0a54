package api

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/internal/timefmt"
	"github.com/ctcgw/gatewayd/store"
)

// Time renders as timefmt.Layout: RFC 3339 in UTC with exactly three
// fraction digits. It is a TextMarshaler rather than a
// json.Marshaler because encoding/json re-scans every MarshalJSON output,
// which doubled the cost of rendering a 10,000-gateway status list.
type Time time.Time

// MarshalText writes the time in UTC with milliseconds.
func (t Time) MarshalText() ([]byte, error) {
	return timefmt.Append(make([]byte, 0, timefmt.Len), time.Time(t)), nil
}

func timePtr(t *time.Time) *Time {
	if t == nil {
		return nil
	}
	v := Time(*t)
	return &v
}

type organizationJSON struct {
	ID        uuid.UUID       `json:"id"`
	Name      string          `json:"name"`
	Metadata  json.RawMessage `json:"metadata"`
	CreatedAt Time            `json:"created_at"`
	UpdatedAt Time            `json:"updated_at"`
}

func renderOrganization(o gatewayd.Organization) organizationJSON {
	return organizationJSON{ID: o.ID, Name: o.Name, Metadata: o.Metadata, CreatedAt: Time(o.CreatedAt), UpdatedAt: Time(o.UpdatedAt)}
}

type factoryJSON struct {
	ID             uuid.UUID       `json:"id"`
	OrganizationID uuid.UUID       `json:"organization_id"`
	Name           string          `json:"name"`
	Location       *string         `json:"location"`
	Timezone       string          `json:"timezone"`
	Metadata       json.RawMessage `json:"metadata"`
	CreatedAt      Time            `json:"created_at"`
	UpdatedAt      Time            `json:"updated_at"`
}

func renderFactory(f gatewayd.Factory) factoryJSON {
	return factoryJSON{ID: f.ID, OrganizationID: f.OrganizationID, Name: f.Name, Location: f.Location, Timezone: f.Timezone,
		Metadata: f.Metadata, CreatedAt: Time(f.CreatedAt), UpdatedAt: Time(f.UpdatedAt)}
}

// gatewayJSON has no password field in any form, on purpose.
type gatewayJSON struct {
	ID              uuid.UUID       `json:"id"`
	FactoryID       uuid.UUID       `json:"factory_id"`
	GatewayID       string          `json:"gateway_id"`
	Name            string          `json:"name"`
	URL             string          `json:"url"`
	Email           string          `json:"email"`
	Model           *string         `json:"model"`
	FirmwareVersion *string         `json:"firmware_version"`
	LastSeenAt      *Time           `json:"last_seen_at"`
	DesiredState    string          `json:"desired_state"`
	Metadata        json.RawMessage `json:"metadata"`
	CreatedAt       Time            `json:"created_at"`
	UpdatedAt       Time            `json:"updated_at"`
}

func renderGateway(g gatewayd.Gateway) gatewayJSON {
	return gatewayJSON{ID: g.ID, FactoryID: g.FactoryID, GatewayID: g.GatewayID, Name: g.Name, URL: g.URL, Email: g.Email,
		Model: g.Model, FirmwareVersion: g.FirmwareVersion, LastSeenAt: timePtr(g.LastSeenAt), DesiredState: string(g.DesiredState),
		Metadata:  g.Metadata,
		CreatedAt: Time(g.CreatedAt), UpdatedAt: Time(g.UpdatedAt)}
}

type statusJSON struct {
	ID                uuid.UUID `json:"id"`
	GatewayID         string    `json:"gateway_id"`
	Name              string    `json:"name"`
	State             string    `json:"state"`
	DesiredState      string    `json:"desired_state"`
	Since             Time      `json:"since"`
	ConnectedAt       *Time     `json:"connected_at"`
	LastSeenAt        *Time     `json:"last_seen_at"`
	LastError         *string   `json:"last_error"`
	ReconnectAttempts int       `json:"reconnect_attempts"`
	NextRetryAt       *Time     `json:"next_retry_at"`
	Restarts          int       `json:"restarts"`
}

func renderStatus(s gatewayd.Status) statusJSON {
	return statusJSON{ID: s.ID, GatewayID: s.GatewayID, Name: s.Name, State: string(s.State), DesiredState: string(s.Desired), Since: Time(s.Since),
		ConnectedAt: timePtr(s.ConnectedAt), LastSeenAt: timePtr(s.LastSeenAt), LastError: s.LastError,
		ReconnectAttempts: s.ReconnectAttempts, NextRetryAt: timePtr(s.NextRetryAt), Restarts: s.Restarts}
}

type sensorJSON struct {
	ID                uuid.UUID       `json:"id"`
	GatewayID         uuid.UUID       `json:"gateway_id"`
	Serial            int64           `json:"serial"`
	Name              string          `json:"name"`
	PartNumber        *string         `json:"part_number"`
	ReadRateHz        *float64        `json:"read_rate_hz"`
	Samples           *int            `json:"samples"`
	Connected         bool            `json:"connected"`
	EquipmentID       *uuid.UUID      `json:"equipment_id"`
	ReadingInterval   *string         `json:"reading_interval"`
	LastTemperatureC  *float64        `json:"last_temperature_c"`
	LastTemperatureAt *Time           `json:"last_temperature_at"`
	FirstSeenAt       Time            `json:"first_seen_at"`
	LastSeenAt        Time            `json:"last_seen_at"`
	Metadata          json.RawMessage `json:"metadata"`
	CreatedAt         Time            `json:"created_at"`
	UpdatedAt         Time            `json:"updated_at"`
}

func renderSensor(s gatewayd.Sensor) sensorJSON {
	var interval *string
	if s.ReadingInterval != nil {
		v := s.ReadingInterval.String() // Go's duration string, "15m0s"
		interval = &v
	}
	return sensorJSON{ID: s.ID, GatewayID: s.GatewayID, Serial: s.Serial, Name: s.Name, PartNumber: s.PartNumber,
		ReadRateHz: s.ReadRateHz, Samples: s.Samples, Connected: s.Connected, EquipmentID: s.EquipmentID,
		ReadingInterval: interval, LastTemperatureC: s.LastTemperatureC, LastTemperatureAt: timePtr(s.LastTemperatureAt),
		FirstSeenAt: Time(s.FirstSeenAt), LastSeenAt: Time(s.LastSeenAt), Metadata: s.Metadata,
		CreatedAt: Time(s.CreatedAt), UpdatedAt: Time(s.UpdatedAt)}
}

type equipmentJSON struct {
	ID        uuid.UUID       `json:"id"`
	FactoryID uuid.UUID       `json:"factory_id"`
	Name      string          `json:"name"`
	Kind      *string         `json:"kind"`
	Metadata  json.RawMessage `json:"metadata"`
	CreatedAt Time            `json:"created_at"`
	UpdatedAt Time            `json:"updated_at"`
}

func renderEquipment(e gatewayd.Equipment) equipmentJSON {
	return equipmentJSON{ID: e.ID, FactoryID: e.FactoryID, Name: e.Name, Kind: e.Kind, Metadata: e.Metadata,
		CreatedAt: Time(e.CreatedAt), UpdatedAt: Time(e.UpdatedAt)}
}

type readingJSON struct {
	ID           uuid.UUID       `json:"id"`
	SensorID     uuid.UUID       `json:"sensor_id"`
	GatewayID    uuid.UUID       `json:"gateway_id"`
	Trigger      string          `json:"trigger"`
	Status       string          `json:"status"`
	Error        *string         `json:"error"`
	RequestedAt  Time            `json:"requested_at"`
	StartedAt    *Time           `json:"started_at"`
	CompletedAt  *Time           `json:"completed_at"`
	SampleRateHz *float64        `json:"sample_rate_hz"`
	Samples      *int            `json:"samples"`
	Summary      json.RawMessage `json:"summary"`
}

func renderReading(r gatewayd.Reading) readingJSON {
	summary := json.RawMessage(r.Summary)
	if len(summary) == 0 {
		summary = json.RawMessage("null")
	}
	return readingJSON{ID: r.ID, SensorID: r.SensorID, GatewayID: r.GatewayID, Trigger: string(r.Trigger),
		Status: string(r.Status), Error: r.Error, RequestedAt: Time(r.RequestedAt), StartedAt: timePtr(r.StartedAt),
		CompletedAt: timePtr(r.CompletedAt), SampleRateHz: r.SampleRateHz, Samples: r.Samples, Summary: summary}
}

// tokenJSON has no secret and no hash, on purpose.
type tokenJSON struct {
	ID         uuid.UUID `json:"id"`
	Name       string    `json:"name"`
	Role       string    `json:"role"`
	CreatedAt  Time      `json:"created_at"`
	LastUsedAt *Time     `json:"last_used_at"`
	ExpiresAt  *Time     `json:"expires_at"`
	RevokedAt  *Time     `json:"revoked_at"`
}

func renderToken(t gatewayd.Token) tokenJSON {
	return tokenJSON{ID: t.ID, Name: t.Name, Role: string(t.Role), CreatedAt: Time(t.CreatedAt),
		LastUsedAt: timePtr(t.LastUsedAt), ExpiresAt: timePtr(t.ExpiresAt), RevokedAt: timePtr(t.RevokedAt)}
}

type pagination struct {
	Total   int  `json:"total"`
	Limit   int  `json:"limit"`
	Offset  int  `json:"offset"`
	HasNext bool `json:"hasNext"`
	HasPrev bool `json:"hasPrev"`
}

type listJSON[T any] struct {
	Data       []T        `json:"data"`
	Pagination pagination `json:"pagination"`
}

func renderList[S, T any](items []S, total int, page store.Page, render func(S) T) listJSON[T] {
	out := make([]T, len(items))
	for i, it := range items {
		out[i] = render(it)
	}
	return listJSON[T]{Data: out, Pagination: pagination{Total: total, Limit: page.Limit, Offset: page.Offset,
		HasNext: page.Offset+len(items) < total, HasPrev: page.Offset > 0}}
}
