package logging

import (
	"sync"
	"time"
)

// Pacer lets one event through per interval and counts the rest: a line
// that would repeat for as long as an outage lasts is logged once per
// interval, with how many were held back. The zero value is ready.
type Pacer struct {
	mu       sync.Mutex
	next     time.Time
	unlogged int
}

// Allow says whether now's event is let through and, if so, how many were
// held back since the last one that was.
func (p *Pacer) Allow(now time.Time, every time.Duration) (bool, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if now.Before(p.next) {
		p.unlogged++
		return false, 0
	}
	n := p.unlogged
	p.unlogged, p.next = 0, now.Add(every)
	return true, n
}
