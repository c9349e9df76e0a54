package gatewayd

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// Sensor is a wireless vibration sensor behind a gateway, as discovery
// and notifications report it and operators name and assign it.
type Sensor struct {
	ID                uuid.UUID
	GatewayID         uuid.UUID
	Serial            int64
	Name              string
	PartNumber        *string
	ReadRateHz        *float64
	Samples           *int
	Connected         bool
	EquipmentID       *uuid.UUID
	ReadingInterval   *time.Duration
	LastTemperatureC  *float64
	LastTemperatureAt *time.Time
	FirstSeenAt       time.Time
	LastSeenAt        time.Time
	Metadata          json.RawMessage
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

// Equipment is a machine in a factory that sensors are mounted on.
type Equipment struct {
	ID        uuid.UUID
	FactoryID uuid.UUID
	Name      string
	Kind      *string
	Metadata  json.RawMessage
	CreatedAt time.Time
	UpdatedAt time.Time
}

// SensorReport is one sensor as a gateway's discovery answer lists it.
type SensorReport struct {
	Serial     int64
	Name       string
	PartNumber string
	// ReadRateHz and Samples are nil when the gateway did not say (or
	// said nothing readable): the stored values stay.
	ReadRateHz *float64
	Samples    *int64
	Connected  bool
}

// Discovery is one gateway's answer to a sensor discovery, made at At.
// Serials the gateway no longer lists are disconnected, never deleted.
type Discovery struct {
	GatewayID uuid.UUID
	Sensors   []SensorReport
	At        time.Time
}

// Temperature is one NOT_DYN_TEMP notification, or (Sighting) another
// notification naming a sensor, without a temperature: the sensor is
// inserted if new and marked seen, and its temperature is left alone.
type Temperature struct {
	GatewayID uuid.UUID
	Serial    int64
	Celsius   float64
	At        time.Time
	Sighting  bool
}

// MinReadingInterval is the shortest reading schedule a sensor may have:
// a sensor captures physically, one acquisition at a time per gateway.
const MinReadingInterval = time.Minute

// MaxGatewaySensors bounds the live sensors one gateway has stored. Nothing
// a gateway reports is deleted, and a gateway naming new serials at every
// discovery or notification (broken, or hostile) filled the database every
// gateway shares; a real one serves tens. New serials past it are not
// stored (ErrSensorLimit); known ones go on being updated.
const MaxGatewaySensors = 4096

// SensorRef names a sensor that changed, with what events are filtered by.
type SensorRef struct {
	ID        uuid.UUID
	GatewayID uuid.UUID
	FactoryID uuid.UUID
}
