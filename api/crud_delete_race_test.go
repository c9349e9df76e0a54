package api_test

// Races between writes
// of one resource and deletes of it or of its parent, through the API over
// the real runtime and PostgreSQL. Each would catch: a 500 (or any status
// outside the contract's) for a request that lost a race, an active row
// under a deleted parent (an orphan), or a gateway the runtime still runs
// (or lists) after its deletion was answered. (Checked by an audit,
// helper 8, whose tests these are.)

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/actors/actorstest"
)

// orphans counts active rows whose parent is deleted, at every level.
func (e *liveEnv) orphans(t *testing.T) int {
	t.Helper()
	var n int
	err := e.h.Pool.QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM gateways g JOIN factories f ON f.id = g.factory_id WHERE g.deleted_at IS NULL AND f.deleted_at IS NOT NULL) +
		(SELECT count(*) FROM factories f JOIN organizations o ON o.id = f.organization_id WHERE f.deleted_at IS NULL AND o.deleted_at IS NOT NULL) +
		(SELECT count(*) FROM equipment q JOIN factories f ON f.id = q.factory_id WHERE q.deleted_at IS NULL AND f.deleted_at IS NOT NULL)`).Scan(&n)
	require.NoError(t, err)
	return n
}

// runtimeIDs is every gateway id the runtime lists (GET /api/gateways/status).
func (e *liveEnv) runtimeIDs(t *testing.T) map[string]bool {
	t.Helper()
	r := e.do("GET", "/api/gateways/status", nil)
	require.Equal(t, 200, r.status, "%s", r.body)
	out := map[string]bool{}
	for _, s := range r.json(t)["data"].([]any) {
		out[s.(map[string]any)["id"].(string)] = true
	}
	return out
}

func errCode(t *testing.T, r response) string {
	t.Helper()
	code, _ := r.errorBody(t)
	return code
}

// Gateways created while their factory is deleted: each create is 201 or
// 422 INVALID_REFERENCE (factory_id), the delete 204; afterwards no active
// gateway sits in the deleted factory, and the runtime runs none of them.
func TestFactoryDeleteRacingGatewayCreates(t *testing.T) {
	e := newLiveEnv(t, actorstest.FastConfig())
	org := e.org("Race")
	for round := range 6 {
		f := e.factory(org, fmt.Sprintf("F%d", round))
		const n = 12
		var wg sync.WaitGroup
		start := make(chan struct{})
		created := make([]response, n)
		for i := range n {
			wg.Go(func() {
				<-start
				created[i] = e.do("POST", "/api/gateways", map[string]any{"factory_id": f,
					"gateway_id": fmt.Sprintf("r%d-%d", round, i), "name": "n", "url": "ws://127.0.0.1:1/gw",
					"email": "a@example.com", "password": secret("pw-race-Qq7")})
			})
		}
		var del response
		wg.Go(func() {
			<-start
			del = e.do("DELETE", "/api/factories/"+f, nil)
		})
		close(start)
		wg.Wait()
		require.Equal(t, 204, del.status, "%s", del.body)
		var ok []string
		for _, r := range created {
			switch r.status {
			case 201:
				ok = append(ok, r.json(t)["id"].(string))
			case 422:
				code, fields := r.errorBody(t)
				assert.Equal(t, "INVALID_REFERENCE", code)
				assert.Equal(t, []string{"factory_id"}, fields)
			default:
				t.Fatalf("create racing its factory's delete: %d %s", r.status, r.body)
			}
		}
		require.Zero(t, e.orphans(t), "active rows under deleted parents")
		running := e.runtimeIDs(t)
		for _, id := range ok {
			assert.False(t, running[id], "gateway %s of a deleted factory still in the runtime", id)
			assert.Equal(t, 404, e.do("GET", "/api/gateways/"+id, nil).status)
			assert.Equal(t, 404, e.do("GET", "/api/gateways/"+id+"/status", nil).status)
		}
	}
}

// PUTs (a rename, a new url with its password, a desired_state) and
// connect/disconnect racing DELETE of the same gateway: each is its success
// status or 404 GATEWAY_NOT_FOUND, never a 500; afterwards the gateway is
// gone from the store and from the runtime.
func TestGatewayWritesRacingItsDelete(t *testing.T) {
	e := newLiveEnv(t, actorstest.FastConfig())
	const n = 20
	ids := make([]string, n)
	for i := range ids {
		ids[i] = e.create("/api/gateways", map[string]any{"factory_id": e.factoryID, "gateway_id": fmt.Sprintf("pd-%d", i),
			"name": "n", "url": "ws://127.0.0.1:1/gw", "email": "a@example.com", "password": secret("pw-pd-Ww3")})["id"].(string)
	}
	type req struct {
		method, path string
		body         any
		ok           int
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var bad []string
	for i, id := range ids {
		reqs := []req{
			{"PUT", "/api/gateways/" + id, map[string]any{"name": fmt.Sprintf("renamed-%d", i)}, 200},
			{"PUT", "/api/gateways/" + id, map[string]any{"url": "ws://127.0.0.1:2/gw", "password": secret("pw-moved-Ee4")}, 200},
			{"PUT", "/api/gateways/" + id, map[string]any{"desired_state": "DISCONNECTED"}, 200},
			{"POST", "/api/gateways/" + id + "/connect", nil, 202},
			{"POST", "/api/gateways/" + id + "/disconnect", nil, 202},
			{"DELETE", "/api/gateways/" + id, nil, 204},
		}
		start := make(chan struct{})
		for _, q := range reqs {
			wg.Go(func() {
				<-start
				r := e.do(q.method, q.path, q.body)
				if r.status == q.ok || (q.method != "DELETE" && r.status == 404 && errCode(t, r) == "GATEWAY_NOT_FOUND") {
					return
				}
				mu.Lock()
				bad = append(bad, fmt.Sprintf("%s %s: %d %s", q.method, q.path, r.status, r.body))
				mu.Unlock()
			})
		}
		close(start)
	}
	wg.Wait()
	require.Empty(t, bad)
	running := e.runtimeIDs(t)
	for _, id := range ids {
		assert.False(t, running[id], "deleted gateway %s still in the runtime", id)
		assert.Equal(t, 404, e.do("GET", "/api/gateways/"+id+"/status", nil).status)
	}
	var active int
	require.NoError(t, e.h.Pool.QueryRow(context.Background(), `SELECT count(*) FROM gateways WHERE deleted_at IS NULL`).Scan(&active))
	assert.Zero(t, active)
	// The runtime stays empty: no late message put one back.
	assert.Empty(t, e.runtimeIDs(t))
}

// Factory PUTs racing the factory's DELETE, and factory creates racing
// their organization's DELETE: 200/201, or 404 FACTORY_NOT_FOUND / 422
// INVALID_REFERENCE, never a 500; no active factory in a deleted
// organization, no gateway in a deleted factory.
func TestFactoryWritesRacingDeletes(t *testing.T) {
	e := newLiveEnv(t, actorstest.FastConfig())
	for round := range 5 {
		org := e.org(fmt.Sprintf("O%d", round))
		fs := make([]string, 4)
		for i := range fs {
			fs[i] = e.factory(org, fmt.Sprintf("F%d", i))
		}
		// one gateway per factory, so the cascade has something to stop
		for i, f := range fs {
			e.create("/api/gateways", map[string]any{"factory_id": f, "gateway_id": fmt.Sprintf("fw-%d-%d", round, i),
				"name": "n", "url": "ws://127.0.0.1:1/gw", "email": "a@example.com", "password": secret("pw-fw-Rr5")})
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		var bad []string
		check := func(what string, r response, ok int, alt int, altCode string) {
			if r.status == ok || (r.status == alt && errCode(t, r) == altCode) {
				return
			}
			mu.Lock()
			bad = append(bad, fmt.Sprintf("%s: %d %s", what, r.status, r.body))
			mu.Unlock()
		}
		start := make(chan struct{})
		for i, f := range fs {
			wg.Go(func() {
				<-start
				check("PUT factory", e.do("PUT", "/api/factories/"+f, map[string]any{"name": fmt.Sprintf("x%d", i), "location": nil,
					"timezone": "Europe/Berlin", "metadata": map[string]any{"k": i}}), 200, 404, "FACTORY_NOT_FOUND")
			})
			wg.Go(func() {
				<-start
				check("POST factory", e.do("POST", "/api/factories", map[string]any{"organization_id": org, "name": "late"}),
					201, 422, "INVALID_REFERENCE")
			})
			wg.Go(func() {
				<-start
				check("POST equipment", e.do("POST", "/api/equipment", map[string]any{"factory_id": f, "name": "eq"}),
					201, 422, "INVALID_REFERENCE")
			})
			wg.Go(func() {
				<-start
				check("POST gateway", e.do("POST", "/api/gateways", map[string]any{"factory_id": f,
					"gateway_id": fmt.Sprintf("fw-late-%d-%d", round, i), "name": "n", "url": "ws://127.0.0.1:1/gw",
					"email": "a@example.com", "password": secret("pw-fw-Rr5")}), 201, 422, "INVALID_REFERENCE")
			})
		}
		wg.Go(func() {
			<-start
			check("DELETE factory", e.do("DELETE", "/api/factories/"+fs[0], nil), 204, 404, "FACTORY_NOT_FOUND")
		})
		wg.Go(func() {
			<-start
			check("DELETE org", e.do("DELETE", "/api/organizations/"+org, nil), 204, 404, "ORGANIZATION_NOT_FOUND")
		})
		close(start)
		wg.Wait()
		require.Empty(t, bad)
		require.Zero(t, e.orphans(t), "active rows under deleted parents")
		// Every gateway of this round is gone from the runtime.
		var live int
		require.NoError(t, e.h.Pool.QueryRow(context.Background(),
			`SELECT count(*) FROM gateways WHERE deleted_at IS NULL AND gateway_id LIKE $1`, fmt.Sprintf("fw-%%%d-%%", round)).Scan(&live))
		assert.Zero(t, live)
	}
	assert.Len(t, e.runtimeIDs(t), 0, "the runtime runs no gateway of a deleted organization")
}
