package actors_test

// (Found by an audit, helper 12, whose test this is.) a connect of a gateway whose stored password no key
// opens answers FAILED with desired_state still DISCONNECTED.

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/ctc/ctctest"
	"github.com/ctcgw/gatewayd/store"
)

// API.md §4: the status carries desired_state, and POST .../connect sets it
// CONNECTED (stored first, then the runtime). For a gateway whose password
// cannot be decrypted, supervisor.spawn's unreadable branch copies the
// record's old status and sets only the state (FAILED because the target
// wants CONNECTED) and since, never Desired: the connect's answer and
// every later status say FAILED with desired_state DISCONNECTED, though
// the database says CONNECTED and the gateway is FAILED because it is
// wanted connected.
func TestConnectOfUnreadableGatewaySaysDesiredConnected(t *testing.T) {
	h := newHarness(t, actorstest.FastConfig())
	sg := h.Sim.Add("rekeyed", ctctest.Config{Email: "r@example.com", Password: "pw"})
	other, err := store.NewSealer([]byte("another key, 32 bytes long!!!!!!"))
	require.NoError(t, err)
	g, err := store.New(h.Pool, other).CreateGateway(context.Background(), store.NewGateway{FactoryID: h.Factory,
		GatewayID: "rekeyed", Name: "r", URL: sg.URL(), Email: "r@example.com", Password: "pw",
		DesiredState: gatewayd.DesiredDisconnected})
	require.NoError(t, err)
	h.Runtime.Reconcile()
	st := h.WaitState(g.ID, gatewayd.StateDisconnected, 10*time.Second)
	require.Equal(t, gatewayd.DesiredDisconnected, st.Desired)

	// POST /api/gateways/:id/connect, as the API does it.
	_, _, err = h.Store.SetDesiredState(context.Background(), g.ID, gatewayd.DesiredConnected)
	require.NoError(t, err)
	st, err = h.Runtime.Connect(context.Background(), g.ID)
	require.NoError(t, err)
	assert.Equal(t, gatewayd.StateFailed, st.State)
	assert.Equal(t, gatewayd.DesiredConnected, st.Desired, "the connect's answer")
	assert.Equal(t, gatewayd.DesiredConnected, h.Status(g.ID).Desired, "the status afterwards")
}
