package api

import (
	"maps"
	"net/http"
	"sync"
	"time"
)

// guesses bounds, per client address, the database lookups of tokens this
// process has not confirmed. Each such lookup costs the database two
// statements, and a client sending made-up tokens (well formed, each new)
// had every one of them looked up, as fast as it could send them: one
// unauthenticated client could keep the pool and PostgreSQL busy for
// everybody (suspicion of an audit, helper 1). A confirmed token's lookup
// (a refresh, every TOKEN_CACHE_TTL) is never counted or refused, so a
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
)

var errTooManyGuesses = &Error{Status: http.StatusTooManyRequests, Code: "TOO_MANY_REQUESTS",
	Message: "Too many unknown tokens from this address; try again later"}

// allow spends one lookup of ip's budget at now, or says there is none.
func (g *guesses) allow(ip string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	b, ok := g.clients[ip]
	if !ok {
		if g.clients == nil {
			g.clients = make(map[string]*guessBudget)
		}
		if len(g.clients) >= maxGuessers {
			maps.DeleteFunc(g.clients, func(_ string, b *guessBudget) bool { return b.refilled(now) >= guessBurst })
			if len(g.clients) >= maxGuessers {
				clear(g.clients) // a flood from as many addresses: each starts afresh
			}
		}
		b = &guessBudget{left: guessBurst, at: now}
		g.clients[ip] = b
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
