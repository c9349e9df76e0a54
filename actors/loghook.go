package actors

import (
	"github.com/google/uuid"
	"github.com/rs/zerolog"
)

// gatewayHook adds the gateway's UUID (as id, its name in the API) and
// its human gateway_id ("GW-0042") to every event of a gateway actor's
// logger. A hook costs the logger a few dozen bytes; zerolog's
// With().Str(…) gives every logger a context buffer of its own of 512
// bytes, and every gateway actor has a logger: 22 MiB of a 50,000-gateway
// churn's 203 MiB live heap (heap profile, BENCHMARKS.md).
type gatewayHook struct {
	id        uuid.UUID
	gatewayID string
}

func (h *gatewayHook) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	e.Str("id", h.id.String()).Str("gateway_id", h.gatewayID)
}

// gatewayLogger is log naming the gateway on every event. The hook never
// changes once made (the reader goroutine reads it too): the actor makes
// one per line (logger()), a reader keeps the one made when it started,
// so after a rename its lines name the old gateway_id (and the same id)
// until the next connection.
func gatewayLogger(log zerolog.Logger, id uuid.UUID, gatewayID string) zerolog.Logger {
	return log.Hook(&gatewayHook{id: id, gatewayID: gatewayID})
}
