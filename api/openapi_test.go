package api_test

import (
	"encoding/json"
	"maps"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/uuid"
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
		Schemas map[string]*oaSchema `json:"schemas"`
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
	Ref string `json:"$ref"`
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

// TestOpenAPIMatchesRoutes: the document lists exactly the routes the app
// registers, a HEAD beside every GET that answers one included (README:
// "Every GET route but the event stream also answers HEAD"; the document
// listed none. Found by an audit, helper 3.)
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
		case "GET", "HEAD", "POST", "PUT", "DELETE":
		default:
			continue
		}
		if !(strings.HasPrefix(rt.Path, "/api/") || rt.Path == "/metrics") ||
			rt.Path == "/api/gateways/status" && rt.Method != "GET" && rt.Method != "HEAD" {
			continue // the 405 catch-all beside the status list
		}
		registered[rt.Method+" "+param.ReplaceAllString(rt.Path, "{$1}")] = true
	}
	assert.Equal(t, keys(documented), keys(registered))
	// The 43 routes of the API with /metrics, and the docs page with its
	// stylesheet; and a HEAD beside each of their 25 GETs but the event
	// stream.
	assert.Len(t, registered, 46+25)
	assert.Contains(t, documented, "HEAD /api/health")
	assert.NotContains(t, documented, "HEAD /api/events", "a stream has no head to give")
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

// TestOpenAPIConformance asks every documented operation what the
// document says it does, and checks the code's answers against it: the
// body fields it documents are the ones the handler knows, required,
// nullable, enums and lengths as bind.go enforces them; its query
// parameters are known; and every answer the probes get, success or
// error, is documented for that operation with that code, media type and
// body (specDoc.conformance).
func TestOpenAPIConformance(t *testing.T) {
	e := newEnv(t, api.Options{ChaosEnabled: true})
	doc, raw := loadDoc(t, e)

	spec := parseSpec(t, raw)

	type result struct {
		status  int
		code    string
		details map[string][]string
	}
	// call checks the answer against the operation's document (status,
	// media type, body schema, error code) and returns what a probe reads.
	call := func(key, path string, body any, headers ...string) result {
		t.Helper()
		method, specPath, _ := strings.Cut(key, " ")
		r := e.do(method, path, body, headers...)
		assert.Empty(t, spec.conformance(method, specPath, r), "%s", path)
		if method == "HEAD" {
			// What the GET answers, without the body: the probes read
			// the GET's.
			get := e.do("GET", path, body, headers...)
			assert.Equal(t, get.status, r.status, "HEAD and GET %s", path)
			r.body = get.body
		}
		res := result{status: r.status, details: map[string][]string{}}
		if r.status >= 400 {
			var eb struct {
				Error struct {
					Code    string
					Details []struct{ Field, Message string }
				}
			}
			require.NoError(t, json.Unmarshal(r.body, &eb), "%s: %s", key, r.body)
			res.code = eb.Error.Code
			for _, d := range eb.Error.Details {
				res.details[d.Field] = append(res.details[d.Field], d.Message)
			}
		}
		return res
	}
	resolve := func(s oaSchema) *oaSchema {
		if s.Ref != "" {
			return doc.Components.Schemas[strings.TrimPrefix(s.Ref, "#/components/schemas/")]
		}
		return &s
	}

	probed := 0
	for path, ops := range doc.Paths {
		for method, op := range ops {
			method = strings.ToUpper(method)
			key := method + " " + path
			at := strings.ReplaceAll(path, "{id}", uuid.NewString())
			var body *oaSchema
			if op.RequestBody != nil {
				body = resolve(op.RequestBody.Content["application/json"].Schema)
			}
			var empty any
			if body != nil {
				empty = map[string]any{}
			}

			// As it is: the documented success answer or a documented error.
			// (Not the event stream: it never ends; observability_test.go
			// reads it over a real socket.)
			res := result{status: 200}
			if path != "/api/events" {
				res = call(key, at, empty)
			}
			if !strings.Contains(path, "{") && body == nil {
				_, ok := op.Responses[itoa(res.status)]
				assert.True(t, ok && res.status < 300, "%s: %d", key, res.status)
			}
			if strings.Contains(path, "{id}") {
				res := call(key, strings.ReplaceAll(path, "{id}", "not-a-uuid"), empty)
				assert.Equal(t, 400, res.status, key)
				assert.Contains(t, res.details, "id", key)
			}
			for _, p := range op.Parameters {
				if p.In != "query" {
					continue
				}
				res := call(key, at+"?"+url.Values{p.Name: {"no such value"}}.Encode(), empty)
				assert.Equal(t, 400, res.status, "%s ?%s=x", key, p.Name)
				assert.NotContains(t, res.details[p.Name], "is not a known query parameter", "%s documents ?%s", key, p.Name)
				assert.NotEmpty(t, res.details[p.Name], "%s ?%s=x", key, p.Name)
			}
			if body == nil {
				probed++
				continue
			}
			res = call(key, at, "x", "Content-Type", "text/plain")
			assert.Equal(t, 415, res.status, key)

			// {} names exactly the required fields.
			res = call(key, at, map[string]any{})
			var missing []string
			for f, msgs := range res.details {
				if slices.Contains(msgs, "is required") {
					missing = append(missing, f)
				}
			}
			sort.Strings(missing)
			required := slices.Clone(body.Required)
			sort.Strings(required)
			assert.Equal(t, required, missing, "%s: required fields", key)

			res = call(key, at, map[string]any{"surely_not_a_field": 1})
			assert.Contains(t, res.details["surely_not_a_field"], "is not a known field", key)

			for name, s := range body.Properties {
				s = resolve(*s)
				what := key + " ." + name
				// Known to the handler; null only where documented.
				res := call(key, at, map[string]any{name: nil})
				assert.NotContains(t, res.details[name], "is not a known field", what)
				if s.nullable() {
					assert.Empty(t, res.details[name], "%s is documented nullable", what)
				} else {
					assert.NotEmpty(t, res.details[name], "%s is documented not nullable", what)
				}
				// Lengths: at the documented bound no length complaint (the
				// value may still be refused for its form), one past it one.
				lengthComplaint := func(n int) bool {
					res := call(key, at, map[string]any{name: strings.Repeat("é", n)})
					return slices.ContainsFunc(res.details[name], func(m string) bool { return strings.HasSuffix(m, " characters") })
				}
				if s.MaxLength != nil {
					assert.False(t, lengthComplaint(*s.MaxLength), "%s of %d characters", what, *s.MaxLength)
					assert.True(t, lengthComplaint(*s.MaxLength+1), "%s of %d characters", what, *s.MaxLength+1)
				}
				if s.MinLength != nil && *s.MinLength > 0 {
					assert.False(t, lengthComplaint(*s.MinLength), "%s of %d characters", what, *s.MinLength)
					assert.True(t, lengthComplaint(*s.MinLength-1), "%s of %d characters", what, *s.MinLength-1)
				}
				if s.is("string") && s.MinLength == nil && !s.nullable() && s.Format == "" && s.Enum == nil {
					t.Errorf("%s: a string with no documented lower bound", what)
				}
				for _, v := range s.Enum {
					if v == nil {
						continue
					}
					res := call(key, at, map[string]any{name: v})
					assert.Empty(t, res.details[name], "%s = %v is documented", what, v)
				}
				if s.Enum != nil {
					res := call(key, at, map[string]any{name: "NOT_ONE_OF_THEM"})
					assert.NotEmpty(t, res.details[name], "%s takes only its enum", what)
				}
			}
			probed++
		}
	}
	assert.Equal(t, 46+25, probed, "every documented operation")
}

