// Package openapi describes an HTTP API in Go, compactly, and produces
// from that one description an OpenAPI 3.1 document (Spec.JSON) and a
// static HTML reference page that needs no JavaScript (Spec.HTML).
// gatewayd's description is api/openapi_spec.go.
package openapi

import (
	"reflect"
	"regexp"
	"slices"
	"strings"
)

// Spec is a whole API.
type Spec struct {
	Title, Version string
	// Description is plain text; paragraphs are separated by a blank
	// line and `backticks` mark code.
	Description string
	// License names the license; LicenseID is its SPDX expression.
	License, LicenseID string
	Servers            []Server
	Tags               []Tag
	Operations         []*Operation
	Components         []Component
	// Headers are request headers every operation takes.
	Headers []Header
	// AnswerHeaders are headers every answer carries, success or error;
	// the document declares them on every response.
	AnswerHeaders []RespHeader
	// GoTypes give the schema of Go types Record meets that are not
	// plain (a time type with its own text form, raw JSON, …).
	GoTypes map[reflect.Type]*Schema
	// ErrorSchema names the component every error response has.
	ErrorSchema string
	// Common lists the errors an operation answers because of what it
	// is (has a body, has parameters, uses the database), besides the
	// ones its Fails names.
	Common func(o *Operation) []ErrorDoc
	// Bearer, when not empty, describes the bearer token every operation
	// needs unless it is Public.
	Bearer string
	// RouteErrors are answers of the router that belong to no operation
	// (no such route, a method the route does not take); the docs page
	// lists them with the others.
	RouteErrors []ErrorDoc
}

// Server is where the API answers.
type Server struct{ URL, Description string }

// Tag groups operations.
type Tag struct{ Name, Description string }

// Header is a request header every operation takes, documented once as a
// component parameter.
type Header struct {
	Component, Name, Description string
	Schema                       *Schema
}

// Operation is one method on one path. Build it with Get, Post, Put or
// Delete and the chained methods below.
type Operation struct {
	method, path, id, summary, description, tag string

	query      []Param
	body       string // request body: the name of a component schema; "" for none
	status     int    // success status
	media      string // success media type
	result     *Schema
	alt        []altMedia // other media types of the success answer
	headers    []RespHeader
	resultDesc string
	errs       []ErrorDoc
	no503      bool
	head       bool // a HEAD operation beside this GET
	public     bool
	role       string
	tokenQuery string // a query parameter that may carry the bearer token instead
}

func newOperation(method, path, id, summary string) *Operation {
	return &Operation{method: method, path: path, id: id, summary: summary, media: "application/json"}
}

// Get, Post, Put and Delete start an operation: its path ({name} marks a
// path parameter, always a UUID), its operationId (unique, camelCase) and
// a one-line summary.
func Get(path, id, summary string) *Operation    { return newOperation("GET", path, id, summary) }
func Post(path, id, summary string) *Operation   { return newOperation("POST", path, id, summary) }
func Put(path, id, summary string) *Operation    { return newOperation("PUT", path, id, summary) }
func Delete(path, id, summary string) *Operation { return newOperation("DELETE", path, id, summary) }

// In sets the operation's tag.
func (o *Operation) In(tag string) *Operation { o.tag = tag; return o }

// Doc adds a longer description (plain text, `backticks` for code).
func (o *Operation) Doc(text string) *Operation { o.description = text; return o }

// Query documents query parameters.
func (o *Operation) Query(p ...Param) *Operation { o.query = append(o.query, p...); return o }

// Takes names the component schema of the JSON request body.
func (o *Operation) Takes(schema string) *Operation { o.body = schema; return o }

// Returns sets the success answer: status, description and body schema
// (nil for none).
func (o *Operation) Returns(status int, description string, s *Schema) *Operation {
	o.status, o.resultDesc, o.result = status, description, s
	return o
}

func (o *Operation) OK(s *Schema) *Operation       { return o.Returns(200, "OK", s) }
func (o *Operation) Created(s *Schema) *Operation  { return o.Returns(201, "Created", s) }
func (o *Operation) Accepted(s *Schema) *Operation { return o.Returns(202, "Accepted", s) }
func (o *Operation) NoContent() *Operation         { return o.Returns(204, "No content", nil) }

// As sets the success media type (default application/json).
func (o *Operation) As(media string) *Operation { o.media = media; return o }

// Sends documents headers of the success answer.
func (o *Operation) Sends(h ...RespHeader) *Operation { o.headers = append(o.headers, h...); return o }

