package api

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ctcgw/gatewayd/internal/netutil"
)

// silentConns are the API's connections whose client has not sent a
// byte yet. fasthttp marks a new connection active before it reads its
// first request, so its Shutdown waited for one that never sent anything
// (a browser's preconnect, a client that connected and stalled) until its
// read timeout (10 s), in fact for the whole of the HTTP shutdown's half
// of SHUTDOWN_TIMEOUT, taken from the gateways' close (found by helper 5:
// TestSIGTERMWithEverythingOpen failed so when its silent connection was
// accepted before the signal). The shutdown now closes them first, as the
// closing listener resets those not yet accepted: a client that had sent
// nothing loses nothing it sent. A request under way, even half a head,
// even bytes not read yet, is still waited for.
type silentConns struct {
	mu       sync.Mutex
	conns    map[*quietConn]struct{}
	shutting bool
}

// wrap is ln with its connections tracked until their first byte.
func (s *silentConns) wrap(ln net.Listener) net.Listener {
	return &silentListener{Listener: ln, s: s}
}

// shut closes every connection that has not sent a byte, and those
// accepted from now on.
func (s *silentConns) shut() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shutting = true
	for c := range s.conns {
		if netutil.Pending(c.Conn) {
			// Its request's first bytes are there, not yet read (the
			// server's goroutine for it has not run since): under way.
			continue
		}
		// The wrapped connection's Close: quietConn.Close would take mu.
		_ = c.Conn.Close()
		delete(s.conns, c)
	}
}

func (s *silentConns) add(c *quietConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutting {
		return false
	}
	if s.conns == nil {
		s.conns = make(map[*quietConn]struct{})
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *silentConns) remove(c *quietConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

type silentListener struct {
	net.Listener
	s *silentConns
}

func (l *silentListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		qc := &quietConn{Conn: c, s: l.s}
		if l.s.add(qc) {
			return qc, nil
		}
		_ = c.Close() // shutting down: as the closed listener would
	}
}

// quietConn leaves silentConns at its first byte, or its close.
type quietConn struct {
	net.Conn
	s     *silentConns
	heard atomic.Bool // a byte was read, or the connection closed
}

func (c *quietConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && !c.heard.Load() && !c.heard.Swap(true) {
		c.s.remove(c)
	}
	return n, err
}

func (c *quietConn) Close() error {
	if !c.heard.Swap(true) {
		c.s.remove(c)
	}
	return c.Conn.Close()
}

// Shutdown is fiber's, after closing the connections that sent nothing.
func (a *App) Shutdown() error {
	a.silent.shut()
	return a.App.Shutdown()
}

// ShutdownWithTimeout is fiber's, after closing the connections that
// sent nothing.
func (a *App) ShutdownWithTimeout(timeout time.Duration) error {
	a.silent.shut()
	return a.App.ShutdownWithTimeout(timeout)
}

// ShutdownWithContext is fiber's, after closing the connections that
// sent nothing.
func (a *App) ShutdownWithContext(ctx context.Context) error {
	a.silent.shut()
	return a.App.ShutdownWithContext(ctx)
}
