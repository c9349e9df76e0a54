package store_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/store"
)

// Rekey lists the live gateways whose password no configured key opens,
// for an operator to set again; a deleted one, which can never be set
// again, is not listed (nor does it fail the run).
func TestRekeyListsOnlyLiveUnreadableGateways(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t)
	fx := setup(t, s)
	lost := sealV1(t, []byte("a key nobody configured, 32 byte"), "gone")
	live, err := s.CreateGateway(ctx, newGateway(fx.factory.ID, "LOST-LIVE"))
	require.NoError(t, err)
	dead, err := s.CreateGateway(ctx, newGateway(fx.factory.ID, "LOST-DELETED"))
	require.NoError(t, err)
	_, err = s.DeleteGateway(ctx, dead.ID)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `UPDATE gateways SET password_encrypted = $1`, lost)
	require.NoError(t, err)

	res, err := s.Rekey(ctx, 10, nil)
	require.NoError(t, err)
	assert.Equal(t, []store.UnreadableGateway{{ID: live.ID, GatewayID: "LOST-LIVE"}}, res.Unreadable)
}
