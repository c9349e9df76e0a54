package api_test

import (
	"fmt"
	"regexp"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/api"
)

// README ("gateway_id is 1–255 characters of ASCII letters, digits, `-`,
// `_`, `.` and `:`", and "`name` … not all white space (400 `must not be
// blank`)"): the document's patterns refuse what the server refuses and
// let through what it takes, so that a generated client or a form built
// from the document does not send a body it calls valid only to get a
// 400. The samples are ASCII or refused for being outside it, where Go's
// regexp and JSON Schema's ECMA-262 read the patterns alike. (Found by an
// audit, helper 3.)
func TestInputPatternsAreDocumented(t *testing.T) {
	e := newEnv(t, api.Options{})
	doc := loadSpec(t, e)
	fac := e.factory(e.org("o"), "f")
	props := doc.deref(map[string]any{"$ref": "#/components/schemas/GatewayCreate"})["properties"].(map[string]any)

	for i, tc := range []struct {
		field, value string
		valid        bool
	}{
		{"gateway_id", "GW 01", false},
		{"gateway_id", "ＧＷ-01", false}, // fullwidth
		{"gateway_id", "GW-0١", false}, // an Arabic-Indic digit
		{"gateway_id", "gw.a:b_c-1", true},
		{"name", "   ", false},
		{"name", "\t\r\n", false},
		{"name", " a ", true},
	} {
		pattern, _ := props[tc.field].(map[string]any)["pattern"].(string)
		require.NotEmpty(t, pattern, "%s has no documented pattern", tc.field)
		body := map[string]any{"factory_id": fac, "gateway_id": fmt.Sprintf("GW-in-%d", i), "name": "ok",
			"url": "ws://127.0.0.1:9/x", "email": "a@example.com", "password": secret("pw-input-Zz9")}
		body[tc.field] = tc.value
		r := e.do("POST", "/api/gateways", body)
		refused := false
		if r.status == 400 {
			_, fields := r.errorBody(t)
			refused = slices.Contains(fields, tc.field)
		}
		require.Equal(t, !tc.valid, refused, "the server on %s %q: %d %s", tc.field, tc.value, r.status, r.body)
		assert.Equal(t, tc.valid, regexp.MustCompile(pattern).MatchString(tc.value),
			"the documented pattern %s on %s %q", pattern, tc.field, tc.value)
	}
	// Every request body's name and gateway_id: bind.go reads them all
	// with the same rules.
	for schema, s := range doc.raw["components"].(map[string]any)["schemas"].(map[string]any) {
		if s.(map[string]any)["additionalProperties"] != false {
			continue // an answer
		}
		ps, _ := s.(map[string]any)["properties"].(map[string]any)
		for _, field := range []string{"name", "gateway_id"} {
			if p, ok := ps[field].(map[string]any); ok {
				assert.Equal(t, props[field].(map[string]any)["pattern"], p["pattern"], "%s.%s", schema, field)
			}
		}
	}
}
