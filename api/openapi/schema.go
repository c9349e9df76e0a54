package openapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/google/uuid"
)

// Schema is the part of JSON Schema 2020-12 (as OpenAPI 3.1 uses it) that
// gatewayd's API needs. Build it with the functions below (String, UUID,
// Object, …) and the modifiers (Length, Null, Desc, …); every modifier
// returns a copy, so a shared schema is never changed by a use.
type Schema struct {
	ref         string
	description string
	typ         string
	nullable    bool
	constant    *string
	enum        []string
	format      string
	pattern     string
	minLength   *int
	maxLength   *int
	minimum     *int
	maximum     *int
	def         any
	writeOnly   bool
	items       *Schema
	props       []Prop
	closed      bool    // additionalProperties: false
	values      *Schema // additionalProperties: schema (a map)
	free        bool    // additionalProperties: true
	examples    []any
}

// Prop is an object property.
type Prop struct {
	name     string
	s        *Schema
	required bool
}

// Field is a property that is always present (in a response) or required
// (in a request body); Opt is an optional one.
func Field(name string, s *Schema) Prop { return Prop{name: name, s: s, required: true} }

// Opt is an optional property.
func Opt(name string, s *Schema) Prop { return Prop{name: name, s: s} }

// TimePattern is every time's shape: RFC 3339 in UTC with exactly three
// fraction digits.
const TimePattern = `^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$`

// Constructors.

func String() *Schema  { return &Schema{typ: "string"} }
func Integer() *Schema { return &Schema{typ: "integer"} }
func Number() *Schema  { return &Schema{typ: "number"} }
func Bool() *Schema    { return &Schema{typ: "boolean"} }
func UUID() *Schema    { return &Schema{typ: "string", format: "uuid"} }

// Time is a time as gatewayd writes it (TimePattern).
func Time() *Schema {
	return &Schema{typ: "string", format: "date-time", pattern: TimePattern, examples: []any{"2026-11-29T05:32:54.123Z"}}
}

// Metadata is a free JSON object.
func Metadata() *Schema { return &Schema{typ: "object", free: true} }

// Enum is a string that takes one of values.
func Enum[T ~string](values ...T) *Schema {
	s := &Schema{typ: "string"}
	for _, v := range values {
		s.enum = append(s.enum, string(v))
	}
	return s
}

// Const is a string that is always v.
func Const(v string) *Schema { return &Schema{typ: "string", constant: &v} }

// Array is a list of items.
func Array(items *Schema) *Schema { return &Schema{typ: "array", items: items} }

// MapOf is an object whose values are all v.
func MapOf(v *Schema) *Schema { return &Schema{typ: "object", values: v} }

// Ref names a component schema of the spec.
func Ref(name string) *Schema { return &Schema{ref: name} }

// Object is an object of the given properties.
func Object(p ...Prop) *Schema { return &Schema{typ: "object", props: p} }

// Input is a request body: an object that refuses properties it does not
// list (bind.go answers 400 to an unknown field).
func Input(p ...Prop) *Schema { return &Schema{typ: "object", props: p, closed: true} }

// Modifiers.

func (s *Schema) copy() *Schema { c := *s; return &c }

// Desc sets the description.
func (s *Schema) Desc(d string) *Schema { c := s.copy(); c.description = d; return c }

// Length bounds a string, in characters (code points, as bind.go counts);
// a min of 0 is no lower bound.
func (s *Schema) Length(min, max int) *Schema {
	c := s.copy()
	if min > 0 {
		c.minLength = &min
	}
	c.maxLength = &max
	return c
}

// Between bounds a number.
func (s *Schema) Between(min, max int) *Schema {
	c := s.copy()
	c.minimum, c.maximum = &min, &max
	return c
}

// AtLeast bounds a number from below.
func (s *Schema) AtLeast(min int) *Schema { c := s.copy(); c.minimum = &min; return c }

