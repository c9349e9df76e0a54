package api_test

// The real server's answers checked against the OpenAPI document it
// serves, so that a body the document misdescribes fails a test. A small
// hand-written validator (no dependency): $ref, type (with null), const,
// enum, required, properties (an answer field the schema does not name
// counts as a mismatch unless the schema allows additional properties),
// items, date-time and uuid formats.

import (
	"encoding/json"
	"fmt"
	"mime"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// specDoc is the served OpenAPI document, kept as generic JSON.
type specDoc struct {
	raw map[string]any
}

// loadSpec is the document e serves.
func loadSpec(t *testing.T, e *env) *specDoc {
	t.Helper()
	_, raw := loadDoc(t, e)
	return parseSpec(t, raw)
}

func parseSpec(t *testing.T, raw []byte) *specDoc {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	return &specDoc{raw: m}
}

func (d *specDoc) ref(ref string) map[string]any {
	parts := strings.Split(strings.TrimPrefix(ref, "#/"), "/")
	var cur any = d.raw
	for _, p := range parts {
		cur = cur.(map[string]any)[p]
	}
	return cur.(map[string]any)
}

func (d *specDoc) deref(s map[string]any) map[string]any {
	for s != nil {
		r, ok := s["$ref"].(string)
		if !ok {
			return s
		}
		s = d.ref(r)
	}
	return s
}

// operation returns the documented operation, or nil.
func (d *specDoc) operation(method, path string) map[string]any {
	paths := d.raw["paths"].(map[string]any)
	ops, _ := paths[path].(map[string]any)
	op, _ := ops[strings.ToLower(method)].(map[string]any)
	return op
}

// response returns the documented response of op for status, resolved.
func (d *specDoc) response(op map[string]any, status int) map[string]any {
	rs := op["responses"].(map[string]any)
	r, ok := rs[fmt.Sprint(status)].(map[string]any)
	if !ok {
		return nil
	}
	return d.deref(r)
}

func jsonType(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64:
		if x == float64(int64(x)) {
			return "integer"
		}
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func typeAllows(want any, got string) bool {
	check := func(w string) bool {
		return w == got || (w == "number" && got == "integer")
	}
	switch w := want.(type) {
	case nil:
		return true
	case string:
		return check(w)
	case []any:
		for _, x := range w {
			if check(x.(string)) {
				return true
			}
		}
	}
	return false
}

// validate returns every way v breaks schema s, each prefixed with where.
func (d *specDoc) validate(s map[string]any, v any, where string) []string {
	s = d.deref(s)
	if s == nil {
		return nil
	}
	var out []string
	bad := func(format string, a ...any) { out = append(out, where+": "+fmt.Sprintf(format, a...)) }
	if !typeAllows(s["type"], jsonType(v)) {
		bad("is %s (%s), the document says type %v", jsonType(v), trunc(v), s["type"])
		return out
	}
	if c, ok := s["const"]; ok && !reflect.DeepEqual(c, v) {
		bad("is %v, the document says const %v", trunc(v), c)
	}
	if en, ok := s["enum"].([]any); ok && v != nil {
		found := false
		for _, x := range en {
			if reflect.DeepEqual(x, v) {
				found = true
			}
		}
		if !found {
			bad("is %v, not one of the documented enum %v", trunc(v), en)
		}
	}
	if str, ok := v.(string); ok {
		switch s["format"] {
		case "date-time":
			if !millis.MatchString(str) {
				bad("%q is not an RFC 3339 UTC time with milliseconds", str)
			}
		case "uuid":
			if _, err := uuid.Parse(str); err != nil {
				bad("%q is not a uuid", str)
			}
		}
	}
	switch x := v.(type) {
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		if req, ok := s["required"].([]any); ok {
			for _, r := range req {
				if _, ok := x[r.(string)]; !ok {
					bad("lacks the required field %q", r)
				}
			}
		}
		extra := []string{}
		for k, val := range x {
			ps, ok := props[k].(map[string]any)
			if !ok {
				if ap, has := s["additionalProperties"]; props != nil && (!has || ap == false) {
					extra = append(extra, k)
				}
				continue
			}
			out = append(out, d.validate(ps, val, where+"."+k)...)
		}
		sort.Strings(extra)
		for _, k := range extra {
			bad("has the field %q, which the document does not name", k)
		}
	case []any:
		if items, ok := s["items"].(map[string]any); ok {
			for i, it := range x {
				out = append(out, d.validate(items, it, fmt.Sprintf("%s[%d]", where, i))...)
			}
		}
	}
	return out
}

func trunc(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 80 {
		return string(b[:80]) + "…"
	}
	return string(b)
}

// purposeful are the headers the API sends to be read, each on some
// answers only: where it sends one, the document must say so.
var purposeful = []string{"Location", "WWW-Authenticate", "Allow", "Retry-After"}

// headerProblems checks the answer's headers against its documented
// response: every header the document says it always carries is there,
// and a purposeful header it carries is documented.
func (d *specDoc) headerProblems(resp map[string]any, r response) []string {
	var out []string
	documented, _ := resp["headers"].(map[string]any)
	for _, name := range keys(documented) {
		if req, _ := d.deref(documented[name].(map[string]any))["required"].(bool); req && r.header.Get(name) == "" {
			out = append(out, "lacks the header "+name+", which the document says it always carries")
		}
	}
	for _, name := range purposeful {
		if v := r.header.Get(name); v != "" && documented[name] == nil {
			out = append(out, fmt.Sprintf("carries %s: %s, which the document does not declare", name, v))
		}
	}
	return out
}

func prefixed(prefix string, lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = prefix + l
	}
	return out
}

// conformance checks one answer of the real server against the
// operation method+specPath documents: the status is documented, so are
// its headers (headerProblems), the Content-Type is one the document
// lists, and a JSON body matches its schema; a HEAD has no body. It returns the problems, each naming the request.
func (d *specDoc) conformance(method, specPath string, r response) []string {
	key := method + " " + specPath
	op := d.operation(method, specPath)
	if op == nil {
		return []string{key + ": not documented"}
	}
	resp := d.response(op, r.status)
	if resp == nil {
		return []string{fmt.Sprintf("%s answered %d, which it does not document: %.200s", key, r.status, r.body)}
	}
	if hs := d.headerProblems(resp, r); len(hs) > 0 {
		return prefixed(fmt.Sprintf("%s %d: ", key, r.status), hs)
	}
	if method == "HEAD" {
		// The GET's status and headers, never a body (the documented
		// content of an error is the GET's).
		if len(r.body) > 0 {
			return []string{fmt.Sprintf("%s %d: a HEAD answered a body: %.200s", key, r.status, r.body)}
		}
		return nil
	}
	content, _ := resp["content"].(map[string]any)
	if len(content) == 0 {
		if len(r.body) > 0 {
			return []string{fmt.Sprintf("%s %d: a body the document does not describe: %.200s", key, r.status, r.body)}
		}
		return nil
	}
	ct := r.header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	var schema map[string]any
	matched := false
	for k, c := range content {
		kt, _, _ := mime.ParseMediaType(k)
		if kt == mt {
			matched = true
			schema, _ = c.(map[string]any)["schema"].(map[string]any)
		}
	}
	if !matched {
		return []string{fmt.Sprintf("%s %d: Content-Type %q is not documented (documented: %v)", key, r.status, ct, keys(content))}
	}
	if mt != "application/json" || schema == nil {
		return nil
	}
	var v any
	if err := json.Unmarshal(r.body, &v); err != nil {
		return []string{fmt.Sprintf("%s %d: body is not JSON: %v", key, r.status, err)}
	}
	out := d.validate(schema, v, fmt.Sprintf("%s %d body", key, r.status))
	if r.status >= 400 {
		// The error's code is one the document gives for this answer.
		var codes []string
		for _, c := range content {
			exs, _ := c.(map[string]any)["examples"].(map[string]any)
			for _, ex := range exs {
				if val, ok := ex.(map[string]any)["value"].(map[string]any); ok {
					if er, ok := val["error"].(map[string]any); ok {
						codes = append(codes, fmt.Sprint(er["code"]))
					}
				}
			}
		}
		got, _ := v.(map[string]any)["error"].(map[string]any)
		if got != nil && !slices.Contains(codes, fmt.Sprint(got["code"])) {
			out = append(out, fmt.Sprintf("%s %d: code %v is not among the documented %v", key, r.status, got["code"], codes))
		}
	}
	return out
}
