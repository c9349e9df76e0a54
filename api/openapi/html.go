package openapi

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Stylesheet is the reference page's CSS; serve it at the URL given to
// HTML. The page has no inline style and no script, so it works under
// `default-src 'none'; style-src 'self'` and without JavaScript.
//
//go:embed docs.css
var Stylesheet []byte

//go:embed page.html.tmpl
var pageSource string

var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{"prose": prose}).Parse(pageSource))

var codeSpan = regexp.MustCompile("`([^`]+)`")

// prose turns plain text into HTML: escaped, `backticks` as <code>.
func prose(s string) template.HTML {
	return template.HTML(codeSpan.ReplaceAllString(template.HTMLEscapeString(s), "<code>$1</code>"))
}

// The page's view of the spec: everything precomputed into strings, so
// the template only lays it out.

type pageView struct {
	Title, Version, CSS, JSON string
	Intro                     []string
	Headers                   []rowView
	Tags                      []tagView
	Errors                    []errorView
	ErrorSchema               string
	Schemas                   []schemaView
}

type tagView struct {
	Name, Description string
	Ops               []opView
}

type opView struct {
	ID, Method, Path, Summary, Description string
	HeadID                                 string // the head operation's id, when it has one
	Access                                 string // who may call it, when the spec has Bearer
	Params                                 []rowView
	Body                                   *schemaView
	Success                                respView
	Errors                                 []errorView
}

type respView struct {
	Status             int
	Description, Media string
	Type               typeView
	Table              tableView
	Alt                []altView
	Headers            []headerView
}

// headerView is a header an answer carries.
type headerView struct{ Name, Description string }

func headerViews(hs []RespHeader) []headerView {
	var out []headerView
	for _, h := range hs {
		out = append(out, headerView{Name: h.Name, Description: h.Description})
	}
	return out
}

// altView is another media type of an answer, chosen by Accept.
type altView struct {
	Media, Description string
	Type               typeView
}

// tableView is a schema's fields; Column heads the required column, which
// means "required" in a request and "always present" in an answer.
type tableView struct {
	Column string
	Rows   []rowView
}

func requestTable(s *Schema) tableView { return tableView{Column: "Required", Rows: rowsOf(s)} }
func answerTable(s *Schema) tableView  { return tableView{Column: "Always present", Rows: rowsOf(s)} }

type errorView struct {
	Status                    int
	Name, Code, Message, When string
	Headers                   []headerView
}

type rowView struct {
	Name, In                 string
	Type                     typeView
	Required                 bool
	Constraints, Description string
}

// typeView is written Prefix, then a link to the schema Ref when there is
// one, then Suffix: "array of " [Gateway] "".
type typeView struct{ Prefix, Ref, Suffix string }

type schemaView struct {
	Name, Description string
	Type              typeView
	Table             tableView
}

func typeOf(s *Schema) typeView {
	switch {
	case s == nil:
		return typeView{}
	case s.ref != "":
		return typeView{Ref: s.ref}
	case s.items != nil:
		t := typeOf(s.items)
		t.Prefix = "array of " + t.Prefix
		return nullSuffix(t, s)
	case s.values != nil:
		t := typeOf(s.values)
		t.Prefix = "object of " + t.Prefix
		return nullSuffix(t, s)
	}
	name := s.typ
	if s.format != "" {
		name += " (" + s.format + ")"
	}
	return nullSuffix(typeView{Prefix: name}, s)
}

func nullSuffix(t typeView, s *Schema) typeView {
	if s.nullable {
		t.Suffix += " or null"
	}
	return t
}

func constraints(s *Schema) string {
	var out []string
	switch {
	case s.minLength != nil && s.maxLength != nil:
		out = append(out, fmt.Sprintf("%d–%d characters", *s.minLength, *s.maxLength))
	case s.maxLength != nil:
		out = append(out, fmt.Sprintf("at most %d characters", *s.maxLength))
	case s.minLength != nil:
		out = append(out, fmt.Sprintf("at least %d characters", *s.minLength))
	}
	switch {
	case s.minimum != nil && s.maximum != nil:
		out = append(out, fmt.Sprintf("%d–%d", *s.minimum, *s.maximum))
	case s.minimum != nil:
		out = append(out, fmt.Sprintf("at least %d", *s.minimum))
	}
	if s.constant != nil {
		out = append(out, strconv.Quote(*s.constant))
	}
	if len(s.enum) > 0 {
		out = append(out, "one of "+strings.Join(s.enum, ", "))
	}
	switch s.pattern {
	case "":
	case TimePattern:
		out = append(out, "UTC, exactly 3 fraction digits")
	default:
		out = append(out, "matches "+s.pattern)
	}
	if s.def != nil {
		out = append(out, fmt.Sprintf("default %v", s.def))
	}
	if s.writeOnly {
		out = append(out, "never sent back")
	}
	if s.closed {
		out = append(out, "no other fields")
	}
	return strings.Join(out, "; ")
}

