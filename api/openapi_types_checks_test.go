package api_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"

	"github.com/ctcgw/gatewayd/api"
)

// TestBodyTypesMatchOpenAPI: every documented request body field refuses
// each JSON type the document does not give it, and each documented
// format (uuid, email) refuses a value outside it, with a detail naming
// the field (API.md §3: wrong types are 400, one entry per field).
// TestOpenAPIConformance probes null, lengths and enums; this would catch
// a field documented as a string that takes a number, an object metadata
// that takes an array, or a uuid field that takes any string. (Checked by an
// audit, helper 12, whose test this is.)
func TestBodyTypesMatchOpenAPI(t *testing.T) {
	e := newEnv(t, api.Options{ChaosEnabled: true})
	doc := loadSpec(t, e)
	samples := map[string]any{"string": "x", "integer": 7, "number": 1.5, "boolean": true,
		"object": map[string]any{}, "array": []any{}}
	probed := 0
	for _, key := range documentedOps(doc) {
		method, path, _ := strings.Cut(key, " ")
		op := doc.operation(method, path)
		rb, ok := op["requestBody"].(map[string]any)
		if !ok {
			continue
		}
		at := strings.ReplaceAll(path, "{id}", uuid.NewString())
		schema := doc.deref(rb["content"].(map[string]any)["application/json"].(map[string]any)["schema"].(map[string]any))
		for name, ps := range schema["properties"].(map[string]any) {
			s := doc.deref(ps.(map[string]any))
			complaint := func(v any) []string {
				r := e.do(method, at, map[string]any{name: v})
				if r.status != 400 {
					return nil
				}
				var out []string
				var eb struct {
					Error struct {
						Details []struct{ Field, Message string }
					}
				}
				assertJSON(t, r.body, &eb)
				for _, d := range eb.Error.Details {
					if d.Field == name {
						out = append(out, d.Message)
					}
				}
				return out
			}
			allowed := []string{}
			switch ty := s["type"].(type) {
			case string:
				allowed = append(allowed, ty)
			case []any:
				for _, x := range ty {
					allowed = append(allowed, x.(string))
				}
			}
			if slices.Contains(allowed, "number") {
				allowed = append(allowed, "integer")
			}
			for ty, v := range samples {
				if slices.Contains(allowed, ty) {
					continue
				}
				assert.NotEmpty(t, complaint(v), "%s .%s takes a %s, documented %v", key, name, ty, s["type"])
			}
			switch s["format"] {
			case "uuid":
				assert.NotEmpty(t, complaint("not-a-uuid"), "%s .%s", key, name)
				assert.NotEmpty(t, complaint("{"+uuid.NewString()+"}"), "%s .%s (braces: not the canonical form)", key, name)
				assert.Empty(t, complaint(strings.ToUpper(uuid.NewString())), "%s .%s upper-case hex is a uuid", key, name)
			case "email":
				assert.NotEmpty(t, complaint("not-an-email"), "%s .%s", key, name)
				assert.NotEmpty(t, complaint("Ops <ops@example.com>"), "%s .%s", key, name)
				assert.Empty(t, complaint("ops@example.com"), "%s .%s", key, name)
			}
			probed++
		}
	}
	assert.Greater(t, probed, 40)
}