func TestDocsPage(t *testing.T) {
	e := newEnv(t, api.Options{ChaosEnabled: true})
	doc, _ := loadDoc(t, e)
	r := e.do("GET", "/api/docs", nil)
	require.Equal(t, 200, r.status)
	assert.Equal(t, "text/html; charset=utf-8", r.header.Get("Content-Type"))
	assert.Equal(t, "default-src 'none'; style-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
		r.header.Get("Content-Security-Policy"))
	assert.Equal(t, "DENY", r.header.Get("X-Frame-Options"))
	page := string(r.body)
	for path, ops := range doc.Paths {
		assert.Contains(t, page, "<code>"+path+"</code>")
		for _, op := range ops {
			assert.Contains(t, page, `id="`+op.OperationID+`"`)
		}
	}
	for name := range doc.Components.Schemas {
		assert.Contains(t, page, `id="schema-`+name+`"`)
	}
	lower := strings.ToLower(page)
	assert.NotContains(t, lower, "<script")
	assert.NotContains(t, lower, "style=")
	assert.NotContains(t, lower, "<style")
	assert.NotRegexp(t, `\son[a-z]+=`, lower, "no event handler attributes")
	assert.Contains(t, page, `<link rel="stylesheet" href="/api/docs/docs.css">`)
	// Every link inside the page has its target.
	for _, m := range regexp.MustCompile(`href="#([^"]+)"`).FindAllStringSubmatch(page, -1) {
		assert.Contains(t, page, `id="`+m[1]+`"`, "a link to #%s", m[1])
	}

	css := e.do("GET", "/api/docs/docs.css", nil)
	require.Equal(t, 200, css.status)
	assert.Equal(t, "text/css; charset=utf-8", css.header.Get("Content-Type"))
	assert.Contains(t, string(css.body), ".op")

	// The API's own policy is unchanged.
	assert.Equal(t, "default-src 'none'; frame-ancestors 'none'", e.do("GET", "/api/health", nil).header.Get("Content-Security-Policy"))
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func keys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// The description a newcomer reads first, in the document and on the docs
// page, says what the document's security says: a bearer token unless the
// operation is public. It said "No operation needs credentials yet."
// (Found by an audit, helper 3.)
func TestOpenAPIDescriptionMatchesSecurity(t *testing.T) {
	e := newEnv(t, api.Options{})
	doc := loadSpec(t, e)
	require.NotEmpty(t, doc.raw["security"], "the document requires bearerAuth by default")
	desc := doc.raw["info"].(map[string]any)["description"].(string)
	assert.NotContains(t, desc, "No operation needs credentials")
	assert.Contains(t, desc, "`Authorization: Bearer gwd_…`")
	page := string(e.do("GET", "/api/docs", nil).body)
	assert.NotContains(t, page, "No operation needs credentials")
	assert.Contains(t, page, "<code>Authorization: Bearer gwd_…</code>")
	// Each operation says what it needs.
	access := func(id string) string {
		m := regexp.MustCompile(`id="` + id + `" class="op">\n<h3>.*</h3>\n<p class="summary">.*</p>\n<p class="access">(.*)</p>`).FindStringSubmatch(page)
		if m == nil {
			return ""
		}
		return m[1]
	}
	assert.Equal(t, "No token needed.", access("getHealth"))
	assert.Equal(t, "Needs a token with role viewer or above.", access("listGateways"))
	assert.Equal(t, "Needs a token with role admin or above.", access("createOrganization"))
}
