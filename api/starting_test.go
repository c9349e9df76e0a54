package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/ctcgw/gatewayd/api"
)

// The starting answers carry what the API's do: the request id (the
// client's, or a new one), the security headers, the CORS origin, and an
// access-log line.
func TestStartingAnswersAsTheAPIDoes(t *testing.T) {
	var logs bytes.Buffer
	h := api.Starting(api.StartingOptions{Started: time.Now(), Log: zerolog.New(&logs),
		CORSOrigins: []string{"https://dash.example"},
		State:       func() (bool, string) { return true, "migrating" }})
	serve := func(method, path string, headers ...string) *fasthttp.RequestCtx {
		var c fasthttp.RequestCtx
		c.Request.Header.SetMethod(method)
		c.Request.SetRequestURI(path)
		for i := 0; i+1 < len(headers); i += 2 {
			c.Request.Header.Set(headers[i], headers[i+1])
		}
		h(&c)
		return &c
	}
	lastLog := func() map[string]any {
		lines := bytes.Split(bytes.TrimSpace(logs.Bytes()), []byte("\n"))
		var l map[string]any
		require.NoError(t, json.Unmarshal(lines[len(lines)-1], &l))
		return l
	}

	c := serve("GET", "/api/ready", "X-Request-Id", "probe-7", "Origin", "https://dash.example")
	r := &c.Response
	assert.Equal(t, 503, r.StatusCode())
	assert.JSONEq(t, `{"error":{"code":"SERVICE_UNAVAILABLE","message":"gatewayd is starting: migrating","statusCode":503}}`, string(r.Body()))
	assert.Equal(t, "probe-7", string(r.Header.Peek("X-Request-Id")))
	assert.Equal(t, "nosniff", string(r.Header.Peek("X-Content-Type-Options")))
	assert.NotEmpty(t, r.Header.Peek("Content-Security-Policy"))
	assert.Equal(t, "https://dash.example", string(r.Header.Peek("Access-Control-Allow-Origin")))
	assert.Equal(t, "X-Request-Id", string(r.Header.Peek("Access-Control-Expose-Headers")))
	assert.Equal(t, "1", string(r.Header.Peek("Retry-After")))
	assert.True(t, r.ConnectionClose())
	l := lastLog()
	assert.Equal(t, "request", l["message"])
	assert.Equal(t, "info", l["level"], "the start's documented answer is no warning")
	assert.Equal(t, "GET", l["method"])
	assert.Equal(t, "/api/ready", l["path"])
	assert.Equal(t, 503.0, l["status"])
	assert.Equal(t, "probe-7", l["request_id"])

	c = serve("GET", "/api/health?x=1", "X-Request-Id", "bad\x01id", "Origin", "https://evil.example")
	r = &c.Response
	assert.Equal(t, 200, r.StatusCode())
	id := string(r.Header.Peek("X-Request-Id"))
	assert.Len(t, id, 36, "an unacceptable id is replaced: %q", id)
	assert.Empty(t, r.Header.Peek("Access-Control-Allow-Origin"), "an origin not configured gets none")
	l = lastLog()
	assert.Equal(t, "/api/health", l["path"])
	assert.Equal(t, 200.0, l["status"])
	assert.Equal(t, id, l["request_id"])
	assert.Equal(t, 2, bytes.Count(logs.Bytes(), []byte(`"message":"request"`)), "one line an answer")

	// CORS_ORIGINS "*" (the default): any origin may read it.
	h = api.Starting(api.StartingOptions{Started: time.Now(), Log: zerolog.Nop(),
		State: func() (bool, string) { return false, "waiting for the database" }})
	c = serve("GET", "/api/gateways", "Origin", "https://any.example")
	assert.Equal(t, "*", string(c.Response.Header.Peek("Access-Control-Allow-Origin")))
	c = serve("GET", "/api/gateways")
	assert.Empty(t, c.Response.Header.Peek("Access-Control-Allow-Origin"), "no Origin, no CORS")
}

// README ("Start"): while `serve` waits for PostgreSQL, /api/health is 200
// and "/api/ready and every other route [answer] 503 SERVICE_UNAVAILABLE
// with Retry-After: 1". The document lists that answer, its code and its
// header on every operation but health, those that never touch the
// database (.No503(): the document, the docs page, /metrics) included.
// (Found by an audit, helper 3.)
func TestStartingAnswersAreDocumented(t *testing.T) {
	raw, err := api.OpenAPI()
	require.NoError(t, err)
	doc := parseSpec(t, raw)
	h := api.Starting(api.StartingOptions{Started: time.Now(), Log: zerolog.Nop(),
		State: func() (bool, string) { return false, "waiting for the database" }})

	var problems []string
	for _, path := range keys(doc.raw["paths"].(map[string]any)) {
		for _, method := range keys(doc.raw["paths"].(map[string]any)[path].(map[string]any)) {
			method = strings.ToUpper(method)
			var c fasthttp.RequestCtx
			c.Request.Header.SetMethod(method)
			c.Request.SetRequestURI(strings.ReplaceAll(path, "{id}", uuid.NewString()))
			h(&c)
			r := response{status: c.Response.StatusCode(), header: http.Header{}, body: c.Response.Body()}
			c.Response.Header.VisitAll(func(k, v []byte) { r.header.Add(string(k), string(v)) })
			if method == "HEAD" {
				r.body = nil // fasthttp writes none
			}
			problems = append(problems, doc.conformance(method, path, r)...)
		}
	}
	assert.Empty(t, problems, "answers of a starting gatewayd the document does not describe")
}
