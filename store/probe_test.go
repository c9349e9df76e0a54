package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The probe answers from its last ping: up while the database answers,
// down once it does not, and its goroutine ends with Stop.
func TestProbeFollowsTheDatabase(t *testing.T) {
	s, pool := newStore(t)
	p := s.StartProbe(context.Background(), 10*time.Millisecond, time.Second)
	defer p.Stop()
	assert.True(t, p.Up(), "the first ping runs before StartProbe returns")
	pool.Close() // every later ping fails
	require.Eventually(t, func() bool { return !p.Up() }, 5*time.Second, 5*time.Millisecond)
	p.Stop()
	p.Stop()
}
