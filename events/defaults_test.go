package events

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/internal/config"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// DefaultRingSize is documented as EVENTS_BUFFER's default, which API.md
// §9 gives as 10000: the constant, the configuration's default and the
// contract must agree.
func TestDefaultRingSizeIsEventsBuffersDefault(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load("", []string{"ENCRYPTION_KEY=" + testutil.KeyBase64})
	require.NoError(t, err)
	assert.Equal(t, 10_000, DefaultRingSize, "API.md §9: EVENTS_BUFFER (10000)")
	assert.Equal(t, cfg.EventsBuffer, DefaultRingSize, "the configuration's EVENTS_BUFFER default")
}
