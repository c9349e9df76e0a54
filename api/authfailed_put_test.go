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
	sg := e.sim.Add("lockout", ctctest.Config{Email: "lockout@example.com", Password: "right-Pw7"})
	g := e.create("/api/gateways", map[string]any{"factory_id": e.factoryID, "gateway_id": "lockout", "name": "lockout",
		"url": sg.URL(), "email": "lockout@example.com", "password": secret("wrong-Pw7")})
	id := uuid.MustParse(g["id"].(string))
	e.waitState(id.String(), "AUTH_FAILED")
	e.h.WaitSettled(id, gatewayd.StateAuthFailed)
	refused := refusalStored(t, e, id)
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

// refusalStored says whether the gateway's refused login is kept for
// restarts.
func refusalStored(t *testing.T, e *liveEnv, id uuid.UUID) func() bool {
	return func() bool {
		m, err := e.h.Store.AuthFailures(context.Background())
		require.NoError(t, err)
		_, ok := m[id]
		return ok
	}
}

// (Found by an audit, helper 5, whose test this is.) updated_at is "kept by a trigger" (API.md §2) and
// moves with the resource's own data; the runtime's writes leave it alone
// (migration 001: "last_seen_at is written by the runtime, not by a user
// edit: a row whose only change is last_seen_at keeps its updated_at").
// Migration 008 added auth_failed_at / auth_failed_error, written by the
// runtime's batch writer when a gateway refuses the login, and the
// trigger ignored only last_seen_at until migration 009: a refused login,
// which no client made, moved the gateway's updated_at.
func TestRuntimeAuthFailureDoesNotMoveUpdatedAt(t *testing.T) {
	e := newLiveEnv(t, actorstest.FastConfig())
	ctx := context.Background()
	sg := e.sim.Add("upd", ctctest.Config{Email: "upd@example.com", Password: "right-Pw8"})
	g := e.create("/api/gateways", map[string]any{"factory_id": e.factoryID, "gateway_id": "upd", "name": "upd",
		"url": sg.URL(), "email": "upd@example.com", "password": secret("wrong-Pw8")})
	id := uuid.MustParse(g["id"].(string))
	created, err := e.h.Store.GetGateway(ctx, id)
	require.NoError(t, err)

	e.waitState(id.String(), "AUTH_FAILED")
	testutil.Eventually(t, refusalStored(t, e, id), 10*time.Second, "the refusal written by the runtime")

	after, err := e.h.Store.GetGateway(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, created.UpdatedAt.UTC(), after.UpdatedAt.UTC(), "no client changed the gateway, yet its updated_at moved")
	r := e.do("GET", "/api/gateways/"+id.String(), nil)
	require.Equal(t, 200, r.status)
	assert.Equal(t, g["updated_at"], r.json(t)["updated_at"])
}
