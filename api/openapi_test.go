package api_test

import (
	"encoding/json"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/api"
)

func TestOpenAPIMatchesRoutes(t *testing.T) {
	e := newEnv(t, api.Options{ChaosEnabled: true})
	r := e.do("GET", "/api/openapi.json", nil)
	require.Equal(t, 200, r.status)
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(r.body, &doc))
	assert.Equal(t, "3.1.0", doc.OpenAPI)

	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	param := regexp.MustCompile(`:(\w+)`)
	registered := map[string]bool{}
	for _, rt := range e.app.GetRoutes(true) {
		switch rt.Method {
		case "GET", "POST", "PUT", "DELETE":
		default:
			continue
		}
		if !strings.HasPrefix(rt.Path, "/api/") || rt.Path == "/api/gateways/status" && rt.Method != "GET" {
			continue // the 405 catch-all beside the status list
		}
		registered[rt.Method+" "+param.ReplaceAllString(rt.Path, "{$1}")] = true
	}
	assert.Equal(t, keys(documented), keys(registered))
	assert.Len(t, registered, 38)
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
