package api

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"

	"github.com/ctcgw/gatewayd"
)

// A lookup the database answered just before this process revoked the
// token, and cached just after, kept the token good for one cache
// lifetime (noted by an audit, helper 12): the revocation is remembered
// for that long and corrects such an entry.
func TestALookupCachedAfterARevocationIsRevoked(t *testing.T) {
	tk := &tokens{ttl: 5 * time.Second, cache: make(map[[sha256.Size]byte]cachedToken)}
	hash := sha256.Sum256([]byte("gwd_secret"))
	before := gatewayd.Token{ID: uuid.New(), Name: "leaked", Role: gatewayd.RoleViewer}
	revoked := before
	at := time.Now()
	revoked.RevokedAt = &at

	tk.revoked(revoked)                                                                        // the API's DELETE
	tk.put(cachedToken{hash: hash, token: before, found: true, until: time.Now().Add(tk.ttl)}) // the older answer lands
	e, ok := tk.cached(hash)
	assert.True(t, ok)
	assert.Equal(t, "revoked token "+before.ID.String(), e.refusal(time.Now()))

	other := gatewayd.Token{ID: uuid.New(), Name: "fine", Role: gatewayd.RoleViewer}
	otherHash := sha256.Sum256([]byte("gwd_other"))
	tk.put(cachedToken{hash: otherHash, token: other, found: true, until: time.Now().Add(tk.ttl)})
	e, _ = tk.cached(otherHash)
	assert.Empty(t, e.refusal(time.Now()), "another token is untouched")
}
