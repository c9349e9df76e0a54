package api_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/api"
)

// One gateway_id claimed at once by a create, by PUTs renaming two other
// gateways to it, while its holder is deleted: every claim is its success
// status or 409 GATEWAY_ID_CONFLICT (detail on gateway_id), never a 500;
// afterwards at most one claim succeeded, and the live gateways holding
// the id are exactly the winners (never two). Would catch a unique violation from the UPDATE path
// not mapped to 409, or two live holders. (Checked by an
// audit, helper 8, whose test this is.)
func TestGatewayIDClaimsRacingTheHoldersDelete(t *testing.T) {
	e := newEnv(t, api.Options{})
	f := e.factory(e.org("O"), "F")
	for round := range 10 {
		gid := fmt.Sprintf("CLAIM-%d", round)
		holder := e.gateway(f, gid)["id"].(string)
		a := e.gateway(f, gid+"-a")["id"].(string)
		b := e.gateway(f, gid+"-b")["id"].(string)
		var wg sync.WaitGroup
		start := make(chan struct{})
		rs := make([]response, 4)
		wg.Go(func() { <-start; rs[0] = e.do("DELETE", "/api/gateways/"+holder, nil) })
		wg.Go(func() { <-start; rs[1] = e.do("PUT", "/api/gateways/"+a, map[string]any{"gateway_id": gid}) })
		wg.Go(func() {
			<-start
			rs[2] = e.do("PUT", "/api/gateways/"+b, map[string]any{"gateway_id": gid, "name": "b"})
		})
		wg.Go(func() {
			<-start
			rs[3] = e.do("POST", "/api/gateways", map[string]any{"factory_id": f, "gateway_id": gid, "name": "new",
				"url": "ws://127.0.0.1:9/gw", "email": "ops@example.com", "password": secret("pw-claim-Yy8")})
		})
		close(start)
		wg.Wait()
		require.Equal(t, 204, rs[0].status, "%s", rs[0].body)
		won := 0
		for i, r := range rs[1:] {
			ok := 200
			if i == 2 {
				ok = 201
			}
			switch r.status {
			case ok:
				won++
			case 409:
				code, fields := r.errorBody(t)
				assert.Equal(t, "GATEWAY_ID_CONFLICT", code)
				assert.Equal(t, []string{"gateway_id"}, fields)
			default:
				t.Fatalf("claim %d of %s: %d %s", i, gid, r.status, r.body)
			}
		}
		assert.LessOrEqual(t, won, 1, "two live gateways answered as holding %s", gid)
		list := e.do("GET", "/api/gateways?limit=100", nil).json(t)["data"].([]any)
		holders := 0
		for _, g := range list {
			if g.(map[string]any)["gateway_id"] == gid {
				holders++
			}
		}
		assert.Equal(t, won, holders, "live holders of %s", gid)
	}
}
