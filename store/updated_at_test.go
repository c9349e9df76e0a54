package store_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/internal/testutil"
	"github.com/ctcgw/gatewayd/store"
)

// A PUT whose metadata differs only in a number's
// written scale (1.5 → 1.50) changes what the resource answers (README:
// "jsonb keeps every digit and the scale sent ... 1.50 stays 1.50"), yet
// the updated_at trigger compared rows with jsonb equality, where
// 1.5 = 1.50, so updated_at stayed put and the gateway's update reported
// no change (no gateway.updated event was sent). (Found by an audit,
// helper 14, whose tests these are.)
func TestMetadataScaleChangeMovesUpdatedAt(t *testing.T) {
	s, _, fx, g := withGateway(t, "GW-AUDIT14")
	ctx := context.Background()

	org, err := s.UpdateOrganization(ctx, fx.org.ID, store.OrganizationPatch{Metadata: store.Some(json.RawMessage(`{"a":1.5}`))})
	require.NoError(t, err)
	waitPast(t, org.UpdatedAt)
	org2, err := s.UpdateOrganization(ctx, fx.org.ID, store.OrganizationPatch{Metadata: store.Some(json.RawMessage(`{"a":1.50}`))})
	require.NoError(t, err)
	require.JSONEq(t, `{"a":1.50}`, string(org2.Metadata))
	assert.Contains(t, string(org2.Metadata), "1.50", "the stored metadata changed (README: 1.50 stays 1.50)")
	assert.True(t, org2.UpdatedAt.After(org.UpdatedAt),
		"organization metadata changed from %s to %s but updated_at stayed %v", org.Metadata, org2.Metadata, org2.UpdatedAt)

	u1, err := s.UpdateGateway(ctx, g.ID, store.GatewayPatch{Metadata: store.Some(json.RawMessage(`{"line":4.0}`))})
	require.NoError(t, err)
	waitPast(t, u1.Gateway.UpdatedAt)
	u2, err := s.UpdateGateway(ctx, g.ID, store.GatewayPatch{Metadata: store.Some(json.RawMessage(`{"line":4.00}`))})
	require.NoError(t, err)
	assert.Contains(t, string(u2.Gateway.Metadata), "4.00")
	assert.True(t, u2.Changed, "gateway metadata changed from %s to %s but the update reports no change", u1.Gateway.Metadata, u2.Gateway.Metadata)
	assert.True(t, u2.Gateway.UpdatedAt.After(u1.Gateway.UpdatedAt), "gateway updated_at did not move")
}

// waitPast polls the clock until it has passed ts by a millisecond, so a
// moved updated_at is observable.
func waitPast(t *testing.T, ts time.Time) {
	t.Helper()
	testutil.Eventually(t, func() bool { return time.Now().After(ts.Add(time.Millisecond)) }, 5*time.Second, "clock")
}

// A key rotation (gatewayd rekey) re-seals every
// gateway's password; no column a client sees changes, yet the trigger
// (set_updated_at_ignoring of migration 009 does not name
// password_encrypted) moved every gateway's updated_at, so after a
// rotation the whole fleet read as "changed by a client just now".
func TestRekeyKeepsUpdatedAt(t *testing.T) {
	ctx := context.Background()
	_, pool, _, g := withGateway(t, "GW-REKEY14")
	waitPast(t, g.UpdatedAt)
	sealer, err := store.NewSealer([]byte("the new key, thirty-two bytes!!!"), testutil.Key)
	require.NoError(t, err)
	st := store.New(pool, sealer)
	_, err = st.Rekey(ctx, 100, nil)
	require.NoError(t, err)
	after, err := st.GetGateway(ctx, g.ID)
	require.NoError(t, err)
	assert.Equal(t, g.UpdatedAt.UTC(), after.UpdatedAt.UTC(),
		"no client changed the gateway (only its password was re-sealed under the new key), yet updated_at moved")
}
