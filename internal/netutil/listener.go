// Package netutil holds a net.Listener that survives running out of file
// descriptors.
package netutil

import (
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// Backoff bounds: the first retry after a failed accept waits MinBackoff,
// each further one twice as long, up to MaxBackoff.
const (
	MinBackoff = 5 * time.Millisecond
	MaxBackoff = time.Second
)

// Listener retries Accept when it fails for want of resources (EMFILE,
// ENFILE, ENOBUFS, ENOMEM) or with any other temporary error, backing off
// from MinBackoff to MaxBackoff, instead of returning the error: an HTTP
// server's accept loop (fasthttp's included) gives up on the first error
// it does not know, and the process with it. While accepting fails, the
// connections wait in the kernel's backlog; the descriptors freed by
// connections that end let them in. Failures are logged at most once a
// second, with a count.
type Listener struct {
	net.Listener
	log    zerolog.Logger
	closed chan struct{}
	once   sync.Once

	mu       sync.Mutex
	lastLine time.Time // of the last log line
	episode  int       // failures since the last successful accept
	unlogged int       // failures not yet in a log line
}

// RetryAccept wraps ln.
func RetryAccept(ln net.Listener, log zerolog.Logger) *Listener {
	return &Listener{Listener: ln, log: log, closed: make(chan struct{})}
}

// Accept waits for the next connection, riding out temporary failures.
func (l *Listener) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err == nil {
			if delay > 0 {
				l.recovered()
			}
			return c, nil
		}
		if !retryable(err) {
			return nil, err
		}
		delay = min(max(2*delay, MinBackoff), MaxBackoff)
		l.failed(err, delay)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-l.closed:
			t.Stop()
			return nil, net.ErrClosed
		}
	}
}

// Close closes the listener and ends an Accept that is backing off.
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// retryable: out of descriptors, buffers or memory, or temporary by the
// error's own account (as net/http's accept loop decides). A deadline the
// listener's owner set is not: it ends the accepts on purpose (serve's
// start-up answers hand the listener over that way), though Go calls a
// timeout temporary.
func retryable(err error) bool {
	if errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED} {
		if errors.Is(err, errno) {
			return true
		}
	}
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

func (l *Listener) failed(err error, delay time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.episode++
	l.unlogged++
	if now := time.Now(); now.Sub(l.lastLine) >= time.Second {
		l.log.Warn().Err(err).Int("failures", l.unlogged).Int("failures_in_a_row", l.episode).Int64("retry_in_ms", delay.Milliseconds()).
			Msg("accepting HTTP connections failed; retrying")
		l.lastLine, l.unlogged = now, 0
	}
}

func (l *Listener) recovered() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now := time.Now(); now.Sub(l.lastLine) >= time.Second {
		l.log.Info().Int("failures", l.unlogged).Int("failures_in_a_row", l.episode).Msg("accepting HTTP connections again")
		l.lastLine, l.unlogged = now, 0
	}
	l.episode = 0
}
