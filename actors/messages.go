package actors

import (
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/semaphore"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/ctc"
)

// Messages the supervisor takes (from the Runtime facade).
type (
	// converge carries a full read of the gateways, made at readAt.
	converge struct {
		targets []gatewayd.Target
		readAt  time.Time
	}
	// upsertGateway: a gateway was created or changed through the API.
	upsertGateway     struct{ target gatewayd.Target }
	stopGateways      struct{ ids []uuid.UUID }
	connectGateway    struct{ id uuid.UUID }
	disconnectGateway struct{ id uuid.UUID }
	getStatus         struct{ id uuid.UUID }
	getRecord         struct{ id uuid.UUID }
	listStatuses      struct{ factoryID *uuid.UUID }
	crashGateway      struct{ id uuid.UUID }
	discoverSensors   struct{ id uuid.UUID }
)

// reply is every answer to a request: one type per request kind, asserted
// once by the Runtime, never sorted by a type switch.
type reply[T any] struct {
	value T
	err   error
}

type (
	statusReply    = reply[gatewayd.Status]
	statusesReply  = reply[[]gatewayd.Status]
	doneReply      = reply[struct{}]
	discoveryReply = reply[gatewayd.Discovery]
)

// Messages between the supervisor and its gateway actors.
type (
	// reconfigure tells a gateway actor that its wanted settings changed.
	reconfigure   struct{}
	statusChanged struct{ status gatewayd.Status }
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
		// inbox and cost: the reader's budget this frame holds until the
		// actor has handled it.
		inbox *semaphore.Weighted
		cost  int64
		// ledger and reserved: the reading intake's bytes this frame
		// holds until the actor has handled it (0 for a small frame).
		ledger   *ledger
		reserved int64
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
	timerHealthy                   // the connection stayed up a ping interval
	timerRefresh                   // time to ask for the sensors again
	numTimers
)

// ChaosPanic is the panic value of a crash requested through the chaos
// endpoint, so a drill is never mistaken for a real fault.
const ChaosPanic = "chaos: crash requested"