// Default is the value an absent field takes.
func (s *Schema) Default(v any) *Schema { c := s.copy(); c.def = v; return c }

// Pattern is a regular expression the string matches.
func (s *Schema) Pattern(p string) *Schema { c := s.copy(); c.pattern = p; return c }

// Format is the string's format (uuid, date-time, email, uri, int64…).
func (s *Schema) Format(f string) *Schema { c := s.copy(); c.format = f; return c }

// WriteOnly marks a value that is accepted but never sent back.
func (s *Schema) WriteOnly() *Schema { c := s.copy(); c.writeOnly = true; return c }

// Null lets the value be null too.
func (s *Schema) Null() *Schema { c := s.copy(); c.nullable = true; return c }

// JSON.

type wireSchema struct {
	Ref                  string           `json:"$ref,omitempty"`
	Description          string           `json:"description,omitempty"`
	Type                 any              `json:"type,omitempty"`
	Const                *string          `json:"const,omitempty"`
	Enum                 []any            `json:"enum,omitempty"`
	Format               string           `json:"format,omitempty"`
	Pattern              string           `json:"pattern,omitempty"`
	MinLength            *int             `json:"minLength,omitempty"`
	MaxLength            *int             `json:"maxLength,omitempty"`
	Minimum              *int             `json:"minimum,omitempty"`
	Maximum              *int             `json:"maximum,omitempty"`
	Default              any              `json:"default,omitempty"`
	WriteOnly            bool             `json:"writeOnly,omitempty"`
	Items                *Schema          `json:"items,omitempty"`
	Required             []string         `json:"required,omitempty"`
	Properties           ordered[*Schema] `json:"properties,omitempty"`
	AdditionalProperties any              `json:"additionalProperties,omitempty"`
	Examples             []any            `json:"examples,omitempty"`
	AnyOf                []any            `json:"anyOf,omitempty"`
}

// MarshalJSON writes the schema; properties keep their order.
func (s *Schema) MarshalJSON() ([]byte, error) {
	w := wireSchema{Description: s.description, Const: s.constant, Format: s.format, Pattern: s.pattern,
		MinLength: s.minLength, MaxLength: s.maxLength, Minimum: s.minimum, Maximum: s.maximum, Default: s.def,
		WriteOnly: s.writeOnly, Items: s.items, Examples: s.examples}
	switch {
	case s.ref != "" && s.nullable:
		// OpenAPI 3.1 has no nullable reference: the component, or null.
		w.AnyOf = []any{map[string]string{"$ref": componentRef("schemas", s.ref)}, map[string]string{"type": "null"}}
	case s.ref != "":
		w.Ref = componentRef("schemas", s.ref)
	}
	switch {
	case s.typ == "":
	case s.nullable:
		w.Type = []string{s.typ, "null"}
	default:
		w.Type = s.typ
	}
	for _, v := range s.enum {
		w.Enum = append(w.Enum, v)
	}
	if s.nullable && s.enum != nil {
		w.Enum = append(w.Enum, nil)
	}
	for _, p := range s.props {
		w.Properties = append(w.Properties, entry[*Schema]{p.name, p.s})
		if p.required {
			w.Required = append(w.Required, p.name)
		}
	}
	switch {
	case s.closed:
		w.AdditionalProperties = false
	case s.free:
		w.AdditionalProperties = true
	case s.values != nil:
		w.AdditionalProperties = s.values
	}
	return marshal(w)
}

// marshal is json.Marshal without HTML escaping, so descriptions keep
// their < > & as written.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// ordered is a JSON object whose keys keep the order they were added in.
type ordered[V any] []entry[V]

type entry[V any] struct {
	key   string
	value V
}

func (m ordered[V]) MarshalJSON() ([]byte, error) {
	buf := []byte{'{'}
	for i, e := range m {
		if i > 0 {
			buf = append(buf, ',')
		}
		k, _ := marshal(e.key)
		v, err := marshal(e.value)
		if err != nil {
			return nil, err
		}
		buf = append(append(append(buf, k...), ':'), v...)
	}
	return append(buf, '}'), nil
}

