package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/api"
)

// Concurrent creates through the API, which the store may write with one
// shared statement, each answer with their own gateway and tell the
// runtime of it once; of two creates with the same gateway_id, one is 201
// and the other 409 GATEWAY_ID_CONFLICT, as one after the other.
func TestConcurrentCreatesAnswerEachTheirOwn(t *testing.T) {
	e := newEnv(t, api.Options{})
	f := e.factory(e.org("O"), "F")
	const distinct = 32
	type result struct {
		status int
		body   map[string]any
		err    error
	}
	gids := make([]string, distinct+2)
	for i := range gids {
		gids[i] = fmt.Sprintf("GW-%d", i)
	}
	gids[distinct], gids[distinct+1] = "GW-twice", "GW-twice"
	results := make([]result, len(gids))
	var wg sync.WaitGroup
	for i, gid := range gids {
		raw, err := json.Marshal(map[string]any{"factory_id": f, "gateway_id": gid, "name": fmt.Sprintf("N%d", i),
			"url": "ws://x.example", "email": "a@example.com", "password": secret(fmt.Sprintf("pw-%d-secret", i))})
		require.NoError(t, err)
		wg.Go(func() {
			req := httptest.NewRequest("POST", "/api/gateways", bytes.NewReader(raw))
			req.Header.Set("Content-Type", "application/json")
			resp, err := e.app.Test(req, -1)
			if err != nil {
				results[i].err = err
				return
			}
			defer resp.Body.Close()
			results[i].status = resp.StatusCode
			results[i].err = json.NewDecoder(resp.Body).Decode(&results[i].body)
		})
	}
	wg.Wait()

	ids := map[string]bool{}
	for i, r := range results[:distinct] {
		require.NoError(t, r.err)
		require.Equal(t, 201, r.status, "%v", r.body)
		assert.Equal(t, gids[i], r.body["gateway_id"])
		assert.Equal(t, fmt.Sprintf("N%d", i), r.body["name"])
		ids[r.body["id"].(string)] = true
	}
	assert.Len(t, ids, distinct, "every gateway its own id")
	twice := []int{results[distinct].status, results[distinct+1].status}
	assert.ElementsMatch(t, []int{201, 409}, twice)
	for _, r := range results[distinct:] {
		if r.status == 409 {
			assert.Equal(t, "GATEWAY_ID_CONFLICT", r.body["error"].(map[string]any)["code"])
		}
	}
	e.rt.mu.Lock()
	defer e.rt.mu.Unlock()
	require.Len(t, e.rt.started, distinct+1, "the runtime hears of each created gateway once")
	for _, target := range e.rt.started {
		assert.NotEmpty(t, target.Password, "its password, unsealed")
	}
}
