package gatewayd

import "errors"

// The errors that cross layer boundaries. Layers wrap them with context
// (fmt.Errorf("get gateway: %w", ErrNotFound)); the API maps them to HTTP
// in one place. Driver and library errors never cross a boundary.
var (
	// ErrNotFound: the resource does not exist, is deleted, or the runtime
	// runs no such gateway.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a unique rule (a gateway_id in use) refused the write.
	ErrConflict = errors.New("conflict")
	// ErrInvalidReference: a parent named in the request does not exist.
	ErrInvalidReference = errors.New("invalid reference")
	// ErrInvalidInput: a value the database refused (out of range, bad
	// encoding) that validation upstream let through.
	ErrInvalidInput = errors.New("invalid input")
	// ErrUnavailable: the database cannot serve the request now
	// (unreachable, refusing connections, too slow).
	ErrUnavailable = errors.New("unavailable")
	// ErrTimeout: the actor runtime did not answer in time.
	ErrTimeout = errors.New("runtime did not answer in time")
	// ErrNotRunning: the gateway has no running actor (it is FAILED).
	ErrNotRunning = errors.New("gateway actor is not running")
	// ErrNotConnected: a command needs an authenticated connection and
	// there is none (or it was lost while the command waited).
	ErrNotConnected = errors.New("gateway not connected")
	// ErrGatewayTimeout: the gateway did not answer a command in time.
	ErrGatewayTimeout = errors.New("gateway did not answer in time")
	// ErrGatewayError: the gateway answered a command with an error or
	// with something that is not an answer to it.
	ErrGatewayError = errors.New("gateway answered with an error")
)

// ErrQueueFull: a gateway already has READING_QUEUE_LIMIT readings waiting.
var ErrQueueFull = errors.New("reading queue full")

// ErrSensorLimit comes with what a sensor write did store: new serials of
// a gateway that has MaxGatewaySensors live sensors were not stored.
var ErrSensorLimit = errors.New("gateway's sensor limit reached")
