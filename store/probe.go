package store

import (
	"context"
	"sync/atomic"
	"time"
)

// Probe pings the database in the background, at most once per interval,
// and keeps the last answer, so a liveness check (GET /api/health) can say
// whether the database answers without a round trip per request: at 24k
// health requests a second, a ping each took 42 % of a core of PostgreSQL
// (BENCHMARKS.md, issue #11).
type Probe struct {
	up     atomic.Bool
	cancel context.CancelFunc
	done   chan struct{}
}

// StartProbe pings once (within timeout) so Up has an answer at once, then
// again every interval after the previous ping ended, until ctx ends or
// Stop is called. The caller owns the probe and must Stop it.
func (s *Store) StartProbe(ctx context.Context, interval, timeout time.Duration) *Probe {
	ctx, cancel := context.WithCancel(ctx)
	p := &Probe{cancel: cancel, done: make(chan struct{})}
	ping := func() {
		pctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		p.up.Store(s.Ping(pctx) == nil)
	}
	ping()
	go func() {
		defer close(p.done)
		t := time.NewTimer(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			ping()
			t.Reset(interval)
		}
	}()
	return p
}

// Up reports whether the last ping succeeded.
func (p *Probe) Up() bool { return p.up.Load() }

// Stop ends the probe's goroutine and waits for it; it may be called more
// than once.
func (p *Probe) Stop() {
	p.cancel()
	<-p.done
}
