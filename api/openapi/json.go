package openapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// built is a checked spec with its components resolved.
type built struct {
	*Spec
	schemas ordered[*Schema]
	byName  map[string]*Schema
}

// build resolves the components and checks what a document needs to be
// right: unique camelCase operation ids, listed tags, a success answer
// for every operation, schema references that resolve, error names that
// mean one thing.
func (sp *Spec) build() (*built, error) {
	r := &resolver{goTypes: sp.GoTypes, records: map[reflect.Type]string{}}
	for _, c := range sp.Components {
		if c.goTyp != nil {
			r.records[c.goTyp] = c.name
		}
	}
	b := &built{Spec: sp, byName: map[string]*Schema{}}
	var errs []error
	for _, c := range sp.Components {
		s, err := c.build(r)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if b.byName[c.name] != nil {
			errs = append(errs, fmt.Errorf("schema %s twice", c.name))
		}
		b.byName[c.name] = s
		b.schemas = append(b.schemas, entry[*Schema]{c.name, s})
	}
	tags := map[string]bool{}
	for _, t := range sp.Tags {
		tags[t.Name] = true
	}
	var refs []string
	var walk func(s *Schema)
	walk = func(s *Schema) {
		if s == nil {
			return
		}
		if s.ref != "" {
			refs = append(refs, s.ref)
		}
		walk(s.items)
		walk(s.values)
		for _, p := range s.props {
			walk(p.s)
		}
	}
	camel := regexp.MustCompile(`^[a-z][a-zA-Z0-9]*$`)
	ids := map[string]bool{}
	routes := map[string]bool{}
	errNames := map[string]ErrorDoc{}
	for _, o := range sp.Operations {
		if ids[o.id] || !camel.MatchString(o.id) {
			errs = append(errs, fmt.Errorf("operationId %q is not unique camelCase", o.id))
		}
		ids[o.id] = true
		if o.head {
			if o.method != "GET" || ids[o.id+"Head"] {
				errs = append(errs, fmt.Errorf("%s: a HEAD beside %s %s", o.id, o.method, o.path))
			}
			ids[o.id+"Head"] = true
		}
		if routes[o.method+" "+o.path] {
			errs = append(errs, fmt.Errorf("%s %s twice", o.method, o.path))
		}
		routes[o.method+" "+o.path] = true
		if !tags[o.tag] {
			errs = append(errs, fmt.Errorf("%s: tag %q is not in Spec.Tags", o.id, o.tag))
		}
		if o.status == 0 {
			errs = append(errs, fmt.Errorf("%s: no success answer (OK, Created, Returns…)", o.id))
		}
		walk(o.result)
		for _, a := range o.alt {
			walk(a.s)
		}
		for _, p := range o.query {
			walk(p.s)
		}
		if o.body != "" {
			refs = append(refs, o.body)
		}
		for _, e := range o.errors(sp) {
			if prev, ok := errNames[e.Name]; ok && !reflect.DeepEqual(prev, e) {
				errs = append(errs, fmt.Errorf("two different errors are named %s: give one another name", e.Name))
			}
			errNames[e.Name] = e
		}
	}
	for _, s := range b.schemas {
		walk(s.value)
	}
	if sp.ErrorSchema != "" {
		refs = append(refs, sp.ErrorSchema)
	}
	for _, r := range refs {
		if b.byName[r] == nil {
			errs = append(errs, fmt.Errorf("no schema named %s", r))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("openapi spec: %w", err)
	}
	return b, nil
}

// resolve follows a $ref.
func (b *built) resolve(s *Schema) *Schema {
	for s != nil && s.ref != "" {
		s = b.byName[s.ref]
	}
	return s
}

// errorGroups is an operation's errors by status, ascending.
func errorGroups(errs []ErrorDoc) (statuses []int, groups map[int][]ErrorDoc) {
	groups = map[int][]ErrorDoc{}
	for _, e := range errs {
		if slices.ContainsFunc(groups[e.Status], func(x ErrorDoc) bool { return x.Name == e.Name }) {
			continue
		}
		if groups[e.Status] == nil {
			statuses = append(statuses, e.Status)
		}
		groups[e.Status] = append(groups[e.Status], e)
	}
	sort.Ints(statuses)
	return statuses, groups
}

// The JSON document.

type document struct {
	OpenAPI    string                    `json:"openapi"`
	Info       docInfo                   `json:"info"`
	Servers    []docServer               `json:"servers"`
	Security   []map[string][]string     `json:"security"`
	Tags       []docTag                  `json:"tags"`
	Paths      ordered[map[string]docOp] `json:"paths"`
	Components docComponents             `json:"components"`
}

type docInfo struct {
	Title       string     `json:"title"`
	Version     string     `json:"version"`
	Description string     `json:"description,omitempty"`
	License     docLicense `json:"license"`
}

type docLicense struct {
	Name       string `json:"name"`
	Identifier string `json:"identifier,omitempty"`
}

type docServer struct {
	URL         string `json:"url"`
	Description string `json:"description,omitempty"`
}

type docTag struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

type docOp struct {
	OperationID string                 `json:"operationId"`
	Summary     string                 `json:"summary"`
	Description string                 `json:"description,omitempty"`
	Tags        []string               `json:"tags"`
	Parameters  []any                  `json:"parameters,omitempty"`
	RequestBody *docRequestBody        `json:"requestBody,omitempty"`
	Responses   map[string]docResponse `json:"responses"`
	// Security is [] for a public operation (overriding the document's).
	Security *[]map[string][]string `json:"security,omitempty"`
	// Role is the role its token needs (viewer, operator, admin).
	Role string `json:"x-required-role,omitempty"`
}

type docParam struct {
	Name        string  `json:"name"`
	In          string  `json:"in"`
	Description string  `json:"description,omitempty"`
	Required    bool    `json:"required,omitempty"`
	Schema      *Schema `json:"schema"`
}

type docRef struct {
	Ref string `json:"$ref"`
}

type docRequestBody struct {
	Required bool                `json:"required"`
	Content  map[string]docMedia `json:"content"`
}

type docResponse struct {
	Ref         string               `json:"$ref,omitempty"`
	Description string               `json:"description,omitempty"`
	Headers     map[string]docHeader `json:"headers,omitempty"`
	Content     map[string]docMedia  `json:"content,omitempty"`
}

type docHeader struct {
	Ref         string  `json:"$ref,omitempty"`
	Description string  `json:"description,omitempty"`
	Required    bool    `json:"required,omitempty"`
	Schema      *Schema `json:"schema,omitempty"`
}

// responseHeaders documents the headers of an answer that is any of
// groups' members: a header is required only when every member always
// sends it.
func responseHeaders(groups ...[]RespHeader) map[string]docHeader {
	out := map[string]docHeader{}
	count := map[string]int{}
	for _, g := range groups {
		for _, h := range g {
			d, seen := out[h.Name]
			if !seen {
				d = docHeader{Description: h.Description, Required: true, Schema: h.Schema}
			}
			d.Required = d.Required && h.Always
			out[h.Name] = d
			count[h.Name]++
		}
	}
	for name, n := range count {
		if n < len(groups) {
			d := out[name]
			d.Required = false
			out[name] = d
		}
	}
	for _, g := range groups {
		for _, h := range g {
			if d := out[h.Name]; h.Component != "" && d.Required {
				out[h.Name] = docHeader{Ref: "#/components/headers/" + h.Component}
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

type docMedia struct {
	Schema   *Schema               `json:"schema,omitempty"`
	Examples map[string]docExample `json:"examples,omitempty"`
}

type docExample struct {
	Summary string `json:"summary,omitempty"`
	Value   any    `json:"value"`
}

type docScheme struct {
	Type         string `json:"type"`
	Scheme       string `json:"scheme,omitempty"`
	In           string `json:"in,omitempty"`
	Name         string `json:"name,omitempty"`
	BearerFormat string `json:"bearerFormat,omitempty"`
	Description  string `json:"description,omitempty"`
}

type docComponents struct {
	SecuritySchemes map[string]docScheme   `json:"securitySchemes,omitempty"`
	Schemas         ordered[*Schema]       `json:"schemas"`
	Responses       map[string]docResponse `json:"responses,omitempty"`
	Parameters      map[string]docParam    `json:"parameters,omitempty"`
	Headers         map[string]docHeader   `json:"headers,omitempty"`
}

func (b *built) errorResponse(group []ErrorDoc) docResponse {
	var desc []string
	var headers [][]RespHeader
	examples := map[string]docExample{}
	for _, e := range group {
		desc = append(desc, e.Code+": "+e.When)
		examples[e.Name] = docExample{Summary: e.Code, Value: e.Body}
		headers = append(headers, append(slices.Clone(e.Headers), b.AnswerHeaders...))
	}
	text := desc[0]
	if len(desc) > 1 {
		text = "- " + strings.Join(desc, "\n- ")
	}
	return docResponse{Description: text, Headers: responseHeaders(headers...),
		Content: map[string]docMedia{"application/json": {Schema: Ref(b.ErrorSchema), Examples: examples}}}
}

// headOf is the head operation beside GET operation d: its parameters,
// access and answers, the success answer without its body. (The errors
// keep their shared descriptions, which show the body a GET would get.)
func headOf(d docOp, o *Operation) docOp {
	h := d
	h.OperationID = o.id + "Head"
	h.Summary = o.summary + " (headers only)"
	h.Description = "`HEAD " + o.path + "`: what `GET` answers, the same status and headers, without the body; for load balancers' and monitors' probes."
	h.Responses = maps.Clone(d.Responses)
	st := strconv.Itoa(o.status)
	ok := h.Responses[st]
	ok.Content = nil
	ok.Description += ", no body"
	h.Responses[st] = ok
	return h
}

// JSON is the OpenAPI 3.1 document, indented, keys in a fixed order: the
// same spec always gives the same bytes.
func (sp *Spec) JSON() ([]byte, error) {
	b, err := sp.build()
	if err != nil {
		return nil, err
	}
	doc := document{
		OpenAPI:  "3.1.0",
		Info:     docInfo{Title: sp.Title, Version: sp.Version, Description: sp.Description, License: docLicense{Name: sp.License, Identifier: sp.LicenseID}},
		Security: []map[string][]string{},
		Paths:    ordered[map[string]docOp]{},
		Components: docComponents{Schemas: b.schemas, Responses: map[string]docResponse{},
			Parameters: map[string]docParam{}},
	}
	if sp.Bearer != "" {
		doc.Security = []map[string][]string{{"bearerAuth": {}}}
		doc.Components.SecuritySchemes = map[string]docScheme{"bearerAuth": {Type: "http", Scheme: "bearer",
			BearerFormat: "gwd_ token", Description: sp.Bearer}}
	}
	for _, s := range sp.Servers {
		doc.Servers = append(doc.Servers, docServer(s))
	}
	for _, t := range sp.Tags {
		doc.Tags = append(doc.Tags, docTag(t))
	}
	for _, h := range sp.Headers {
		doc.Components.Parameters[h.Component] = docParam{Name: h.Name, In: "header", Description: h.Description, Schema: h.Schema}
	}
	for _, h := range sp.AnswerHeaders {
		if h.Component != "" {
			if doc.Components.Headers == nil {
				doc.Components.Headers = map[string]docHeader{}
			}
			doc.Components.Headers[h.Component] = docHeader{Description: h.Description, Required: h.Always, Schema: h.Schema}
		}
	}
	pathIndex := map[string]int{}
	for _, o := range sp.Operations {
		d := docOp{OperationID: o.id, Summary: o.summary, Description: o.description, Tags: []string{o.tag},
			Responses: map[string]docResponse{}, Role: o.role}
		if o.public && sp.Bearer != "" {
			d.Security = &[]map[string][]string{}
		}
		if o.tokenQuery != "" && sp.Bearer != "" && !o.public {
			scheme := "queryToken"
			doc.Components.SecuritySchemes[scheme] = docScheme{Type: "apiKey", In: "query", Name: o.tokenQuery,
				Description: "The same token as bearerAuth, as the `" + o.tokenQuery + "` query parameter, for clients that cannot send headers (EventSource); only where an operation lists it."}
			d.Security = &[]map[string][]string{{"bearerAuth": {}}, {scheme: {}}}
		}
		for _, p := range o.params() {
			d.Parameters = append(d.Parameters, docParam{Name: p.name, In: p.in, Description: p.description, Required: p.required, Schema: p.s})
		}
		for _, h := range sp.Headers {
			d.Parameters = append(d.Parameters, docRef{Ref: componentRef("parameters", h.Component)})
		}
		if o.body != "" {
			d.RequestBody = &docRequestBody{Required: true, Content: map[string]docMedia{"application/json": {Schema: Ref(o.body)}}}
		}
		ok := docResponse{Description: o.resultDesc, Headers: responseHeaders(append(slices.Clone(o.headers), sp.AnswerHeaders...))}
		if o.result != nil {
			ok.Content = map[string]docMedia{o.media: {Schema: o.result}}
			for _, a := range o.alt {
				ok.Content[a.media] = docMedia{Schema: a.s}
			}
		}
		d.Responses[strconv.Itoa(o.status)] = ok
		statuses, groups := errorGroups(o.errors(sp))
		for _, st := range statuses {
			// One component per error, or per set of errors sharing a
			// status (named after them: FooOrBar), written once however
			// many operations answer it.
			g := groups[st]
			names := make([]string, len(g))
			for i, e := range g {
				names[i] = e.Name
			}
			name := strings.Join(names, "Or")
			doc.Components.Responses[name] = b.errorResponse(g)
			d.Responses[strconv.Itoa(st)] = docResponse{Ref: componentRef("responses", name)}
		}
		i, ok2 := pathIndex[o.path]
		if !ok2 {
			i = len(doc.Paths)
			pathIndex[o.path] = i
			doc.Paths = append(doc.Paths, entry[map[string]docOp]{o.path, map[string]docOp{}})
		}
		doc.Paths[i].value[strings.ToLower(o.method)] = d
		if o.head {
			doc.Paths[i].value["head"] = headOf(d, o)
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
