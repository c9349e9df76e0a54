package api_test

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/api"
)

// API.md §3: a request body is at most 1 MiB. Fiber's Body() inflated a
// gzip or deflate body after the limit had counted the bytes on the wire:
// 10 KB of gzip stored a 10 MiB row. A coded body is now 415, and nothing
// is stored. (Found by an audit, helper 2.)
func TestCompressedBodiesAreRefused(t *testing.T) {
	e := newEnv(t, api.Options{})
	body := `{"name":"gz","metadata":{"k":"` + strings.Repeat("a", 2<<20) + `"}}`
	compress := map[string]func(io.Writer) io.WriteCloser{
		"gzip":    func(w io.Writer) io.WriteCloser { return gzip.NewWriter(w) },
		"deflate": func(w io.Writer) io.WriteCloser { z, _ := flate.NewWriter(w, flate.BestCompression); return z },
		"GZIP":    func(w io.Writer) io.WriteCloser { return gzip.NewWriter(w) },
		"br":      func(w io.Writer) io.WriteCloser { return nopCloser{w} }, // not brotli, but refused before any decoding
	}
	for coding, newWriter := range compress {
		var wire bytes.Buffer
		w := newWriter(&wire)
		plain := body
		if coding == "br" {
			plain = `{"name":"gz"}`
		}
		_, err := w.Write([]byte(plain))
		require.NoError(t, err)
		require.NoError(t, w.Close())
		if coding != "br" {
			require.Less(t, wire.Len(), 1<<20, "the wire body is under the limit")
		}
		req := httptest.NewRequest("POST", "/api/organizations", bytes.NewReader(wire.Bytes()))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Content-Encoding", coding)
		r := e.send(req)
		require.Equal(t, 415, r.status, "%s: %.200s", coding, r.body)
		code, _ := r.errorBody(t)
		assert.Equal(t, "UNSUPPORTED_MEDIA_TYPE", code, coding)
		assert.Contains(t, string(r.body), "Content-Encoding", coding)
	}
	list := e.do("GET", "/api/organizations?limit=100", nil)
	require.Equal(t, 200, list.status)
	assert.NotContains(t, string(list.body), `"name":"gz"`, "nothing stored")

	// identity is no coding; a request without a body may say anything.
	req := httptest.NewRequest("POST", "/api/organizations", strings.NewReader(`{"name":"plain"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "identity")
	assert.Equal(t, 201, e.send(req).status)
	req = httptest.NewRequest("GET", "/api/organizations", nil)
	req.Header.Set("Content-Encoding", "gzip")
	assert.Equal(t, 200, e.send(req).status)
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
