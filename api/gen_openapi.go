//go:build ignore

// gen_openapi writes api/openapi.json from the spec in openapi_spec.go.
// Run it with `go generate ./api`.
package main

import (
	"log"
	"os"

	"github.com/ctcgw/gatewayd/api"
)

func main() {
	doc, err := api.OpenAPI()
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile("openapi.json", doc, 0o644); err != nil {
		log.Fatal(err)
	}
}
