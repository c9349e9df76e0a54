package api

//go:generate go run gen_openapi.go

import (
	"bytes"
	"sync"

	"github.com/gofiber/fiber/v2"

	oa "github.com/ctcgw/gatewayd/api/openapi"
)

// The OpenAPI document and the docs page are made once from apiSpec
// (openapi_spec.go); a test checks the spec against the routes the app
// registers, and the committed api/openapi.json against the document.
// (Built in functions, not in package variables' initializers: the spec
// reads the route table, whose handlers serve these.)
var (
	openAPIOnce, docsOnce   sync.Once
	openAPIBytes, docsBytes []byte
	openAPIErr, docsErr     error
)

func openAPIDoc() ([]byte, error) {
	openAPIOnce.Do(func() { openAPIBytes, openAPIErr = apiSpec().JSON() })
	return openAPIBytes, openAPIErr
}

func docsPage() ([]byte, error) {
	docsOnce.Do(func() { docsBytes, docsErr = apiSpec().HTML(docsCSSPath, "/api/openapi.json") })
	return docsBytes, docsErr
}

// OpenAPI returns the OpenAPI 3.1 document served at GET /api/openapi.json;
// `go generate ./api` writes it to api/openapi.json.
func OpenAPI() ([]byte, error) {
	doc, err := openAPIDoc()
	return bytes.Clone(doc), err
}

func openAPI(c *fiber.Ctx) error {
	doc, err := openAPIDoc()
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(doc)
}

const (
	docsCSSPath = "/api/docs/docs.css"
	// docsCSP lets the docs page load its own stylesheet and nothing else:
	// no script at all, no inline style, no frames, no forms.
	docsCSP = "default-src 'none'; style-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

// apiDocs serves the docs page, a static page made when the app is built.
// apiDocs serves the docs page (built on first use: the spec reads the
// route table, which holds this handler).
func apiDocs(c *fiber.Ctx) error {
	page, err := docsPage()
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	c.Set(fiber.HeaderContentSecurityPolicy, docsCSP)
	return c.Send(page)
}

func apiDocsCSS(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, "text/css; charset=utf-8")
	return c.Send(oa.Stylesheet)
}
