package actors

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
)

// seenWriter batches last_seen_at writes: actors call mark (a map write
// under a mutex, never I/O), and one goroutine flushes everything pending
// in one statement every interval. A failed flush keeps the times and
// tries again next time, so a database outage never reaches an actor.
type seenWriter struct {
	write    func(context.Context, map[uuid.UUID]time.Time) error
	interval time.Duration
	log      zerolog.Logger

	mu      sync.Mutex
	pending map[uuid.UUID]time.Time

	stop chan struct{}
	done chan struct{}
}

func newSeenWriter(write func(context.Context, map[uuid.UUID]time.Time) error, interval time.Duration, log zerolog.Logger) *seenWriter {
	w := &seenWriter{write: write, interval: interval, log: log, pending: make(map[uuid.UUID]time.Time),
		stop: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

func (w *seenWriter) mark(id uuid.UUID, at time.Time) {
	w.mu.Lock()
	if prev, ok := w.pending[id]; !ok || at.After(prev) {
		w.pending[id] = at
	}
	w.mu.Unlock()
}

func (w *seenWriter) run() {
	defer close(w.done)
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			w.flush()
			return
		case <-t.C:
			w.flush()
		}
	}
}

func (w *seenWriter) flush() {
	w.mu.Lock()
	batch := w.pending
	if len(batch) == 0 {
		w.mu.Unlock()
		return
	}
	w.pending = make(map[uuid.UUID]time.Time, len(batch))
	w.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.write(ctx, batch); err != nil {
		w.log.Warn().Err(err).Int("gateways", len(batch)).Msg("last_seen_at flush failed; will retry")
		for id, at := range batch {
			w.mark(id, at)
		}
	}
}

// close flushes what is pending and ends the goroutine.
func (w *seenWriter) close() {
	close(w.stop)
	<-w.done
}
