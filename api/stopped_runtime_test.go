package api_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/actors/actorstest"
)

// API.md / README: a 500 is a bug ("causes of 500s are logged ... never
// sent" is for the unexpected). A request that reaches the runtime after
// it has stopped (serve stops it once the HTTP shutdown has run out of
// time, with requests still running; a test's cleanup does it under a
// request too) was answered 500 INTERNAL_ERROR, its cause Proto.Actor's
// dead letter, unknown to toError. It is the runtime not answering: 503
// SERVICE_UNAVAILABLE, as when it answers too late (and not the discovery's
// 504: the gateway is not the one that did not answer). Seen in TestChaosIsolation under load
// (helper 5): its last status poll ran after the test had failed. (Found
// by an audit, helper 5, whose test this is.)
func TestARequestToAStoppedRuntimeIsNo500(t *testing.T) {
	e := newLiveEnv(t, actorstest.FastConfig())
	id, _ := e.add("stopped")
	e.waitState(id, "AUTHENTICATED")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, e.runtime.Shutdown(ctx))
	for _, path := range []string{"/api/gateways/" + id + "/status", "/api/gateways/status"} {
		r := e.do("GET", path, nil)
		assert.Equal(t, 503, r.status, "%s: %s", path, r.body)
	}
	for _, path := range []string{"/api/gateways/" + id + "/connect", "/api/gateways/" + id + "/sensors/discover"} {
		r := e.do("POST", path, nil)
		assert.Equal(t, 503, r.status, "%s: %s", path, r.body)
	}
}
