package actors

import (
	"github.com/google/uuid"
	"github.com/rs/zerolog"
)

// gatewayIDHook adds gateway_id to every event of a gateway actor's
// logger. A hook costs the logger about 40 bytes; zerolog's
// With().Str(…) gives every logger a context buffer of its own of 512
// bytes, and every gateway actor has a logger: 22 MiB of a 50,000-gateway
// churn's 203 MiB live heap (heap profile, BENCHMARKS.md).
type gatewayIDHook uuid.UUID

func (h gatewayIDHook) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	e.Str("gateway_id", uuid.UUID(h).String())
}

// gatewayLogger is log with gateway_id on every event.
func gatewayLogger(log zerolog.Logger, id uuid.UUID) zerolog.Logger {
	return log.Hook(gatewayIDHook(id))
}
