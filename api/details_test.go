package api_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/ctcgw/gatewayd/api"
)

// API.md §3: 400 VALIDATION_ERROR for "bad query parameters, non-UUID
// path id; `details` lists every problem found, one entry per field"
// (README: "one `details` entry per problem"). A request whose path id
// and query or body are both wrong named only the id: the client fixed it
// and was told, one request later, what was wrong with the rest. (Found
// by an audit, helper 3, whose test the first two cases are.)
func TestBadIDsAreAnsweredWithEveryOtherProblem(t *testing.T) {
	e := newEnv(t, api.Options{})
	for _, c := range []struct {
		method, path string
		body         any
		want         []string
	}{
		{"GET", "/api/sensors/not-a-uuid/readings?status=done&since=yesterday&limit=0", nil, []string{"id", "status", "since", "limit"}},
		{"GET", "/api/readings/not-a-uuid/spectrum?axis=w", nil, []string{"id", "axis"}},
		{"GET", "/api/gateways/not-a-uuid/sensors?factory_id=x&limit=101", nil, []string{"id", "factory_id", "limit"}},
		{"PUT", "/api/sensors/abc", map[string]any{"reading_interval": "1s"}, []string{"id", "reading_interval"}},
		{"PUT", "/api/gateways/abc", map[string]any{"name": "", "colour": "red"}, []string{"id", "name", "colour"}},
		{"PUT", "/api/factories/abc", map[string]any{"timezone": "Mars/Olympus"}, []string{"id", "timezone"}},
		{"PUT", "/api/organizations/abc", map[string]any{"name": ""}, []string{"id", "name"}},
		{"PUT", "/api/equipment/abc", map[string]any{"factory_id": "x"}, []string{"id", "factory_id"}},
		{"PUT", "/api/gateways/abc", "not an object", []string{"id", "body"}},
		{"POST", "/api/gateways/abc/connect", map[string]any{"force": true}, []string{"id", "force"}},
		{"DELETE", "/api/factories/abc", map[string]any{"cascade": true}, []string{"id", "cascade"}},
		// One part wrong: as before.
		{"PUT", "/api/sensors/abc", map[string]any{"name": "fine"}, []string{"id"}},
		{"GET", "/api/sensors/not-a-uuid/readings", nil, []string{"id"}},
	} {
		r := e.do(c.method, c.path, c.body)
		what := c.method + " " + c.path
		if !assert.Equal(t, 400, r.status, what) {
			continue
		}
		code, fields := r.errorBody(t)
		assert.Equal(t, "VALIDATION_ERROR", code, what)
		assert.ElementsMatch(t, c.want, fields, "%s: every problem found, one entry per field", what)
	}
}
