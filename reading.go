package gatewayd

import (
	"time"

	"github.com/google/uuid"
)

// Trigger says why a reading was taken.
type Trigger string

// The triggers.
const (
	TriggerManual    Trigger = "MANUAL"    // asked for through the API
	TriggerScheduled Trigger = "SCHEDULED" // the sensor's reading_interval
	TriggerGateway   Trigger = "GATEWAY"   // pushed by the gateway unasked
)

// ReadingStatus is where a reading is in its life.
type ReadingStatus string

// The reading statuses, in the only order they may follow.
const (
	ReadingQueued   ReadingStatus = "QUEUED"
	ReadingRunning  ReadingStatus = "RUNNING"
	ReadingComplete ReadingStatus = "COMPLETE"
	ReadingFailed   ReadingStatus = "FAILED"
)

// Done reports whether the status is final.
func (s ReadingStatus) Done() bool { return s == ReadingComplete || s == ReadingFailed }

// Reading is one vibration acquisition of a sensor.
type Reading struct {
	ID           uuid.UUID
	SensorID     uuid.UUID
	GatewayID    uuid.UUID
	Trigger      Trigger
	Status       ReadingStatus
	Error        *string
	RequestedAt  time.Time
	StartedAt    *time.Time
	CompletedAt  *time.Time
	SampleRateHz *float64
	Samples      *int
	// Summary is the analysis as JSON (per axis), once complete.
	Summary []byte
}

// Waveform is a reading's samples in g, one slice per axis.
type Waveform struct {
	SampleRateHz float64
	X, Y, Z      []float32
}

// ReadingUpdate is a reading's state as the runtime knows it, with its
// samples once complete. A reading the gateway pushed unasked has no
// SensorID yet: Serial names the sensor, which is inserted if unknown
// (nothing a gateway reports is dropped).
type ReadingUpdate struct {
	Reading Reading
	Serial  int64
	// Packed is the samples packed as stored (the runtime packs them off
	// the writer, in its processing workers).
	Packed *PackedWaveform
}

// PackedWaveform is a reading's samples as reading_samples stores them:
// Data in Format (internal/wavepack).
type PackedWaveform struct {
	Format int16
	Data   []byte
}

// The errors of a failed reading, as operators see them.
const (
	ReadingErrConnectionLost = "connection lost"
	ReadingErrInterrupted    = "interrupted"
	ReadingErrAbandoned      = "abandoned: no gateway took it"
	ReadingErrRefused        = "refused by gateway"
	ReadingErrMalformed      = "malformed waveform"
)

// ReadingRef is a reading that reached a final state, as stored: what
// events and metrics say of it.
type ReadingRef struct {
	ID          uuid.UUID
	SensorID    uuid.UUID
	GatewayID   uuid.UUID
	FactoryID   uuid.UUID
	Trigger     Trigger
	Status      ReadingStatus
	RequestedAt time.Time
	CompletedAt time.Time
}
