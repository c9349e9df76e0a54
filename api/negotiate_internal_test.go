package api

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestWantsCSV(t *testing.T) {
	for accept, want := range map[string]bool{
		"":                                  false,
		"*/*":                               false,
		"application/json":                  false,
		"text/csv":                          true,
		"TEXT/CSV":                          true,
		"text/csv; charset=utf-8":           true,
		"text/csv;header=present":           true,
		" text/csv ; q=0.5":                 true,
		"text/csv;q=0":                      false,
		"text/csv;q=oops":                   false,
		"text/*":                            true,
		"text/csv, application/json":        true, // a tie: the first listed
		"application/json, text/csv":        false,
		"application/json;q=0.5, text/csv":  true,
		"text/csv;q=0.5, application/json":  false,
		"text/csv;q=0.9, */*;q=0.8":         true,
		"*/*, text/csv;q=0.1":               false, // JSON by */* at 1
		"text/*, application/json":          false, // the more specific range on a tie
		"image/png":                         false,
		"text/csv;q=0.5, text/csv;q=1":      true,
		"application/*;q=0.2, text/csv;q=1": true,
	} {
		assert.Equal(t, want, wantsCSV(accept), "Accept: %q", accept)
	}
}
