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

// gatewayLogger is log naming the gateway on every event. It is made anew
// when gateway_id changes: the hook is read by the reader goroutine too,
// so it never changes once made.
func gatewayLogger(log zerolog.Logger, id uuid.UUID, gatewayID string) zerolog.Logger {
	return log.Hook(&gatewayHook{id: id, gatewayID: gatewayID})
}

// stateLogLimit lines about state changes per gateway per stateLogWindow
// at info; past it, changes are counted and the next line says how many
// went unlogged. A flapping gateway cannot flood the log, and one that
// changes state now and then has every change logged.
const (
	stateLogLimit  = 20
	stateLogWindow = 10 * 1e9 // 10 s, as a time.Duration
)
