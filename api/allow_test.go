package api_test

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/api"
)

// A 405 names what the resource takes (RFC 9110 §15.5.6), from the route
// the path matches first: /api/gateways/status is not /api/gateways/:id.
func TestMethodNotAllowedSaysWhatIsAllowed(t *testing.T) {
	e := newEnv(t, api.Options{ChaosEnabled: true})
	id := uuid.NewString()
	cases := []struct{ method, path, allow string }{
		{"PATCH", "/api/organizations", "GET, HEAD, POST"},
		{"DELETE", "/api/gateways/status", "GET, HEAD"},
		{"PUT", "/api/gateways/status/", "GET, HEAD"},
		{"PATCH", "/api/gateways/" + id, "GET, HEAD, PUT, DELETE"},
		{"PATCH", "/API/Gateways/" + id + "/", "GET, HEAD, PUT, DELETE"},
		{"GET", "/api/gateways/" + id + "/connect", "POST"},
		{"PUT", "/api/sensors/" + id + "/readings", "GET, HEAD, POST"},
		{"HEAD", "/api/events", "GET"},
		{"POST", "/api/health", "GET, HEAD"},
		{"GET", "/api/debug/gateways/" + id + "/crash", "POST"},
		{"DELETE", "/api/tokens", "GET, HEAD, POST"},
		{"OPTIONS", "/api/readings/" + id + "/spectrum", "GET, HEAD"},
	}
	for _, tc := range cases {
		r := e.do(tc.method, tc.path, nil)
		require.Equal(t, 405, r.status, "%s %s: %s", tc.method, tc.path, r.body)
		assert.Equal(t, tc.allow, r.header.Get("Allow"), "%s %s", tc.method, tc.path)
	}
	// Not a 405, no Allow.
	r := e.do("GET", "/api/organizations", nil)
	require.Equal(t, 200, r.status)
	assert.Empty(t, r.header.Get("Allow"))
}
