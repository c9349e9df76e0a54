package actors_test

// (Found by an audit, helper 13, whose test this is.) After a supervisor restart the fresh read brings the
// gateways back, but the stored refusals (AuthFailures) are read only by
// the first load, so a refused gateway is dialed again with the refused
// credentials.

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/ctc/ctctest"
)

// refusedAndKept makes the simulated gateway refuse logins, drops its
// socket, and waits until the gateway is AUTH_FAILED and its refusal is
// stored (kept across restarts, migration 008).
func refusedAndKept(t *testing.T, h *actorstest.Harness, id uuid.UUID, sg *ctctest.Gateway) {
	t.Helper()
	sg.SetFaults(ctctest.Faults{RefuseLogins: true})
	sg.Drop(websocket.CloseGoingAway)
	h.WaitState(id, gatewayd.StateAuthFailed, 10*time.Second)
	eventually(t, func() bool {
		m, err := h.Store.AuthFailures(context.Background())
		require.NoError(t, err)
		_, ok := m[id]
		return ok
	}, 10*time.Second, "the refusal stored")
}

// API.md §4 states: "AUTH_FAILED | the gateway refused the credentials; no
// retries until url/email/password change or a connect request". README
// keeps a refusal across a restart of gatewayd and of an actor; a restart of
// the supervisor (which a crash in it causes) starts every gateway anew
// from a fresh read, without the stored refusals, and the refused gateway
// logs in again with the same credentials.
func TestAuthFailedOutlivesASupervisorRestart(t *testing.T) {
	h := newHarness(t, actorstest.FastConfig())
	ctx := context.Background()
	g, sg := h.Add("sup-refused")
	other, _ := h.Add("sup-fine")
	h.WaitState(g.ID, gatewayd.StateAuthenticated, 10*time.Second)
	h.WaitState(other.ID, gatewayd.StateAuthenticated, 10*time.Second)
	refusedAndKept(t, h, g.ID, sg)
	h.WaitSettled(g.ID, gatewayd.StateAuthFailed)
	tried, refused := sg.Stats().Accepted, sg.Stats().LoginsRefused

	actors.PanicSupervisor(h.Runtime)
	// Both back (the other gateway re-dials and logs in: the restart's
	// fresh read has been applied).
	eventually(t, func() bool {
		st, err := h.Runtime.Status(ctx, other.ID)
		return err == nil && st.State == gatewayd.StateAuthenticated && st.Restarts == 0 &&
			func() bool { s, err := h.Runtime.Status(ctx, g.ID); return err == nil && s.State != "" }()
	}, 15*time.Second, "gateways back after the supervisor restart")
	h.WaitSettled(g.ID, gatewayd.StateAuthFailed)
	st := h.Status(g.ID)
	assert.Equal(t, gatewayd.StateAuthFailed, st.State)
	assert.Equal(t, tried, sg.Stats().Accepted, "a refused gateway was dialed again after a supervisor restart")
	assert.Equal(t, refused, sg.Stats().LoginsRefused, "the refused credentials were tried again after a supervisor restart")
}
