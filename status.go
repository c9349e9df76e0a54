package gatewayd

import (
	"time"

	"github.com/google/uuid"
)

// State is a gateway connection's state (API.md §4).
type State string

// The states.
const (
	StateConnecting    State = "CONNECTING"
	StateConnected     State = "CONNECTED"
	StateAuthenticated State = "AUTHENTICATED"
	StateBackoff       State = "BACKOFF"
	StateAuthFailed    State = "AUTH_FAILED"
	StateDisconnected  State = "DISCONNECTED"
	StateFailed        State = "FAILED"
)

// States lists every state, in the order of the documentation.
var States = []State{StateConnecting, StateConnected, StateAuthenticated, StateBackoff, StateAuthFailed, StateDisconnected, StateFailed}

// Status is a gateway's live state as its actor (or, when the actor is
// gone, the supervisor's record) reports it.
type Status struct {
	ID                uuid.UUID
	FactoryID         uuid.UUID
	GatewayID         string
	Name              string
	State             State
	Desired           DesiredState
	Since             time.Time
	ConnectedAt       *time.Time
	LastSeenAt        *time.Time
	LastError         *string
	ReconnectAttempts int
	NextRetryAt       *time.Time
	Restarts          int
}
