package actors_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/ctc/ctctest"
	"github.com/ctcgw/gatewayd/internal/testutil"
	"github.com/ctcgw/gatewayd/store"
)

// README: "A gateway whose stored password cannot be decrypted (wrong
// ENCRYPTION_KEY) is FAILED with a last_error that says so ...; setting
// its password again revives it", and "New credentials, a connect request
// or a change of desired_state to CONNECTED forget [AUTH_FAILED]"; API.md
// §4: AUTH_FAILED "no retries until url/email/password change". README,
// Quick start: `make demo` "sets their credentials again, which re-seals
// them with the current .env key" (after a lost .env).
//
// A gateway whose refusal was kept (migration 008) and whose password no
// configured key opens starts FAILED; the supervisor kept the refusal as
// the status its first actor would go on from, but spawn returns before
// any actor takes it. Setting the password then stored it and forgot the
// refusal in the database, yet the actor spawned for the new credentials
// went on from the stale refusal: AUTH_FAILED "Invalid email or password",
// no login tried, until someone asked for a connect. (Found by an audit,
// helper 6, whose test this is.)
func TestNewPasswordAfterKeyChangeRevivesARefusedGateway(t *testing.T) {
	h := newHarness(t, actorstest.FastConfig())
	ctx := context.Background()
	g, sg := h.Add("rekeyed-refuser")
	_, pw := actorstest.Credentials("rekeyed-refuser")
	h.WaitState(g.ID, gatewayd.StateAuthenticated, 10*time.Second)

	// The gateway refuses the login once; the refusal is kept.
	refusedAndKept(t, h, g.ID, sg)
	sg.SetFaults(ctctest.Faults{}) // the gateway accepts the login again

	// gatewayd stops; its key is lost (the password is sealed under a key
	// the next process does not have); it starts again.
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	require.NoError(t, h.Runtime.Shutdown(sctx))
	cancel()
	other, err := store.NewSealer([]byte("another key, 32 bytes long!!!!!!"))
	require.NoError(t, err)
	_, err = h.Pool.Exec(ctx, `UPDATE gateways SET password_encrypted = $1 WHERE id = $2`, mustSeal(t, other, pw), g.ID)
	require.NoError(t, err)
	h.StartRuntime()
	st := h.WaitState(g.ID, gatewayd.StateFailed, 10*time.Second)
	require.NotNil(t, st.LastError)
	assert.Contains(t, *st.LastError, "cannot be decrypted")

	// The operator sets the password again (make demo does).
	up := h.Update(g.ID, store.GatewayPatch{Password: store.Some(pw)})
	assert.True(t, up.Reconnect)
	m, err := h.Store.AuthFailures(ctx)
	require.NoError(t, err)
	_, stillRefused := m[g.ID]
	assert.False(t, stillRefused, "the database forgot the refusal with the new credentials")

	accepted := sg.Stats().Accepted
	testutil.Poll(func() bool { return h.Status(g.ID).State == gatewayd.StateAuthenticated }, 10*time.Second)
	st = h.Status(g.ID)
	last := ""
	if st.LastError != nil {
		last = *st.LastError
	}
	assert.Equal(t, gatewayd.StateAuthenticated, st.State,
		"new credentials leave AUTH_FAILED/FAILED (got %s, last_error %q, dials since the PUT: %d)", st.State, last, sg.Stats().Accepted-accepted)
}
