package store_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/store"
)

// API.md §10: a token is "gwd_" and 32 random bytes, base64url.
func TestTokenSecretIsThePrefixAnd32RandomBytes(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 20 {
		secret, err := store.NewTokenSecret()
		require.NoError(t, err)
		rest, ok := strings.CutPrefix(secret, "gwd_")
		require.True(t, ok, secret)
		raw, err := base64.RawURLEncoding.DecodeString(rest)
		require.NoError(t, err, "base64url without padding")
		assert.Len(t, raw, 32)
		assert.False(t, seen[secret], "fresh every time")
		seen[secret] = true
	}
}
