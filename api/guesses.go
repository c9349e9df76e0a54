package api

import (
	"maps"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// guesses bounds, per client address, the database lookups of tokens this
// process has not confirmed. Each such lookup costs the database two
// statements, and a client sending made-up tokens (well formed, each new)
// had every one of them looked up, as fast as it could send them: one
// unauthenticated client could keep the pool and PostgreSQL busy for
// everybody (suspicion of an audit, helper 1). A confirmed token's lookup
// (a refresh, every Options.TokenCacheTTL) is never counted or refused, so a
// flood keeps no one with a working token out; a new token from the
// flooding address waits for the address's budget like the guesses.
type guesses struct {
	mu      sync.Mutex
	clients map[string]*guessBudget
}

// guessBudget is a token bucket: guessBurst lookups at once, refilled at
// guessRate a second.
type guessBudget struct {
	left float64
	at   time.Time
}

const (
	guessRate  = 10.0
	guessBurst = 30.0
	// maxGuessers bounds the addresses remembered; full, it forgets those
	// whose budget is whole again (they lose nothing by it).
	maxGuessers = 10_000
	// crowd is the budget the addresses share that find the map full of
	// budgets still being spent. Clearing the map instead gave an address
	// that had spent its budget a whole one again (found by an audit,
	// helper 1).
	crowd = "*"
)

var errTooManyGuesses = &Error{Status: http.StatusTooManyRequests, Code: "TOO_MANY_REQUESTS",
	Message: "Too many unknown tokens from this address; try again later"}

// allow spends one lookup of ip's budget at now, or says there is none.
func (g *guesses) allow(ip string, now time.Time) bool {
	key := guesser(ip)
	g.mu.Lock()
	defer g.mu.Unlock()
	b, ok := g.clients[key]
	if !ok {
		if g.clients == nil {
			g.clients = make(map[string]*guessBudget)
		}
		if len(g.clients) >= maxGuessers {
			maps.DeleteFunc(g.clients, func(_ string, b *guessBudget) bool { return b.refilled(now) >= guessBurst })
			if len(g.clients) >= maxGuessers {
				key = crowd // a flood from as many addresses: the newcomers share one budget
			}
		}
		if b, ok = g.clients[key]; !ok {
			b = &guessBudget{left: guessBurst, at: now}
			g.clients[key] = b
		}
	}
	b.left, b.at = b.refilled(now), now
	if b.left < 1 {
		return false
	}
	b.left--
	return true
}

func (b *guessBudget) refilled(now time.Time) float64 {
	return min(guessBurst, b.left+now.Sub(b.at).Seconds()*guessRate)
}

// guesser is whose budget a client address spends: an IPv4 address's own,
// and an IPv6 address's /64's. One IPv6 host is given a /64 by any
// provider and may send from each of its 2^64 addresses: keyed by the
// whole address, it had a budget per address it picked (found by an
// audit, helper 1).
func guesser(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, err := a.WithZone("").Prefix(64)
	if err != nil {
		return ip
	}
	return p.String()
}
