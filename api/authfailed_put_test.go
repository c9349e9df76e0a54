package api_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/ctc/ctctest"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// (Found by an audit, helper 5, whose test this is.) A PUT that repeats desired_state CONNECTED on an
// AUTH_FAILED gateway is not a connect (API.md §4: only "a desired_state
// different from the stored one acts as connect or disconnect"), and the
// runtime rightly leaves the gateway AUTH_FAILED without a retry. But the
// store's UPDATE forgets the refusal kept for restarts (auth_failed_at),
// so the database and the runtime disagree: the next start of gatewayd
// tries the refused login again, which nobody asked for ("no retries
// until url/email/password change or a connect request"; README: a
// gateway that locks accounts after failed logins would count it).
func TestPutRepeatingDesiredConnectedKeepsTheRefusal(t *testing.T) {
	e := newLiveEnv(t, actorstest.FastConfig())
	ctx := context.Background()
	sg := e.sim.Add("lockout", ctctest.Config{Email: "lockout@example.com", Password: "right-Pw7"})
	g := e.create("/api/gateways", map[string]any{"factory_id": e.factoryID, "gateway_id": "lockout", "name": "lockout",
		"url": sg.URL(), "email": "lockout@example.com", "password": secret("wrong-Pw7")})
	id := uuid.MustParse(g["id"].(string))
	e.waitState(id.String(), "AUTH_FAILED")
	e.h.WaitSettled(id, gatewayd.StateAuthFailed)
	refused := func() bool {
		m, err := e.h.Store.AuthFailures(ctx)
		require.NoError(t, err)
		_, ok := m[id]
		return ok
	}
	testutil.Eventually(t, refused, 10*time.Second, "the refusal kept for restarts")

	r := e.do("PUT", "/api/gateways/"+id.String(), `{"desired_state":"CONNECTED"}`)
	require.Equal(t, 200, r.status, string(r.body))
	tried := sg.Stats().Accepted
	st := e.status(id.String())
	assert.Equal(t, "AUTH_FAILED", st["state"], "the stored desired_state did not change: no connect (API.md §4)")

	// The runtime keeps the refusal; the database must too.
	assert.True(t, refused(), "the database forgot the refusal the runtime still holds (auth_failed_at cleared by a PUT that did not reconnect)")

	// A restart is neither a connect request nor new credentials.
	e.h.Restart()
	e.h.WaitSettled(id, gatewayd.StateAuthFailed)
	assert.Equal(t, tried, sg.Stats().Accepted, "the restart tried the refused login again")
}
