package testutil

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// Proxy forwards TCP connections on a loopback port to target, for tests
// that break the path to a server (PostgreSQL, most often): RefuseNew
// closes each new connection at once while the open ones keep working
// (pgx's cancel requests, each a connection of its own, are then lost,
// as behind a pooler or firewall that drops them); Cut closes the port
// and every open connection (an outage). The test's cleanup cuts it,
// which ends its goroutines.
type Proxy struct {
	ln     net.Listener
	refuse atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
}

// NewProxy listens on listen ("127.0.0.1:0" for any port) and forwards
// to target.
func NewProxy(t testing.TB, listen, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", listen)
	require.NoError(t, err)
	p := &Proxy{ln: ln}
	go p.serve(target)
	t.Cleanup(p.Cut)
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

func (p *Proxy) serve(target string) {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.refuse.Load() {
			_ = c.Close()
			continue
		}
		u, err := net.Dial("tcp", target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(u, c); _ = u.Close() }()
		go func() { _, _ = io.Copy(c, u); _ = c.Close() }()
	}
}

// RefuseNew closes every connection made from now on at once.
func (p *Proxy) RefuseNew() { p.refuse.Store(true) }

// Cut closes the port and every connection through it.
func (p *Proxy) Cut() {
	_ = p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}
