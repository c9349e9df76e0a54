package api_test

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/api"
)

// oaDoc is the part of the OpenAPI document the tests read.
type oaDoc struct {
	OpenAPI    string                     `json:"openapi"`
	Paths      map[string]map[string]oaOp `json:"paths"`
	Tags       []struct{ Name, Description string }
	Components struct {
		Schemas   map[string]*oaSchema  `json:"schemas"`
		Responses map[string]oaResponse `json:"responses"`
	} `json:"components"`
}

type oaOp struct {
	OperationID string `json:"operationId"`
	Summary     string `json:"summary"`
	Tags        []string
	Parameters  []struct {
		Ref    string    `json:"$ref"`
		Name   string    `json:"name"`
		In     string    `json:"in"`
		Schema *oaSchema `json:"schema"`
	} `json:"parameters"`
	RequestBody *struct {
		Content map[string]struct{ Schema oaSchema } `json:"content"`
	} `json:"requestBody"`
	Responses map[string]oaResponse `json:"responses"`
}

type oaResponse struct {
	Ref     string `json:"$ref"`
	Content map[string]struct {
		Examples map[string]struct {
			Value struct{ Error struct{ Code string } }
		}
	}
}

type oaSchema struct {
	Ref        string               `json:"$ref"`
	Type       any                  `json:"type"`
	Format     string               `json:"format"`
	Required   []string             `json:"required"`
	Properties map[string]*oaSchema `json:"properties"`
	MinLength  *int                 `json:"minLength"`
	MaxLength  *int                 `json:"maxLength"`
	Enum       []any                `json:"enum"`
}

func (s *oaSchema) nullable() bool {
	t, ok := s.Type.([]any)
	return ok && slices.Contains(t, any("null"))
}

func (s *oaSchema) is(typ string) bool {
	if t, ok := s.Type.(string); ok {
		return t == typ
	}
	t, _ := s.Type.([]any)
	return slices.Contains(t, any(typ))
}

func loadDoc(t *testing.T, e *env) (oaDoc, []byte) {
	t.Helper()
	r := e.do("GET", "/api/openapi.json", nil)
	require.Equal(t, 200, r.status)
	assert.Equal(t, "application/json", r.header.Get("Content-Type"))
	var doc oaDoc
	require.NoError(t, json.Unmarshal(r.body, &doc))
	return doc, r.body
}

func TestOpenAPIMatchesRoutes(t *testing.T) {
	e := newEnv(t, api.Options{ChaosEnabled: true})
	doc, _ := loadDoc(t, e)
	assert.Equal(t, "3.1.0", doc.OpenAPI)

	documented := map[string]bool{}
	ids := map[string]string{}
	tags := map[string]bool{}
	for _, tag := range doc.Tags {
		tags[tag.Name] = true
		assert.NotEmpty(t, tag.Description, tag.Name)
	}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			key := strings.ToUpper(method) + " " + path
			documented[key] = true
			assert.Regexp(t, `^[a-z][a-zA-Z0-9]*$`, op.OperationID, key)
			if prev, ok := ids[op.OperationID]; ok {
				t.Errorf("operationId %s on both %s and %s", op.OperationID, prev, key)
			}
			ids[op.OperationID] = key
			assert.NotEmpty(t, op.Summary, key)
			require.Len(t, op.Tags, 1, key)
			assert.True(t, tags[op.Tags[0]], "%s: tag %s is not listed", key, op.Tags[0])
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
	assert.Len(t, registered, 33)
}

// The committed api/openapi.json is what the code serves; when the spec
// changes, `go generate ./api` rewrites it.
func TestOpenAPIFileIsGenerated(t *testing.T) {
	e := newEnv(t, api.Options{})
	_, served := loadDoc(t, e)
	built, err := api.OpenAPI()
	require.NoError(t, err)
	assert.Equal(t, string(built), string(served))
	committed, err := os.ReadFile("openapi.json")
	require.NoError(t, err)
	if string(committed) != string(built) {
		t.Fatal("api/openapi.json differs from the spec in api/openapi_spec.go: run `go generate ./api` and commit the file")
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