func rowsOf(s *Schema) []rowView {
	if s == nil {
		return nil
	}
	var rows []rowView
	for _, p := range s.props {
		rows = append(rows, rowView{Name: p.name, Type: typeOf(p.s), Required: p.required,
			Constraints: constraints(p.s), Description: p.s.description})
	}
	return rows
}

func errorViews(errs []ErrorDoc) []errorView {
	statuses, groups := errorGroups(errs)
	var out []errorView
	for _, st := range statuses {
		for _, e := range groups[st] {
			out = append(out, errorView{Status: e.Status, Name: e.Name, Code: e.Code, Message: e.Message, When: e.When,
				Headers: headerViews(e.Headers)})
		}
	}
	return out
}

// HTML is a reference page for people: every operation grouped by tag,
// with its parameters, request body fields, success answer and errors,
// a table of contents, every error answer, and every schema. It links
// the stylesheet at cssURL and the JSON document at jsonURL.
func (sp *Spec) HTML(cssURL, jsonURL string) ([]byte, error) {
	b, err := sp.build()
	if err != nil {
		return nil, err
	}
	v := pageView{Title: sp.Title, Version: sp.Version, CSS: cssURL, JSON: jsonURL, ErrorSchema: sp.ErrorSchema,
		Intro: strings.Split(sp.Description, "\n\n")}
	for _, h := range sp.Headers {
		v.Headers = append(v.Headers, rowView{Name: h.Name, In: "header", Type: typeOf(h.Schema),
			Constraints: constraints(h.Schema), Description: h.Description})
	}
	var all []ErrorDoc
	for _, t := range sp.Tags {
		tv := tagView{Name: t.Name, Description: t.Description}
		for _, o := range sp.Operations {
			if o.tag != t.Name {
				continue
			}
			ov := opView{ID: o.id, Method: o.method, Path: o.path, Summary: o.summary, Description: o.description,
				Success: respView{Status: o.status, Description: o.resultDesc, Type: typeOf(o.result),
					Table: answerTable(b.resolve(o.result)), Headers: headerViews(o.headers)}}
			if o.result != nil {
				ov.Success.Media = o.media
				for _, a := range o.alt {
					ov.Success.Alt = append(ov.Success.Alt, altView{Media: a.media, Description: a.s.description, Type: typeOf(a.s)})
				}
			}
			if o.head {
				ov.HeadID = o.id + "Head"
			}
			switch {
			case sp.Bearer == "":
			case o.public:
				ov.Access = "No token needed."
			case o.role != "":
				ov.Access = "Needs a token with role " + o.role + " or above."
				if o.tokenQuery != "" {
					ov.Access = "Needs a token with role " + o.role + " or above, in the Authorization header or as the " + o.tokenQuery + " query parameter."
				}
			}
			for _, p := range o.params() {
				ov.Params = append(ov.Params, rowView{Name: p.name, In: p.in, Type: typeOf(p.s), Required: p.required,
					Constraints: constraints(p.s), Description: p.description})
			}
			if o.body != "" {
				s := b.byName[o.body]
				ov.Body = &schemaView{Name: o.body, Description: s.description, Table: requestTable(s), Type: typeView{Ref: o.body}}
			}
			errs := o.errors(sp)
			ov.Errors = errorViews(errs)
			all = append(all, errs...)
			tv.Ops = append(tv.Ops, ov)
		}
		v.Tags = append(v.Tags, tv)
	}
	v.Errors = errorViews(append(all, sp.RouteErrors...))
	slices.SortStableFunc(v.Errors, func(a, b errorView) int {
		if a.Status != b.Status {
			return a.Status - b.Status
		}
		return strings.Compare(a.Code, b.Code)
	})
	for _, s := range b.schemas {
		t := answerTable(s.value)
		if s.value.closed {
			t = requestTable(s.value)
		}
		v.Schemas = append(v.Schemas, schemaView{Name: s.key, Description: s.value.description, Type: typeOf(s.value), Table: t})
	}
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
