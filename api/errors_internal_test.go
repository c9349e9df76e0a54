package api

import (
	"bytes"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
)

// A 503 for a database that cannot serve says why in the log (the body
// never does), once per outageLogEvery however many requests meet it.
func TestUnavailableCauseIsLoggedPaced(t *testing.T) {
	var logs bytes.Buffer
	app := fiber.New(fiber.Config{ErrorHandler: errorHandler(zerolog.New(&logs)), DisableStartupMessage: true})
	app.Get("/x", func(*fiber.Ctx) error {
		return fmt.Errorf("%w: cannot execute UPDATE in a read-only transaction (SQLSTATE 25006)", gatewayd.ErrUnavailable)
	})
	for range 3 {
		resp, err := app.Test(httptest.NewRequest("GET", "/x", nil))
		require.NoError(t, err)
		assert.Equal(t, 503, resp.StatusCode)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	require.Len(t, lines, 1, logs.String())
	assert.Contains(t, lines[0], "read-only transaction (SQLSTATE 25006)")
	assert.Contains(t, lines[0], `"unlogged_since":0`)
}
