package api

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/valyala/fasthttp"
)

// Starting answers on the API's port while `gatewayd serve` starts (waits
// for the database, migrates, loads), before the routes exist: health is
// liveness and says 200 (the contract keeps it 200 while the database is
// down), ready and every other route 503 SERVICE_UNAVAILABLE with a
// Retry-After. Without it a client's connection was accepted by the
// kernel and then hung, for up to the 30 s the process waits for its
// database, which a liveness probe took for a dead process. databaseUp
// says what health reports for the database; started is the uptime's
// origin. Every answer closes its connection, so no client is left on a
// connection of this handler when the API proper takes over the port.
func Starting(started time.Time, databaseUp func() bool) fasthttp.RequestHandler {
	unavailable, _ := json.Marshal(map[string]*Error{"error": {Status: http.StatusServiceUnavailable,
		Code: "SERVICE_UNAVAILABLE", Message: "gatewayd is starting"}})
	return func(c *fasthttp.RequestCtx) {
		c.SetConnectionClose()
		c.SetContentType("application/json")
		get := c.IsGet() || c.IsHead()
		if get && string(c.Path()) == "/api/health" {
			db := "ok"
			if !databaseUp() {
				db = "unreachable"
			}
			body, _ := json.Marshal(healthOf(db, 0, 0, started))
			c.SetBody(body)
			return
		}
		c.SetStatusCode(http.StatusServiceUnavailable)
		c.Response.Header.Set("Retry-After", "1")
		c.SetBody(unavailable)
	}
}
