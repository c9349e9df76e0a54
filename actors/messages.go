package actors

import (
	"time"

	"github.com/google/uuid"

	"github.com/ctcgw/gatewayd/ctc"
	"github.com/ctcgw/gatewayd/store"
)

// Messages the supervisor takes (from the Runtime facade).
type (
	// converge carries a full read of the active gateways, made at readAt.
	converge struct {
		conns  []store.Connection
		readAt time.Time
	}
	startGateway      struct{ conn store.Connection }
	updateGateway     struct{ conn store.Connection }
	stopGateways      struct{ ids []uuid.UUID }
	connectGateway    struct{ id uuid.UUID }
	disconnectGateway struct{ id uuid.UUID }
	getStatus         struct{ id uuid.UUID }
	getRecord         struct{ id uuid.UUID }
	listStatuses      struct{ factoryID *uuid.UUID }
	crashGateway      struct{ id uuid.UUID }
	// notFound answers a request about a gateway the runtime does not run.
	notFound struct{}
	// notRunning answers a crash request for a gateway with no actor.
	notRunning struct{ state State }
	accepted   struct{}
)

// Messages between the supervisor and its gateway actors.
type (
	// reconfigure tells a gateway actor that its wanted settings changed.
	reconfigure   struct{}
	statusChanged struct{ status Status }
	crash         struct{}
)

// Messages a gateway actor sends itself from its goroutines and timers,
// stamped with the connection generation they belong to.
type (
	dialed struct {
		gen uint64
		err error
	}
	frame struct {
		gen uint64
		msg ctc.Message
		err error // a malformed frame
	}
	readEnded struct {
		gen uint64
		err error
	}
	pong       struct{ gen uint64 }
	timerFired struct {
		gen  uint64
		kind timerKind
	}
)

type timerKind int

const (
	timerRetry    timerKind = iota // BACKOFF is over
	timerDeadline                  // the oldest request's answer is due
	timerPing                      // time to ping
	timerPong                      // the pong did not come
	numTimers
)

// ChaosPanic is the panic value of a crash requested through the chaos
// endpoint, so a drill is never mistaken for a real fault.
const ChaosPanic = "chaos: crash requested"
