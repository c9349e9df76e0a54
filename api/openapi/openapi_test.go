package openapi

import (
	"encoding/json"
	"strings"
	"testing"
)

type item struct {
	ID    string  `json:"id"`
	Note  *string `json:"note"`
	Count int64   `json:"count,omitempty"`
	Tags  []child `json:"tags"`
}

type child struct {
	Name string `json:"name"`
}

func base() *Spec {
	return &Spec{
		Title: "t", Version: "1", License: "Proprietary",
		Tags: []Tag{{Name: "items", Description: "Items."}},
		Operations: []*Operation{
			Get("/items/{id}", "getItem", "Get an item").In("items").OK(Ref("Item")),
		},
		Components: []Component{
			Record("Item", item{}, "An item.", Field("id", String().Desc("the id"))),
			Record("Child", child{}, "A child."),
		},
	}
}

func TestRecordReadsTheStruct(t *testing.T) {
	doc, err := base().JSON()
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Components struct {
			Schemas map[string]struct {
				Required   []string
				Properties map[string]map[string]any
			}
		}
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	it := d.Components.Schemas["Item"]
	if strings.Join(it.Required, ",") != "id,note,tags" {
		t.Errorf("required %v: omitempty fields are optional, the others always present", it.Required)
	}
	if it.Properties["id"]["description"] != "the id" {
		t.Errorf("override lost: %v", it.Properties["id"])
	}
	if typ, _ := it.Properties["note"]["type"].([]any); len(typ) != 2 || typ[1] != "null" {
		t.Errorf("a pointer is nullable: %v", it.Properties["note"])
	}
	if it.Properties["count"]["format"] != "int64" {
		t.Errorf("int64: %v", it.Properties["count"])
	}
	items, _ := it.Properties["tags"]["items"].(map[string]any)
	if items["$ref"] != "#/components/schemas/Child" {
		t.Errorf("a struct that is a Record is referenced: %v", it.Properties["tags"])
	}
	// Properties keep the struct's order.
	if i, j := strings.Index(string(doc), `"note"`), strings.Index(string(doc), `"count"`); i < 0 || i > j {
		t.Error("properties out of order")
	}
}

func TestBuildRefusesMistakes(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		change     func(*Spec)
	}{
		{"duplicate id", "not unique camelCase", func(s *Spec) {
			s.Operations = append(s.Operations, Delete("/items/{id}", "getItem", "x").In("items").NoContent())
		}},
		{"not camelCase", "not unique camelCase", func(s *Spec) { s.Operations[0].id = "get-item" }},
		{"same route twice", "twice", func(s *Spec) {
			s.Operations = append(s.Operations, Get("/items/{id}", "getItemAgain", "x").In("items").OK(nil))
		}},
		{"unlisted tag", "is not in Spec.Tags", func(s *Spec) { s.Operations[0].In("things") }},
		{"no success answer", "no success answer", func(s *Spec) { s.Operations[0].status = 0 }},
		{"unknown schema", "no schema named Nope", func(s *Spec) { s.Operations[0].Takes("Nope") }},
		{"override of a field that is not there", `no field "nope"`, func(s *Spec) {
			s.Components[0] = Record("Item", item{}, "", Field("nope", String()))
		}},
		{"override of another type", `the override says "integer"`, func(s *Spec) {
			s.Components[0] = Record("Item", item{}, "", Field("id", Integer()))
		}},
		{"a Go type with no schema", "no schema for Go type", func(s *Spec) {
			s.Components = append(s.Components, Record("Odd", struct{ C chan int }{}, ""))
		}},
		{"two errors, one name", "two different errors are named Gone", func(s *Spec) {
			s.Operations[0].Fails(ErrorDoc{Name: "Gone", Status: 404, Code: "A"}, ErrorDoc{Name: "Gone", Status: 410, Code: "B"})
		}},
	} {
		s := base()
		tc.change(s)
		_, err := s.JSON()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
}