// OrAs adds another media type of the success answer, with its schema:
// the one a client gets by asking for it in Accept.
func (o *Operation) OrAs(media string, s *Schema) *Operation {
	o.alt = append(o.alt, altMedia{media, s})
	return o
}

type altMedia struct {
	media string
	s     *Schema
}

// Fails documents errors particular to this operation.
func (o *Operation) Fails(e ...ErrorDoc) *Operation { o.errs = append(o.errs, e...); return o }

// No503 says the operation answers no 503 of its own: it needs neither
// the database nor the runtime, or (like a liveness probe) reports them
// instead of failing. (Spec.Common may still list a 503 it gets from
// elsewhere, such as a process that is still starting.)
func (o *Operation) No503() *Operation { o.no503 = true; return o }

// AlsoHead says a GET also answers HEAD: the same status and headers, no
// body. The document lists a head operation beside it (operationId with
// "Head" appended), the docs page a line in the GET's entry.
func (o *Operation) AlsoHead() *Operation { o.head = true; return o }

// What Spec.Common asks of an operation.

// HasBody says whether the operation takes a request body.
// TokenInQuery says the operation also takes its token as the query
// parameter name (for clients, such as EventSource, that cannot send
// headers): the document gives it an apiKey scheme as an alternative to
// the bearer header.
func (o *Operation) TokenInQuery(name string) *Operation { o.tokenQuery = name; return o }

// Public marks an operation that needs no token.
func (o *Operation) Public() *Operation { o.public = true; return o }

// Needs names the role an operation's token must have.
func (o *Operation) Needs(role string) *Operation { o.role = role; return o }

// IsPublic reports whether the operation needs no token.
func (o *Operation) IsPublic() bool { return o.public }

// Path is the operation's path, {name} marking parameters.
func (o *Operation) Path() string { return o.path }

// Method is the operation's HTTP method.
func (o *Operation) Method() string { return o.method }

func (o *Operation) HasBody() bool { return o.body != "" }

// HasParams says whether the operation has path or query parameters.
func (o *Operation) HasParams() bool { return len(o.query) > 0 || strings.Contains(o.path, "{") }

// Can503 says whether the operation may answer 503.
func (o *Operation) Can503() bool { return !o.no503 }

var pathParam = regexp.MustCompile(`\{(\w+)\}`)

func (o *Operation) params() []Param {
	var out []Param
	for _, m := range pathParam.FindAllStringSubmatch(o.path, -1) {
		out = append(out, Param{name: m[1], in: "path", required: true, s: UUID()})
	}
	return append(out, o.query...)
}

func (o *Operation) errors(sp *Spec) []ErrorDoc {
	var out []ErrorDoc
	if sp.Common != nil {
		out = sp.Common(o)
	}
	return append(out, o.errs...)
}

// Param is a path or query parameter.
type Param struct {
	name, in, description string
	required              bool
	s                     *Schema
}

// HeaderParam is an optional request header particular to an operation
// (Spec.Headers are those every operation takes); give it with Query.
func HeaderParam(name string, s *Schema, description string) Param {
	return Param{name: name, in: "header", s: s, description: description}
}

// QueryParam is an optional query parameter.
func QueryParam(name string, s *Schema, description string) Param {
	return Param{name: name, in: "query", s: s, description: description}
}

// ErrorDoc is one error answer. Name is its component name (unique in the
// spec: a variant of a code with another message or details needs its
// own); Body is its JSON body, an example.
type ErrorDoc struct {
	Name    string
	Status  int
	Code    string
	Message string
	When    string
	Body    any
	Headers []RespHeader
}

// With returns a copy that also carries headers h.
func (e ErrorDoc) With(h ...RespHeader) ErrorDoc {
	e.Headers = append(slices.Clone(e.Headers), h...)
	return e
}

// RespHeader is a header an answer carries. Always says every such answer
// has it (required in the document); otherwise some do, as Description
// says.
type RespHeader struct {
	Name, Description string
	Schema            *Schema
	Always            bool
	// Component, when set, names the header under components.headers;
	// a response that always carries it refers to it there instead of
	// repeating it (one every answer carries, written out on each, made
	// the document a third larger).
	Component string
}

// Named returns a copy under another component name.
func (e ErrorDoc) Named(name string) ErrorDoc { e.Name = name; return e }

// Because returns a copy with another explanation (and so another name).
func (e ErrorDoc) Because(name, when string) ErrorDoc { e.Name, e.When = name, when; return e }
