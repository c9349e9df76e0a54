package api_test

import (
	"context"
	"crypto/sha256"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/api"
)

// API.md §10: "A revoked token (API or CLI) is refused within 5 s" (the
// token cache's ttl); README: an open stream "checks its token again every
// 5 s and ends once it is revoked". A stream's recheck takes a cache entry
// whenever the database answered it after the stream's previous check.
// When another request with the same token (the web UI's own calls, which
// share the stream's token) refreshes the cache just after the stream
// opened and the token is revoked right then, the stream's first recheck
// trusts that pre-revocation entry, and only the second recheck, almost
// two ttl after the revocation, ended the stream (found by an audit,
// helper 4, whose test this is).
func TestRevokedStreamEndsWithinTTLWhenARequestRefreshedTheCache(t *testing.T) {
	t.Parallel()
	ttl := 3 * time.Second
	h, base := authServer(t, ttl)
	ctx := context.Background()
	tok, text, err := h.Store.CreateToken(ctx, "ui", gatewayd.RoleViewer, nil)
	require.NoError(t, err)
	lastUsed := func() time.Time { return lastUsedOf(t, h, text) }
	get := func() int {
		req, err := http.NewRequest("GET", base+"/api/gateways/status", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+text)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}

	// A request caches the token for ttl.
	t0 := time.Now()
	require.Equal(t, 200, get())
	first := lastUsed()
	require.False(t, first.IsZero())

	// The stream opens late in that entry's life, from the cache.
	// (A second before its end: with 400 ms, a loaded machine opened the
	// stream after the entry had expired.)
	time.Sleep(time.Until(t0.Add(ttl - time.Second))) // a point in time, not a wait for an effect
	stream, stop := subscribe(t, base, "", "Authorization", "Bearer "+text)
	defer stop()
	require.Equal(t, first, lastUsed(), "precondition: the stream's own check was answered by the cache")

	// The entry expires; the next request asks the database again.
	require.Eventually(t, func() bool { return get() == 200 && lastUsed().After(first) }, 3*ttl, 20*time.Millisecond)
	_, err = h.Store.RevokeToken(ctx, tok.ID)
	require.NoError(t, err)
	revokedAt := time.Now()

	drainUntilClosed(t, stream, 4*ttl, "the revoked token's stream")
	took := time.Since(revokedAt)
	t.Logf("stream ended %s after the revocation (ttl %s)", took.Round(time.Millisecond), ttl)
	require.Less(t, took, ttl+ttl/2, "a revoked token's stream must end within the token ttl (API.md §10: within 5 s)")
}

// authServer serves the API of a live runtime with access control on and
// a token cache of ttl.
func authServer(t *testing.T, ttl time.Duration) (*actorstest.Harness, string) {
	t.Helper()
	h := actorstest.New(t, tmpl, actorstest.FastConfig())
	app := api.New(h.Store, h.Runtime, h.Log, api.Options{AuthEnabled: true, TokenCacheTTL: ttl, Telemetry: h.Telemetry})
	return h, serveOn(t, app, h.Telemetry.Events)
}

// lastUsedOf is the last_used_at of the token whose secret is text (zero
// when never used).
func lastUsedOf(t *testing.T, h *actorstest.Harness, text string) time.Time {
	t.Helper()
	hash := sha256.Sum256([]byte(text))
	tok, err := h.Store.TokenByHash(context.Background(), hash[:])
	require.NoError(t, err)
	if tok.LastUsedAt == nil {
		return time.Time{}
	}
	return *tok.LastUsedAt
}

// drainUntilClosed reads ch until the server ends the stream, failing the
// test if that takes longer than within.
func drainUntilClosed(t *testing.T, ch <-chan sse, within time.Duration, what string) {
	t.Helper()
	deadline := time.After(within)
	for open := true; open; {
		select {
		case _, open = <-ch:
		case <-deadline:
			t.Fatalf("%s is still open %v later", what, within)
		}
	}
}
