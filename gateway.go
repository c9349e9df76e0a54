package gatewayd

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/google/uuid"
)

// Organization owns factories.
type Organization struct {
	ID        uuid.UUID
	Name      string
	Metadata  json.RawMessage
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Factory belongs to an organization and owns gateways.
type Factory struct {
	ID             uuid.UUID
	OrganizationID uuid.UUID
	Name           string
	Location       *string
	Timezone       string
	Metadata       json.RawMessage
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Gateway is a CTC Connect Wireless gateway as the API shows it. It never
// carries the password in any form.
type Gateway struct {
	ID              uuid.UUID
	FactoryID       uuid.UUID
	GatewayID       string
	Name            string
	URL             string
	Email           string
	Model           *string
	FirmwareVersion *string
	LastSeenAt      *time.Time
	DesiredState    DesiredState
	Metadata        json.RawMessage
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// DesiredState is what the operator wants of a gateway's connection.
type DesiredState string

// The desired states.
const (
	DesiredConnected    DesiredState = "CONNECTED"
	DesiredDisconnected DesiredState = "DISCONNECTED"
)

// Valid reports whether d is one of the desired states.
func (d DesiredState) Valid() bool { return d == DesiredConnected || d == DesiredDisconnected }

// Credentials are what a connection logs in with. Password is plaintext:
// it lives only in memory.
type Credentials struct {
	URL      string
	Email    string
	Password string
	// Unreadable is set when the stored password cannot be decrypted (wrong
	// ENCRYPTION_KEY or a damaged row); Password is then empty.
	Unreadable bool
}

// Differs reports whether a connection made with c would differ from one
// made with o, so that switching from one to the other needs a reconnect.
func (c Credentials) Differs(o Credentials) bool {
	return c.URL != o.URL || c.Email != o.Email || c.Password != o.Password || c.Unreadable != o.Unreadable
}

// Target is one gateway as the runtime keeps it: whom to connect to, how
// to log in, whether the operator wants it connected at all, and which of
// its sensors are read on a schedule.
type Target struct {
	ID        uuid.UUID
	FactoryID uuid.UUID
	GatewayID string
	Name      string
	Desired   DesiredState
	Credentials
	// Schedules are the sensors with a reading_interval, by sensor id.
	Schedules []Schedule
	// LastSeenAt is the database's, for the status of a gateway not seen
	// since the runtime started: an observation, not a setting, so Equal
	// leaves it out.
	LastSeenAt *time.Time
}

// Equal reports whether t and o are the same in every setting.
func (t Target) Equal(o Target) bool {
	return t.ID == o.ID && t.FactoryID == o.FactoryID && t.GatewayID == o.GatewayID && t.Name == o.Name &&
		t.Desired == o.Desired && t.Credentials == o.Credentials && slices.Equal(t.Schedules, o.Schedules)
}

// Schedule says a sensor is read every Interval.
type Schedule struct {
	SensorID uuid.UUID
	Serial   int64
	Interval time.Duration
}

// Target is the gateway as the runtime keeps it, logging in with password.
func (g Gateway) Target(password string) Target {
	return Target{ID: g.ID, FactoryID: g.FactoryID, GatewayID: g.GatewayID, Name: g.Name, Desired: g.DesiredState,
		Credentials: Credentials{URL: g.URL, Email: g.Email, Password: password}, LastSeenAt: g.LastSeenAt}
}

// GatewayRef names a gateway, with its factory.
type GatewayRef struct {
	ID        uuid.UUID
	FactoryID uuid.UUID
}
