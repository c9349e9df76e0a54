package actors

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every event of a gateway's logger says which gateway, once.
func TestGatewayLoggerNamesTheGateway(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	id := uuid.New()
	log := gatewayLogger(zerolog.New(&buf).Level(zerolog.InfoLevel).With().Str("component", "runtime").Logger(), id, "GW-0042")
	log.Info().Str("state", "BACKOFF").Msg("connection attempt failed")
	log.Debug().Msg("below the level: no hook runs")
	var line map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &line), buf.String())
	assert.Equal(t, id.String(), line["id"])
	assert.Equal(t, "GW-0042", line["gateway_id"])
	assert.Equal(t, "runtime", line["component"])
	assert.Equal(t, "BACKOFF", line["state"])
	assert.Equal(t, 1, bytes.Count(buf.Bytes(), []byte(`"gateway_id"`)))
}
