package store_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/store"
)

// (Found by an audit, helper 7, whose test this is.) A row that changes
// between Rekey's read and its write is skipped by the
// conditional UPDATE (right: the change is not overwritten), but Rekey
// still counts it as re-sealed and never looks at it again. When the
// change left a value under a previous key (a gatewayd serve not yet
// restarted with the new key, or a second rekey run with the old
// settings, wrote it), Rekey reports every password re-sealed and none
// unreadable, so `gatewayd rekey` exits 0 and the operator removes the old
// key (README, "Rotating the encryption key", step 3): that gateway's
// password is then lost.
func TestRekeyDoesNotCountARowItDidNotWrite(t *testing.T) {
	// A process still on the old key sets the password meanwhile.
	res, sealer, sealed := rekeyRaced(t, "RACED", func(_, old *store.Sealer) (string, error) {
		return old.Seal("set meanwhile under the old key")
	})
	// Read again and re-sealed: nothing is left under the old key, and
	// the one row is counted once.
	assert.True(t, sealer.Current(sealed), "a password is still under the previous key after a clean rekey: %s", sealed[:12])
	assert.Equal(t, 1, res.Resealed)
	plain, err := sealer.Open(sealed)
	require.NoError(t, err)
	assert.Equal(t, "set meanwhile under the old key", plain, "the change made meanwhile, kept")
}
