package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/ctcgw/gatewayd/api"
)

// (Checked by an audit, helper 4, whose test this is.) README ("Requests refused before
// routing"; framingConflict: RFC 9112 §6.3, "answer 400 and close the
// connection"): a head whose body length a proxy in front might read
// otherwise is 400 and its connection closed, so that nothing after it is
// served as a request of its own. Each variant below is a spelling of
// Content-Length or Transfer-Encoding that some HTTP parser reads as the
// header and another does not; the trailer and chunk-size rows bound what
// a chunked body's framing may cost. Would catch: any of them answered
// and the connection kept (the bytes after them served: request
// smuggling), or a trailer section that grows without bound.
func TestFramingSpellingsAreRefusedAndClosed(t *testing.T) {
	e := newEnv(t, api.Options{})
	addr := e.serve()
	body := `{"name":"a"}`
	smuggled := "GET /api/health HTTP/1.1\r\nHost: t\r\nX-Request-Id: smuggled-4\r\n\r\n"
	for name, head := range map[string]string{
		"TE space before colon":        "Transfer-Encoding : chunked\r\n",
		"CL space before colon":        "Content-Length : 12\r\n",
		"TE tab before value":          "Transfer-Encoding:\tchunked\r\n",
		"TE folded":                    "Transfer-Encoding:\r\n chunked\r\n",
		"CL folded":                    "Content-Length:\r\n 12\r\n",
		"CL with a sign":               "Content-Length: +12\r\n",
		"CL list":                      "Content-Length: 12, 12\r\n",
		"TE xchunked":                  "Transfer-Encoding: xchunked\r\n",
		"TE chunked twice":             "Transfer-Encoding: chunked, chunked\r\n",
		"TE vertical tab":              "Transfer-Encoding:\x0bchunked\r\n",
		"TE CR in value":               "Transfer-Encoding: chun\rked\r\n",
		"TE line starting with space":  " Transfer-Encoding: chunked\r\n",
		"CL negative":                  "Content-Length: -12\r\n",
		"TE and CL":                    "Transfer-Encoding: chunked\r\nContent-Length: 12\r\n",
		"two CL":                       "Content-Length: 12\r\nContent-Length: 13\r\n",
		"TE identity (fasthttp: none)": "Transfer-Encoding: identity\r\n",
	} {
		req := "POST /api/organizations HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n" + head + "\r\n"
		r := exchange(t, addr, req+body+smuggled, 5*time.Second)
		assert.Equal(t, http.StatusBadRequest, r.status, "%s: %s", name, r.body)
		assert.True(t, r.closed, "%s: the connection is closed", name)
	}
	chunked := "POST /api/organizations HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
	r := exchange(t, addr, chunked+"c\r\n"+body+"\r\n0\r\n"+strings.Repeat("X-A: b\r\n", 20_000)+"\r\n", 10*time.Second)
	assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, r.status, "a trailer section of 160 KB: %s", r.body)
	assert.True(t, r.closed)
	r = exchange(t, addr, chunked+strings.Repeat("0", 5000)+"c\r\n"+body+"\r\n0\r\n\r\n", 10*time.Second)
	assert.Equal(t, http.StatusBadRequest, r.status, "a chunk size of 5,000 digits: %s", r.body)
	assert.True(t, r.closed)
	assert.Empty(t, e.accessLines("smuggled-4"), "nothing after a refused head is served")
}
