package api_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"

	"github.com/ctcgw/gatewayd/api"
)

// TestQueryBoundsMatchOpenAPI: every documented query parameter, at each
// documented bound and one past it, each documented enum value and one
// that is not, a date-time and a date that is not: the server complains
// about the parameter exactly when the document says the value is out
// (API.md §3: limit 1–100, offset ≥ 0, plain decimal integers; README:
// offset up to 2147483648). TestOpenAPIConformance sends only a value
// that is always wrong; this would catch a documented maximum of 100 the
// server enforced as 1000, a documented minimum the server does not
// enforce, or an enum value the server refuses. (Checked by an audit, helper 12, whose test this is.)
func TestQueryBoundsMatchOpenAPI(t *testing.T) {
	e := newEnv(t, api.Options{ChaosEnabled: true})
	doc := loadSpec(t, e)
	checked := 0
	for path, ops := range doc.raw["paths"].(map[string]any) {
		op, ok := ops.(map[string]any)["get"].(map[string]any)
		if !ok {
			continue
		}
		at := strings.ReplaceAll(path, "{id}", uuid.NewString())
		for _, p := range asSlice(op["parameters"]) {
			p := doc.deref(p.(map[string]any))
			if p["in"] != "query" {
				continue
			}
			name := p["name"].(string)
			s := doc.deref(p["schema"].(map[string]any))
			complains := func(v string) bool {
				t.Helper()
				r := e.do("GET", at+"?"+url.Values{name: {v}}.Encode(), nil)
				if r.status != 400 {
					return false
				}
				var body struct {
					Error struct{ Details []struct{ Field string } }
				}
				assertJSON(t, r.body, &body)
				for _, d := range body.Error.Details {
					if d.Field == name {
						return true
					}
				}
				return false
			}
			// Accepted values start the event stream, which never ends:
			// there only refusals are probed.
			accepts := func(v string) {
				t.Helper()
				if path != "/api/events" {
					assert.False(t, complains(v), "%s ?%s=%s is documented as valid", path, name, v)
				}
			}
			refuses := func(v string) {
				t.Helper()
				assert.True(t, complains(v), "%s ?%s=%s is documented as invalid", path, name, v)
			}
			switch {
			case s["type"] == "integer":
				if lo, ok := s["minimum"].(float64); ok {
					accepts(fmt.Sprint(int64(lo)))
					refuses(fmt.Sprint(int64(lo) - 1))
				}
				if hi, ok := s["maximum"].(float64); ok {
					accepts(fmt.Sprint(int64(hi)))
					refuses(fmt.Sprint(int64(hi) + 1))
				}
				refuses("1.5")
				refuses("1e3")
				refuses("+5")
			case s["enum"] != nil:
				for _, v := range s["enum"].([]any) {
					accepts(fmt.Sprint(v))
				}
				refuses("NOT_ONE_OF_THEM")
				refuses("")
			case s["format"] == "date-time":
				accepts("2026-11-29T05:32:54.123Z")
				accepts("2026-11-29T07:32:54+02:00")
				refuses("2026-11-29")
				refuses("yesterday")
			case s["format"] == "uuid":
				accepts(strings.ToUpper(uuid.NewString())) // RFC 4122 hex is case-insensitive
				refuses("{" + uuid.NewString() + "}")
			default:
				t.Errorf("%s ?%s: a parameter this test does not know how to probe: %v", path, name, s)
			}
			checked++
		}
	}
	assert.Greater(t, checked, 30, "query parameters probed")
}

func assertJSON(t *testing.T, raw []byte, v any) {
	t.Helper()
	assert.NoError(t, json.Unmarshal(raw, v), "%s", raw)
}
