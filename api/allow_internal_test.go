package api

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Every route's method is in the Allow list of a path it serves: no
// pattern is shadowed by an earlier one, and the list is each pattern's
// own.
func TestEveryRouteIsInItsAllowList(t *testing.T) {
	table := (&server{opts: Options{ChaosEnabled: true}}).routeTable()
	allow := newAllowTable(table)
	for _, r := range table {
		path := strings.ReplaceAll(r.path, "*", "app/main.js")
		segs := strings.Split(path, "/")
		for i, s := range segs {
			if strings.HasPrefix(s, ":") {
				segs[i] = "0b0e5c1e-7c0e-4d5e-9a7a-4a3f0e8c9b11"
			}
		}
		got := allow.lookup(strings.Join(segs, "/"))
		assert.Contains(t, strings.Split(got, ", "), r.method, "%s %s: Allow %q", r.method, r.path, got)
		if r.method == "GET" && r.path != "/api/events" {
			assert.Contains(t, strings.Split(got, ", "), "HEAD", "%s: Allow %q", r.path, got)
		}
	}
	assert.Equal(t, "GET, HEAD", allow.lookup("/api/gateways/status"), "the status list is not a gateway id")
	assert.Equal(t, "GET, HEAD, PUT, DELETE", allow.lookup("/api/gateways/anything"))
	assert.Equal(t, "GET, HEAD", allow.lookup("/ui"), "the web UI's prefix")
	assert.Equal(t, "GET, HEAD", allow.lookup("/"))
	for _, p := range []string{"/api/nothing", "/api/gateways/a/b", "/api/gateways//status", "/nowhere", "/api/events/x"} {
		assert.Empty(t, allow.lookup(p), p)
	}
}
