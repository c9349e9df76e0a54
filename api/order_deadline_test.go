package api_test

// (Found by an audit, helper 3, whose test this is.)

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/api"
	"github.com/ctcgw/gatewayd/ctc/ctctest"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// Requests on one gateway queue on its order lock (api/order.go) while
// another request on it holds the lock: here a create held between its
// commit and its message to the runtime, as a loaded scheduler holds it,
// or as a storm of requests on one gateway queues each behind the
// others. The database is idle and answers at once. The queued PUT and
// disconnect started their 5 s database deadline (here 300 ms) before
// they waited for the lock, found it spent when they got it, and were
// answered 503 SERVICE_UNAVAILABLE, which API.md keeps for a database
// that "cannot serve the request ... or did not answer in time"; CI saw
// storms of 40 requests on one gateway answer 503 after 4–5 s. (Found by
// an audit, helper 3.)
func TestRequestQueuedOnItsGatewayIsNotUnavailable(t *testing.T) {
	t.Parallel()
	const budget = 300 * time.Millisecond
	e, rt, target, created := heldCreateWith(t, "queued", func(h *actorstest.Harness) (string, string, string) {
		pw := secret("pw-queued-Jj4")
		sg := h.Sim.Add("queued", ctctest.Config{Email: "q@example.com", Password: pw})
		return sg.URL(), "q@example.com", pw
	}, api.Options{DBTimeout: budget})
	id := target.ID.String()
	put := make(chan response, 1)
	go func() { put <- e.do("PUT", "/api/gateways/"+id, map[string]any{"name": "renamed"}) }()
	disconnect := make(chan response, 1)
	go func() { disconnect <- e.do("POST", "/api/gateways/"+id+"/disconnect", nil) }()
	// Both wait behind the create (it holds the lock: one user, and one
	// each for them).
	testutil.Eventually(t, func() bool { return api.OrderUsers(e.app, target.ID) >= 3 }, 15*time.Second,
		"the PUT and the disconnect waiting for the create")
	// The wait itself is the scenario: behind the lock for longer than the
	// database budget, the database never asked.
	time.Sleep(2 * budget)
	close(rt.release)
	require.Equal(t, 201, (<-created).status)
	p, d := <-put, <-disconnect
	assert.Equal(t, 200, p.status, "PUT queued behind the create: %s", p.body)
	assert.Equal(t, 202, d.status, "disconnect queued behind the create: %s", d.body)
}
