package api

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// The budget's arithmetic, on a clock of the test's: 30 at once, then 10
// a second, per address, and a full map forgets the addresses whose
// budget is whole again.
func TestGuessBudget(t *testing.T) {
	t.Parallel()
	var g guesses
	t0 := time.Unix(1_000_000, 0)
	for i := range 30 {
		assert.True(t, g.allow("10.0.0.1", t0), "lookup %d of the burst", i)
	}
	assert.False(t, g.allow("10.0.0.1", t0), "the burst is spent")
	assert.True(t, g.allow("10.0.0.2", t0), "another address has its own")
	assert.False(t, g.allow("10.0.0.1", t0.Add(50*time.Millisecond)), "half a lookup came back")
	assert.True(t, g.allow("10.0.0.1", t0.Add(100*time.Millisecond)), "one came back")
	assert.False(t, g.allow("10.0.0.1", t0.Add(100*time.Millisecond)))
	n := 0
	for g.allow("10.0.0.1", t0.Add(time.Hour)) {
		n++
	}
	assert.Equal(t, 30, n, "never more than the burst, however long the address was quiet")

	for i := range maxGuessers {
		g.allow(fmt.Sprintf("10.1.%d.%d", i/250, i%250), t0.Add(time.Hour))
	}
	g.mu.Lock()
	assert.LessOrEqual(t, len(g.clients), maxGuessers+1, "the addresses and the crowd's budget")
	spent := g.clients["10.0.0.1"]
	g.mu.Unlock()
	if spent != nil { // forgotten only if whole again
		assert.Less(t, spent.refilled(t0.Add(time.Hour)), float64(guessBurst))
	}
}

// README: "each client address gets 30 such lookups at once and 10 a
// second after ... so one client guessing tokens cannot keep the database
// busy for everyone". An IPv6 host is given a /64 by any provider and may
// send from each of its addresses: keyed by the whole address, one host
// had 30 lookups per address it picked. (Found by an audit, helper 1,
// whose test this is.)
func TestOneIPv6HostGetsOneBudget(t *testing.T) {
	t.Parallel()
	var g guesses
	t0 := time.Unix(1_000_000, 0)
	allowed := 0
	for i := range 1000 {
		if g.allow(fmt.Sprintf("2001:db8:1:2::%x", i+1), t0) {
			allowed++
		}
	}
	assert.Equal(t, int(guessBurst), allowed,
		"one /64 (one IPv6 host) had %d made-up tokens looked up at one instant", allowed)
	assert.True(t, g.allow("2001:db8:1:3::1", t0), "the next /64 is another host")
	assert.True(t, g.allow("::ffff:10.0.0.7", t0), "an IPv4-mapped address is its IPv4 address")
	assert.Equal(t, "10.0.0.7", guesser("::ffff:10.0.0.7"))
	assert.Equal(t, "fe80::/64", guesser("fe80::1%eth0"))
}

// README: "30 such lookups at once and 10 a second after; past that it is
// answered 429". When the map held maxGuessers addresses none of whose
// budget was whole again, it was cleared, and an address that had spent
// its budget got 30 more at once; now the newcomers share one budget.
// (Found by an audit, helper 1, whose test this is.)
func TestASpentAddressIsNotGivenAFreshBudget(t *testing.T) {
	t.Parallel()
	var g guesses
	t0 := time.Unix(1_000_000, 0)
	for range int(guessBurst) {
		g.allow("10.0.0.1", t0)
	}
	assert.False(t, g.allow("10.0.0.1", t0), "spent")
	// As many other addresses guess at the same moment (one each is
	// enough: a budget of 29 is not whole again).
	newcomers := 0
	for i := range maxGuessers + 100 {
		if g.allow(fmt.Sprintf("10.%d.%d.%d", 1+i/62500, (i/250)%250, i%250), t0) {
			newcomers++
		}
	}
	n := 0
	for g.allow("10.0.0.1", t0) && n < 100 {
		n++
	}
	assert.Zero(t, n, "an address that had spent its budget had %d more lookups at the same instant", n)
	assert.Equal(t, maxGuessers-1+int(guessBurst), newcomers,
		"every address the map had room for got its own budget, and the rest shared one")
	g.mu.Lock()
	assert.LessOrEqual(t, len(g.clients), maxGuessers+1)
	g.mu.Unlock()
}
