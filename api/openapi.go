package api

//go:generate go run gen_openapi.go

import (
	"bytes"
	"sync"

	"github.com/gofiber/fiber/v2"
)

// The OpenAPI document is made once from apiSpec (openapi_spec.go); a
// test checks the spec against the routes the app registers, and the
// committed api/openapi.json against the document.
var openAPIDoc = sync.OnceValues(func() ([]byte, error) { return apiSpec().JSON() })

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
