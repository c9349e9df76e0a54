package api_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/api"
)

// README ("Location": a 201 names the resource it created, a token none)
// and API.md §10 (a 401 carries `WWW-Authenticate`): the document declares
// each header on the answers that carry it, and only there, so that a
// generated client can read it. The creates are checked here, the reading's
// 202 by TestLiveAnswersMatchOpenAPI, the 401s by
// TestAuthAnswersMatchOpenAPI. (Found by an audit, helper 3.)
func TestOpenAPIDocumentsAnswerHeaders(t *testing.T) {
	e := newEnv(t, api.Options{})
	doc := loadSpec(t, e)
	create := func(path string, body map[string]any) string {
		t.Helper()
		r := e.do("POST", path, body)
		require.Equal(t, 201, r.status, "%s", r.body)
		assert.Empty(t, doc.conformance("POST", path, r))
		return r.json(t)["id"].(string)
	}
	org := create("/api/organizations", map[string]any{"name": "loc"})
	fac := create("/api/factories", map[string]any{"organization_id": org, "name": "f"})
	create("/api/gateways", map[string]any{"factory_id": fac, "gateway_id": "GW-loc", "name": "g",
		"url": "ws://127.0.0.1:9/x", "email": "a@example.com", "password": secret("pw-loc-Qq1")})
	create("/api/equipment", map[string]any{"factory_id": fac, "name": "pump"})
	create("/api/tokens", map[string]any{"name": "loc", "role": "viewer"}) // no Location, and none documented

	for _, path := range []string{"/api/organizations", "/api/factories", "/api/gateways", "/api/equipment"} {
		h, _ := doc.response(doc.operation("POST", path), 201)["headers"].(map[string]any)
		assert.Contains(t, h, "Location", path)
	}
	assert.Contains(t, doc.response(doc.operation("POST", "/api/sensors/{id}/readings"), 202)["headers"], "Location")
}
