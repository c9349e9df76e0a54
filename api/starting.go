package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// Starting answers on the API's port while `gatewayd serve` starts (waits
// for the database, migrates, waits for the instance lock, loads), before
// the routes exist: health is liveness and says 200 (the contract keeps it
// 200 while the database is down), ready and every other route 503
// SERVICE_UNAVAILABLE with a Retry-After and why. Without it a client's
// connection was accepted by the kernel and then hung, for up to the 30 s
// the process waits for its database, which a liveness probe took for a
// dead process. state says whether the database is connected and what
// the start waits for; started is the uptime's origin. Every answer
// closes its connection, so no client is left on a connection of this
// handler when the API proper takes over the port.
func Starting(started time.Time, state func() (databaseUp bool, waitingFor string)) fasthttp.RequestHandler {
	return func(c *fasthttp.RequestCtx) {
		c.SetConnectionClose()
		c.SetContentType("application/json")
		up, why := state()
		// Routed as the API routes it: case-insensitive, a trailing slash
		// allowed.
		if (c.IsGet() || c.IsHead()) && strings.EqualFold(strings.TrimSuffix(string(c.Path()), "/"), "/api/health") {
			db := "ok"
			if !up {
				db = "unreachable"
			}
			body, _ := json.Marshal(healthOf(db, 0, 0, started))
			c.SetBody(body)
			return
		}
		body, _ := json.Marshal(map[string]*Error{"error": {Status: http.StatusServiceUnavailable,
			Code: "SERVICE_UNAVAILABLE", Message: "gatewayd is starting: " + why}})
		c.SetStatusCode(http.StatusServiceUnavailable)
		c.Response.Header.Set("Retry-After", "1")
		c.SetBody(body)
	}
}
