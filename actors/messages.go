package actors

import (
	"sync/atomic"
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
		// authFailed, with the first read only: the gateways whose login
		// was refused before this process (by id, the gateway's error).
		authFailed map[uuid.UUID]string
	}
	// upsertGateway: a gateway was created or changed through the API.
	upsertGateway struct{ target gatewayd.Target }
	stopGateways  struct {
		ids  []uuid.UUID
		then func() // run by the supervisor once they are removed (nil: nothing)
	}
)

// Requests the Runtime waits for an answer to; each carries its answer.
type (
	connectGateway struct {
		id uuid.UUID
		asks[gatewayd.Status]
	}
	disconnectGateway struct {
		id uuid.UUID
		asks[gatewayd.Status]
	}
	getStatus struct {
		id uuid.UUID
		asks[gatewayd.Status]
	}
	getRecord struct {
		id uuid.UUID
		asks[gatewayd.Status]
	}
	listStatuses struct {
		factoryID *uuid.UUID
		asks[[]gatewayd.Status]
	}
	crashGateway struct {
		id uuid.UUID
		asks[struct{}]
	}
	discoverSensors struct {
		id uuid.UUID
		asks[gatewayd.Discovery]
	}
)

// reply is every answer to a request: one type per request kind, never
// sorted by a type switch.
type reply[T any] struct {
	value T
	err   error
}

// answer is a request's way back to the Runtime, which waits on it: a
// channel with room for the one answer, so answering never blocks an
// actor, and an answer nobody waits for any more is garbage.
//
// Why not Proto.Actor's RequestFuture and Respond: a reply that arrives
// as the future times out is written to the future without its lock while
// the waiter reads it (a data race the race detector reported under load;
// open upstream, asynkron/protoactor-go#1145), and every future takes an
// entry in the process registry.
type answer[T any] chan reply[T]

// send answers; a second answer to one request is dropped.
func (a answer[T]) send(v T, err error) {
	select {
	case a <- reply[T]{value: v, err: err}:
	default:
	}
}

func (a answer[T]) fail(err error) {
	var zero T
	a.send(zero, err)
}

// asks is embedded in each request; ask fills it in.
type asks[T any] struct{ ans answer[T] }

func (q *asks[T]) answers() answer[T] {
	if q.ans == nil {
		q.ans = make(answer[T], 1)
	}
	return q.ans
}

// undelivered answers a request that reached no actor (sent to a PID
// that had stopped): the Runtime then learns it at once, as a future
// learned it from Proto.Actor's dead-letter response.
func (q *asks[T]) undelivered() { q.ans.fail(errUndelivered) }

// IgnoreDeadLetterLogging: an undelivered request is answered, and the
// Runtime's caller decides what it means.
func (*asks[T]) IgnoreDeadLetterLogging() {}

// question is what ask sends: a request that carries its answer.
type question[T any] interface{ answers() answer[T] }

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
		// share: the fleet's inbox share, which this frame may hold a
		// part of until the actor has handled it (see inboxShare).
		share *inboxShare
		// ledger and reserved: the reading intake's bytes this frame
		// holds until the actor has handled it (0 for a small frame).
		ledger   *ledger
		reserved int64
		// text, when set, is the buffer the reading's samples point into
		// (decoded in place): whoever takes the samples gives it back to
		// the frame pool once they are decoded; dropped, it is garbage.
		text *[]byte
	}
	readEnded struct {
		gen uint64
		err error
	}
	// quiet: the new socket had nothing more to read; the login goes out.
	quiet struct{ gen uint64 }
	pong  struct {
		gen     uint64
		pending *atomic.Bool // set while this pong waits for the actor
	}
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
