package actors_test

// A password change racing a crash, and racing a fatal one. (Found by an
// audit, helper 3, whose tests these are.)

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/ctc/ctctest"
	"github.com/ctcgw/gatewayd/internal/testutil"
	"github.com/ctcgw/gatewayd/store"
)

// API.md §4: AUTH_FAILED — "no retries until url/email/password change or
// a connect request"; README: "New credentials or a new desired state
// forget a refusal". A gateway refused its login (wrong stored password).
// The operator PUTs the right password while its actor crashes (here the
// crash drill, standing in for any panic): the supervisor applies the PUT
// (clearing the remembered refusal, sending reconfigure) and only then
// handles the crash, which stores the AUTH_FAILED status as the one the
// restarted actor "goes on from". The new actor starts with the new
// password already, stays AUTH_FAILED without trying it, and the queued
// reconfigure then sees nothing changed: the new password is never used.
// Would catch: a crash that races a credential change leaving the gateway
// AUTH_FAILED with the new password untried.
func TestPasswordChangeRacingACrashIsTried(t *testing.T) {
	h := newHarness(t, actorstest.FastConfig())
	ctx := context.Background()
	g, sg := crashWhileFixingThePassword(t, h, "pw-race")

	var (
		st  gatewayd.Status
		err error
	)
	ok := testutil.Poll(func() bool {
		st, err = h.Runtime.Status(ctx, g.ID)
		return err == nil && st.State == gatewayd.StateAuthenticated && st.Restarts == 1
	}, 10*time.Second)
	assert.True(t, ok, "the new password is tried after the crash; last status %+v (err %v), last login %s",
		st, err, actorstest.LastLogin(sg))
}

// API.md §4: FAILED — "no retries until a connect request or a change";
// a PUT's "url, email or password different from the current one makes
// the actor reconnect with the new settings". Commit 403b90d made a
// connect or disconnect that dies in the mailbox of an actor crashing
// out stand; a password PUT in the same place (applied by the supervisor
// after the fatal crash was forwarded, its reconfigure dropped with the
// actor) did not: the gateway stayed FAILED, the new password untried,
// although the change came after the crash. Would catch: a change of
// credentials lost with a crashed-out actor.
func TestPasswordChangeRacingAFatalCrashStands(t *testing.T) {
	cfg := actorstest.FastConfig()
	cfg.RestartLimit = 0 // the first crash is one too many
	h := newHarness(t, cfg)
	ctx := context.Background()
	g, sg := crashWhileFixingThePassword(t, h, "pw-fatal")

	var (
		st  gatewayd.Status
		err error
	)
	ok := testutil.Poll(func() bool {
		st, err = h.Runtime.Status(ctx, g.ID)
		return err == nil && st.State == gatewayd.StateAuthenticated
	}, 10*time.Second)
	assert.True(t, ok, "the change made after the fatal crash stands; last status %+v (err %v, last_error %v), last login %s",
		st, err, st.LastError, actorstest.LastLogin(sg))
	assert.Equal(t, 1, sg.Stats().Open, "one live connection")
}

// crashWhileFixingThePassword registers a gateway under a wrong password,
// waits for its refusal to settle, then stores the right one and puts a
// crash and the update into the supervisor's mailbox back to back.
func crashWhileFixingThePassword(t *testing.T, h *actorstest.Harness, name string) (gatewayd.Gateway, *ctctest.Gateway) {
	t.Helper()
	ctx := context.Background()
	email := "e@example.com"
	sg := h.Sim.Add(name, ctctest.Config{Email: email, Password: "right"})
	g, err := h.Store.CreateGateway(ctx, store.NewGateway{FactoryID: h.Factory, GatewayID: name, Name: name,
		URL: sg.URL(), Email: email, Password: "wrong"})
	require.NoError(t, err)
	h.Runtime.GatewayStarted(g.Target("wrong"))
	h.WaitState(g.ID, gatewayd.StateAuthFailed, 10*time.Second)
	h.WaitSettled(g.ID, gatewayd.StateAuthFailed)

	up, err := h.Store.UpdateGateway(ctx, g.ID, store.GatewayPatch{Password: store.Some("right")})
	require.NoError(t, err)
	actors.CrashThenUpdate(h.Runtime, up.Target)
	return g, sg
}
