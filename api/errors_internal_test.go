package api

import (
	"bytes"
	"context"
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
	app := fiber.New(fiber.Config{ErrorHandler: errorHandler(zerolog.New(&logs), func(string) string { return "" }), DisableStartupMessage: true})
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

// toError maps what reaches the error handler to API.md §3's table. Some
// of these are hard to provoke through HTTP: a request's database deadline
// passing while it waits in a write coalescer (a bare
// context.DeadlineExceeded) and a value the database refuses after
// validation let it through.
func TestErrorMapping(t *testing.T) {
	for _, c := range []struct {
		name   string
		err    error
		status int
		code   string
		fields []string
	}{
		{"the request's database deadline", fmt.Errorf("create factory: %w", context.DeadlineExceeded), 503, "SERVICE_UNAVAILABLE", nil},
		{"the runtime's deadline", fmt.Errorf("status: %w", gatewayd.ErrTimeout), 503, "SERVICE_UNAVAILABLE", nil},
		{"a value the database refuses", fmt.Errorf("%w: invalid byte sequence", gatewayd.ErrInvalidInput), 400, "VALIDATION_ERROR",
			[]string{"body"}},
		{"a bad reference", scoped(gatewayd.ErrInvalidReference, resFactory, "organization_id"), 422, "INVALID_REFERENCE",
			[]string{"organization_id"}},
		{"a conflict", gatewayd.ErrConflict, 409, "GATEWAY_ID_CONFLICT", []string{"gateway_id"}},
		{"a crashed-out gateway", scoped(gatewayd.ErrNotRunning, resGateway, ""), 409, "GATEWAY_NOT_CONNECTED", nil},
		{"a client error of fasthttp's", fiber.NewError(fiber.StatusLengthRequired), 411, "BAD_REQUEST", nil},
		{"a malformed request", fiber.ErrBadRequest, 400, "VALIDATION_ERROR", []string{"request"}},
		{"anything else", fmt.Errorf("boom"), 500, "INTERNAL_ERROR", nil},
	} {
		e, _ := toError(c.err)
		assert.Equal(t, c.status, e.Status, c.name)
		assert.Equal(t, c.code, e.Code, c.name)
		var fields []string
		for _, d := range e.Details {
			fields = append(fields, d.Field)
		}
		assert.Equal(t, c.fields, fields, c.name)
	}
}
