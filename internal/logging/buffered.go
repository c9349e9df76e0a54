package logging

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// Buffered batches log lines into few writes: a line is copied into a
// 64 KiB buffer under a mutex and reaches the underlying writer when the
// buffer fills, every interval, or on Close. With one access-log line per
// request this turns a syscall per request into one per few hundred
// requests; nothing is dropped, and a line waits at most one interval.
type Buffered struct {
	mu   sync.Mutex
	w    *bufio.Writer
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// NewBuffered starts the flusher; Close ends it.
func NewBuffered(w io.Writer, interval time.Duration) *Buffered {
	b := &Buffered{w: bufio.NewWriterSize(w, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(b.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-b.stop:
				return
			case <-t.C:
				b.Flush()
			}
		}
	}()
	return b
}

// Write buffers one log line.
func (b *Buffered) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Write(p)
}

// Flush writes what is buffered.
func (b *Buffered) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Flush()
}

// Close stops the flusher and writes what is left.
func (b *Buffered) Close() error {
	b.once.Do(func() {
		close(b.stop)
		<-b.done
	})
	return b.Flush()
}
