package store_test

import (
	"context"
	"encoding/base64"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/internal/testutil"
	"github.com/ctcgw/gatewayd/store"
)

// API.md §10: "`gatewayd rekey` re-seals every password not under the
// current key ... a password that no configured key opens is listed by
// gateway id and left as it is"; README: rekey "exits non-zero while any
// password opens under no configured key". A value that carries the
// current key's id but does not open (corrupted, tampered, or sealed by
// another key whose 32-bit id collides) is counted as "already current"
// without being opened, so rekey reports success while the runtime shows
// the gateway FAILED ("stored password cannot be decrypted").
func TestRekeyListsUnopenableValuesUnderTheCurrentKeyID(t *testing.T) {
	ctx := context.Background()
	st, pool := newStore(t) // testutil.Key is current
	f := setup(t, st)
	g, err := st.CreateGateway(ctx, newGateway(f.factory.ID, "broken"))
	require.NoError(t, err)
	bad := "v2:" + store.KeyID(testutil.Key) + ":" + base64.StdEncoding.EncodeToString(make([]byte, 40))
	_, err = pool.Exec(ctx, `UPDATE gateways SET password_encrypted = $2 WHERE id = $1`, g.ID, bad)
	require.NoError(t, err)

	sealer, err := store.NewSealer(testutil.Key)
	require.NoError(t, err)
	_, openErr := sealer.Open(bad)
	require.Error(t, openErr, "precondition: no configured key opens it")

	res, err := st.Rekey(ctx, 100, nil)
	require.NoError(t, err)
	assert.Equal(t, []store.UnreadableGateway{{ID: g.ID, GatewayID: "broken"}}, res.Unreadable,
		"a password no configured key opens is listed (counted current: %d)", res.Current)
}
