// Package actors is gatewayd's supervision runtime (Proto.Actor): one
// supervisor per process and one gateway actor per active gateway. Each
// gateway actor is the only owner of its WebSocket, its retry policy and
// its state, so a crash, a refused login, a dropped socket or garbage from
// one gateway never touches another's connection.
package actors

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

// Desired is what the operator wants of a gateway.
type Desired string

// The desired states.
const (
	DesiredConnected    Desired = "CONNECTED"
	DesiredDisconnected Desired = "DISCONNECTED"
)

// Status is a gateway's live state as its actor (or, when the actor is
// gone, the supervisor's record) reports it.
type Status struct {
	ID                uuid.UUID
	FactoryID         uuid.UUID
	State             State
	Desired           Desired
	Since             time.Time
	ConnectedAt       *time.Time
	LastSeenAt        *time.Time
	LastError         *string
	ReconnectAttempts int
	NextRetryAt       *time.Time
	Restarts          int
}
