package api

import (
	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
)

// OrderUsers is how many requests hold or wait for gateway id's order
// lock (order.go).
func OrderUsers(a *App, id uuid.UUID) int {
	o := &a.srv.order
	o.mu.Lock()
	defer o.mu.Unlock()
	if l := o.locks[id]; l != nil {
		return l.users
	}
	return 0
}

// PlainDecimalLen is plainDecimalLen, for the tests of package api_test.
var PlainDecimalLen = plainDecimalLen

// RouteAccess is routes.go's table for the tests: "METHOD /path" → "public",
// "viewer", "operator" or "admin".
func RouteAccess(opts Options) map[string]string {
	out := map[string]string{}
	for _, r := range (&server{opts: opts}).routeTable() {
		need := string(r.need.role)
		if r.need.public {
			need = "public"
		}
		out[r.method+" "+r.path] = need
	}
	return out
}

// ClientConnections is a copy of the per-client open-connection counts
// (clients.go), for the tests: empty once every connection closed.
func ClientConnections(a *App) map[string]int {
	cc := a.clients
	cc.mu.Lock()
	defer cc.mu.Unlock()
	out := make(map[string]int, len(cc.open))
	for k, v := range cc.open {
		out[k] = v
	}
	return out
}

// Refusing is how many refusals wait for their request now (clients.go).
func Refusing(a *App) int { return a.clients.refusing() }

// HoldOrder takes gateway id's order lock, as a change between its
// commit and its announcement holds it, and returns its release.
func HoldOrder(a *App, id uuid.UUID) (release func()) { return a.srv.order.lock(id) }

// ListBuilders is how many of client's lists are being built or wait for
// a turn (answers.go, listTurns).
func ListBuilders(a *App, client string) int {
	n := 0
	for _, t := range []*turns{&a.srv.lists.turns, &a.srv.lists.others} {
		t.tmu.Lock()
		if own := t.clients[client]; own != nil {
			n += own.users
		}
		t.tmu.Unlock()
	}
	return n
}

// Listed is a handler wrapped as the app wraps the handlers of lists.
func Listed(a *App, h func(*fiber.Ctx) error) func(*fiber.Ctx) error { return a.srv.listed(h) }
