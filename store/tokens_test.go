package store_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
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

// UseToken records the use of a usable token only: a revoked or expired
// one is returned as it is (for the caller to refuse with 401), without
// touching last_used_at.
func TestUsingARevokedOrExpiredTokenDoesNotTouchIt(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t)
	revoked, secretR, err := s.CreateToken(ctx, "revoked", gatewayd.RoleViewer, nil)
	require.NoError(t, err)
	_, err = s.RevokeToken(ctx, revoked.ID)
	require.NoError(t, err)
	expires := time.Now().Add(time.Hour)
	expired, secretE, err := s.CreateToken(ctx, "expired", gatewayd.RoleViewer, &expires)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `UPDATE api_tokens SET expires_at = now() - interval '1 minute' WHERE id = $1`, expired.ID)
	require.NoError(t, err)
	live, secretL, err := s.CreateToken(ctx, "live", gatewayd.RoleViewer, nil)
	require.NoError(t, err)

	got, err := s.UseToken(ctx, store.HashToken(secretL))
	require.NoError(t, err)
	assert.Equal(t, live.ID, got.ID)
	assert.NotNil(t, got.LastUsedAt, "a usable token's use is recorded")

	for name, secret := range map[string]string{"revoked": secretR, "expired": secretE} {
		got, err := s.UseToken(ctx, store.HashToken(secret))
		require.NoError(t, err, name)
		assert.Equal(t, name, got.Name)
		assert.Nil(t, got.LastUsedAt, "%s: not touched", name)
		var used *time.Time
		require.NoError(t, pool.QueryRow(ctx, `SELECT last_used_at FROM api_tokens WHERE name = $1`, name).Scan(&used))
		assert.Nil(t, used, "%s: last_used_at stays empty", name)
	}
}

// API.md §3/§10: GET /api/tokens is a list, ordered by name, then id.
func TestTokenListIsOrderedByName(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	for _, n := range []string{"c", "a", "b", "a"} {
		_, _, err := s.CreateToken(ctx, n, gatewayd.RoleViewer, nil)
		require.NoError(t, err)
	}
	list, total, err := s.ListTokens(ctx, store.Page{Limit: 10})
	require.NoError(t, err)
	assert.Equal(t, 4, total)
	var got []string
	for _, tok := range list {
		got = append(got, tok.Name)
	}
	assert.Equal(t, []string{"a", "a", "b", "c"}, got)
	assert.Less(t, list[0].ID.String(), list[1].ID.String(), "ties by id")
	page, _, err := s.ListTokens(ctx, store.Page{Limit: 2, Offset: 2})
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprint(list[2:]), fmt.Sprint(page))
}

// Revoking is idempotent: revoking again keeps the first revocation's
// time.
func TestRevokingTwiceKeepsTheFirstTime(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	tok, _, err := s.CreateToken(ctx, "twice", gatewayd.RoleAdmin, nil)
	require.NoError(t, err)
	first, err := s.RevokeToken(ctx, tok.ID)
	require.NoError(t, err)
	require.NotNil(t, first.RevokedAt)
	// Later statements have a later now(): wait until the clock has moved.
	var moved bool
	deadline := time.Now().Add(5 * time.Second)
	for !moved && time.Now().Before(deadline) {
		moved = time.Since(*first.RevokedAt) > 2*time.Millisecond
	}
	require.True(t, moved)
	again, err := s.RevokeToken(ctx, tok.ID)
	require.NoError(t, err)
	require.NotNil(t, again.RevokedAt)
	assert.True(t, first.RevokedAt.Equal(*again.RevokedAt), "revoked_at %s, then %s", first.RevokedAt, again.RevokedAt)
}

// GET /api/tokens lists revoked tokens too (so that an admin sees them),
// and counts them in the total.
func TestTokenListIncludesRevokedTokens(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	keep, _, err := s.CreateToken(ctx, "keep", gatewayd.RoleViewer, nil)
	require.NoError(t, err)
	gone, _, err := s.CreateToken(ctx, "gone", gatewayd.RoleViewer, nil)
	require.NoError(t, err)
	_, err = s.RevokeToken(ctx, gone.ID)
	require.NoError(t, err)
	list, total, err := s.ListTokens(ctx, store.Page{Limit: 10})
	require.NoError(t, err)
	assert.Equal(t, 2, total)
	require.Len(t, list, 2)
	assert.Equal(t, gone.ID, list[0].ID)
	assert.NotNil(t, list[0].RevokedAt)
	assert.Equal(t, keep.ID, list[1].ID)
}
