package netguard_test

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/internal/netguard"
)

// flipResolver answers allowed, then denied, alternately (DNS rebinding).
type flipResolver struct {
	mu sync.Mutex
	n  int
}

func (r *flipResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	if r.n%2 == 1 {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}
	return []netip.Addr{netip.MustParseAddr("169.254.169.254")}, nil
}

// API.md §10: "Checked on the address actually dialed, after name
// resolution". A name whose answers change between lookups is resolved
// once per dial and the address checked is the one dialed.
// (Checked by an audit, helper 4, whose test this is.)
func TestRebindingNameIsResolvedOncePerDial(t *testing.T) {
	port := listen(t)
	r := &flipResolver{}
	d := &netguard.Dialer{Resolver: r, Timeout: 5 * time.Second}
	s := &spy{}
	netguard.SetDialSpy(d, s.record)
	for i := 0; i < 4; i++ {
		conn, err := d.DialContext(context.Background(), "tcp", "rebind.test:"+port)
		if i%2 == 0 {
			require.NoError(t, err, "dial %d", i)
			conn.Close()
		} else {
			require.ErrorIs(t, err, netguard.ErrNotAllowed, "dial %d", i)
		}
	}
	assert.Equal(t, 4, r.n, "one lookup per dial")
	assert.Equal(t, []string{"127.0.0.1:" + port, "127.0.0.1:" + port}, s.Dials(), "only checked addresses dialed")
}
