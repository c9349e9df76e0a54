package api_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEventStreamInputsAreDocumented: API.md §9 ("`Last-Event-ID`
// resumes from the last `EVENTS_BUFFER` events") and README ("The event
// stream also takes `?access_token=` because EventSource cannot give
// headers"): the stream reads both, and refuses a bad Last-Event-ID (400,
// detail `Last-Event-ID`) and a bad access_token (401), but the document
// declared neither as an input of streamEvents (the header only in prose,
// the query token only in the bearer scheme's description), so a client
// generated from it can neither resume nor authenticate an EventSource.
// Fails while streamEvents has no `Last-Event-ID` header parameter, or no
// security alternative that names the `access_token` query parameter.
// (Found by an audit, helper 12, whose test this is.)
func TestEventStreamInputsAreDocumented(t *testing.T) {
	e, tokens := authEnv(t, time.Second)
	doc := loadSpec(t, e)

	// What the server does with them.
	r := e.do("GET", "/api/events?access_token=gwd_not-a-token", nil)
	require.Equal(t, 401, r.status, "%s", r.body)
	assert.Empty(t, doc.conformance("GET", "/api/events", r))

	r = e.do("GET", "/api/events", nil, append(bearer(tokens["viewer"]), "Last-Event-ID", "abc")...)
	require.Equal(t, 400, r.status, "%s", r.body)
	_, fields := r.errorBody(t)
	require.Equal(t, []string{"Last-Event-ID"}, fields)

	// What the document says.
	op := doc.operation("GET", "/api/events")
	require.NotNil(t, op)
	var header map[string]any
	for _, p := range op["parameters"].([]any) {
		p := doc.deref(p.(map[string]any))
		if p["in"] == "header" && strings.EqualFold(p["name"].(string), "Last-Event-ID") {
			header = p
		}
	}
	if assert.NotNil(t, header, "streamEvents documents no Last-Event-ID header") {
		s := header["schema"].(map[string]any)
		assert.Equal(t, "integer", s["type"])
		assert.EqualValues(t, 0, s["minimum"])
	}
	queryToken := false
	schemes, _ := doc.raw["components"].(map[string]any)["securitySchemes"].(map[string]any)
	sec, _ := op["security"].([]any)
	for _, req := range sec {
		for name := range req.(map[string]any) {
			s, _ := schemes[name].(map[string]any)
			if s["type"] == "apiKey" && s["in"] == "query" && s["name"] == "access_token" {
				queryToken = true
			}
		}
	}
	assert.True(t, queryToken, "streamEvents names no access_token query security: %v", sec)
	// Bearer stays an alternative, and no other operation takes the query token.
	if sec != nil {
		assert.Contains(t, sec, map[string]any{"bearerAuth": []any{}})
	}
	for path, ops := range doc.raw["paths"].(map[string]any) {
		for method, o := range ops.(map[string]any) {
			if path == "/api/events" {
				continue
			}
			for _, req := range asSlice(o.(map[string]any)["security"]) {
				for name := range req.(map[string]any) {
					assert.Equal(t, "bearerAuth", name, "%s %s", method, path)
				}
			}
		}
	}
}

func asSlice(v any) []any { s, _ := v.([]any); return s }
