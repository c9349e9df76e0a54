package api

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// users is how many hold or wait for id's lock.
func (o *order) users(id uuid.UUID) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	if l := o.locks[id]; l != nil {
		return l.users
	}
	return 0
}

// lockAsync takes id's lock on a goroutine of its own; the channel is
// closed once it holds it, and the test releases it with the func sent.
func lockAsync(o *order, id uuid.UUID) (held <-chan func()) {
	ch := make(chan func(), 1)
	go func() { ch <- o.lock(id) }()
	return ch
}

// waitUsers polls, with a deadline, until n hold or wait for id's lock.
func waitUsers(t *testing.T, o *order, id uuid.UUID, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return o.users(id) == n }, 5*time.Second, time.Millisecond)
}

// One gateway's holders take turns, in any number; another gateway's
// never wait for them; a lock nobody holds or waits for is forgotten.
func TestOrderLocksPerGateway(t *testing.T) {
	var o order
	a, b := uuid.New(), uuid.New()
	unlockA := o.lock(a)
	second := lockAsync(&o, a)
	waitUsers(t, &o, a, 2) // the second is waiting (it counts itself before it locks)
	unlockB := o.lock(b)   // does not wait for a's holder
	unlockB()
	select {
	case <-second:
		t.Fatal("a's second holder went ahead while the first held the lock")
	default:
	}
	unlockA()
	unlockSecond := <-second

	// A third comes while the second holds the lock it waited for: it
	// waits too (the lock the second holds is still the one it finds).
	third := lockAsync(&o, a)
	waitUsers(t, &o, a, 2)
	select {
	case <-third:
		t.Fatal("a's third holder went ahead while the second held the lock")
	default:
	}
	unlockSecond()
	(<-third)()
	assert.Zero(t, o.users(a))
	o.mu.Lock()
	assert.Empty(t, o.locks, "no lock kept for nobody")
	o.mu.Unlock()
}