func componentRef(kind, name string) string { return "#/components/" + kind + "/" + name }

// Components: schemas the spec names, written by hand or read from Go
// structs.

// Component is a named schema of the spec.
type Component struct {
	name  string
	goTyp reflect.Type // for Record
	build func(r *resolver) (*Schema, error)
}

// Named is a schema written by hand.
func Named(name string, s *Schema) Component {
	return Component{name: name, build: func(*resolver) (*Schema, error) { return s, nil }}
}

// Record describes a response struct by reflection, so the document cannot
// miss or misname one of its fields: its json field names in order, each
// always present (required) unless tagged omitempty, null where the Go
// type is a pointer. Go types map as: uuid.UUID → a uuid string, a type in
// Spec.GoTypes → that schema, string/int/int64/float64/bool → themselves,
// a slice → an array, a map with string keys → an object of its values, a
// struct that is itself a Record → a $ref to it, any other struct → an
// inline object. override replaces the schema of a field that exists
// (adding an enum, a format, a description); the Go type still decides
// nullability.
func Record(name string, v any, description string, override ...Prop) Component {
	t := reflect.TypeOf(v)
	return Component{name: name, goTyp: t, build: func(r *resolver) (*Schema, error) {
		s, err := r.schemaOf(t, true)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		for _, o := range override {
			i := slices.IndexFunc(s.props, func(p Prop) bool { return p.name == o.name })
			if i < 0 {
				return nil, fmt.Errorf("%s has no field %q to override", name, o.name)
			}
			derived, repl := s.props[i].s, o.s
			if derived.typ != repl.typ {
				return nil, fmt.Errorf("%s.%s is %q in Go, the override says %q", name, o.name, derived.typ, repl.typ)
			}
			if derived.nullable {
				repl = repl.Null()
			}
			s.props[i].s = repl
		}
		s.description = description
		return s, nil
	}}
}

// resolver turns Go types into schemas.
type resolver struct {
	goTypes map[reflect.Type]*Schema
	records map[reflect.Type]string
}

var typeUUID = reflect.TypeOf(uuid.UUID{})

func (r *resolver) schemaOf(t reflect.Type, top bool) (*Schema, error) {
	if t.Kind() == reflect.Pointer {
		s, err := r.schemaOf(t.Elem(), false)
		if err != nil {
			return nil, err
		}
		return s.Null(), nil
	}
	if name, ok := r.records[t]; ok && !top {
		return Ref(name), nil
	}
	if s, ok := r.goTypes[t]; ok {
		return s, nil
	}
	if t == typeUUID {
		return UUID(), nil
	}
	switch t.Kind() {
	case reflect.String:
		return String(), nil
	case reflect.Int, reflect.Int32:
		return Integer(), nil
	case reflect.Int64:
		return Integer().Format("int64"), nil
	case reflect.Float32, reflect.Float64:
		return Number(), nil
	case reflect.Bool:
		return Bool(), nil
	case reflect.Slice:
		items, err := r.schemaOf(t.Elem(), false)
		if err != nil {
			return nil, err
		}
		return Array(items), nil
	case reflect.Map:
		if t.Key().Kind() == reflect.String {
			v, err := r.schemaOf(t.Elem(), false)
			if err != nil {
				return nil, err
			}
			return MapOf(v), nil
		}
	case reflect.Struct:
		var p []Prop
		for i := range t.NumField() {
			f := t.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			s, err := r.schemaOf(f.Type, false)
			if err != nil {
				return nil, fmt.Errorf("field %s: %w", name, err)
			}
			p = append(p, Prop{name: name, s: s, required: !slices.Contains(strings.Split(opts, ","), "omitempty")})
		}
		return Object(p...), nil
	}
	return nil, fmt.Errorf("no schema for Go type %v: add it to Spec.GoTypes", t)
}
