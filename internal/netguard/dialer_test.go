package netguard_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/internal/netguard"
)

// fakeResolver answers from a table, so names resolve to chosen addresses
// without DNS. A name it does not know is not found.
type fakeResolver struct {
	mu      sync.Mutex
	answers map[string][]string
	asked   []string
}

func (r *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked = append(r.asked, host)
	answer, ok := r.answers[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	addrs := make([]netip.Addr, len(answer))
	for i, s := range answer {
		addrs[i] = netip.MustParseAddr(s)
	}
	return addrs, nil
}

func (r *fakeResolver) Asked() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.asked...)
}

// spy records every address the dialer was about to connect to.
type spy struct {
	mu    sync.Mutex
	dials []string
}

func (s *spy) record(_, address string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dials = append(s.dials, address)
}

func (s *spy) Dials() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.dials...)
}

// newDialer returns a netguard dialer with a fake resolver and a spy.
func newDialer(t *testing.T, allowed string, answers map[string][]string) (*netguard.Dialer, *spy, *fakeResolver) {
	t.Helper()
	nets, err := netguard.ParseNetworks(allowed)
	require.NoError(t, err)
	r := &fakeResolver{answers: answers}
	d := &netguard.Dialer{Policy: netguard.NewPolicy(nets), Resolver: r, Timeout: 5 * time.Second}
	s := &spy{}
	netguard.SetDialSpy(d, s.record)
	return d, s, r
}

// listen starts a loopback TCP listener that accepts and closes, and
// returns its port.
func listen(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	require.NoError(t, err)
	return port
}

func TestDialRefusesDeniedAddressesBeforeConnecting(t *testing.T) {
	t.Parallel()
	d, s, r := newDialer(t, "", map[string][]string{
		"metadata.evil.test": {"169.254.169.254"},
		"mapped.evil.test":   {"::ffff:169.254.169.254"},
		"all-bad.evil.test":  {"0.0.0.0", "fe80::1", "ff02::1", "fd00:ec2::254"},
	})
	for _, addr := range []string{
		"169.254.169.254:80",
		"[::ffff:169.254.169.254]:80",
		"0251.0376.0251.0376:80",
		"2852039166:80",
		"0xa9fea9fe:80",
		"169.254.43518:80",
		"169.254.169.254.:80",
		"0.0.0.0:80",
		"0:80",
		"[::]:80",
		"224.0.0.1:80",
		"255.255.255.255:80",
		"[ff02::1]:80",
		"[fe80::1%eth0]:80",
		"[fd00:ec2::254]:80",
		"[64:ff9b::a9fe:a9fe]:80",
		":80",
		"metadata.evil.test:80",
		"mapped.evil.test:80",
		"all-bad.evil.test:80",
	} {
		conn, err := d.DialContext(context.Background(), "tcp", addr)
		if !assert.ErrorIs(t, err, netguard.ErrNotAllowed, addr) {
			if conn != nil {
				conn.Close()
			}
		}
	}
	assert.Empty(t, s.Dials(), "no denied address reached connect")
	assert.Equal(t, []string{"metadata.evil.test", "mapped.evil.test", "all-bad.evil.test"}, r.Asked(),
		"literals in every spelling are not sent to the resolver")

	_, err := d.DialContext(context.Background(), "tcp", "metadata.evil.test:80")
	assert.EqualError(t, err, "dial tcp metadata.evil.test:80: 169.254.169.254: address not allowed")
}

func TestControlChecksTheSocketAddress(t *testing.T) {
	t.Parallel()
	nets, err := netguard.ParseNetworks("127.0.0.0/8")
	require.NoError(t, err)
	control := netguard.Control(netguard.NewPolicy(nets))
	assert.NoError(t, control("tcp4", "127.0.0.1:80", nil))
	for _, addr := range []string{"169.254.169.254:80", "[::ffff:169.254.169.254]:80", "[fe80::1%eth0]:80", "[::1]:80", "10.0.0.1:80", "0.0.0.0:80", "not an address", ""} {
		assert.ErrorIs(t, control("tcp", addr, nil), netguard.ErrNotAllowed, addr)
	}
	assert.NoError(t, netguard.Control(nil)("tcp6", "[::1]:80", nil), "nil policy")
}

func TestDialSkipsDeniedAnswers(t *testing.T) {
	t.Parallel()
	port := listen(t)
	d, s, _ := newDialer(t, "", map[string][]string{
		"gw.test": {"169.254.169.254", "::ffff:0.0.0.0", "127.0.0.1"},
	})
	conn, err := d.DialContext(context.Background(), "tcp", "gw.test:"+port)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:"+port, conn.RemoteAddr().String())
	conn.Close()
	assert.Equal(t, []string{"127.0.0.1:" + port}, s.Dials(), "only the allowed answer was dialed")
}

func TestDialTriesAddressesInOrder(t *testing.T) {
	t.Parallel()
	port := listen(t) // on 127.0.0.1 only: 127.0.0.2 refuses
	d, s, _ := newDialer(t, "", map[string][]string{"gw.test": {"127.0.0.2", "127.0.0.1"}})
	conn, err := d.DialContext(context.Background(), "tcp", "gw.test:"+port)
	require.NoError(t, err)
	conn.Close()
	assert.Equal(t, []string{"127.0.0.2:" + port, "127.0.0.1:" + port}, s.Dials())

	d, _, _ = newDialer(t, "", map[string][]string{"gw.test": {"127.0.0.2", "127.0.0.3"}})
	_, err = d.DialContext(context.Background(), "tcp", "gw.test:"+port)
	var opErr *net.OpError
	require.ErrorAs(t, err, &opErr, "the first address's error")
	assert.Contains(t, err.Error(), "127.0.0.2:"+port)
	assert.NotErrorIs(t, err, netguard.ErrNotAllowed)
}

func TestDialAllowlist(t *testing.T) {
	t.Parallel()
	port := listen(t)
	d, s, _ := newDialer(t, "127.0.0.0/8", map[string][]string{
		"local.test":   {"127.0.0.1"},
		"private.test": {"10.0.0.1"},
		"v6.test":      {"::1"},
	})
	for _, addr := range []string{"127.0.0.1:" + port, "local.test:" + port, "127.1:" + port, "[::ffff:127.0.0.1]:" + port} {
		conn, err := d.DialContext(context.Background(), "tcp", addr)
		if assert.NoError(t, err, addr) {
			conn.Close()
		}
	}
	for _, addr := range []string{"[::1]:" + port, "10.0.0.1:80", "private.test:80", "v6.test:" + port, "169.254.169.254:80"} {
		_, err := d.DialContext(context.Background(), "tcp", addr)
		assert.ErrorIs(t, err, netguard.ErrNotAllowed, addr)
	}
	for _, dial := range s.Dials() {
		assert.True(t, strings.HasPrefix(dial, "127.0.0.1:"), "only allowed addresses were dialed: %s", dial)
	}
	assert.Len(t, s.Dials(), 4)
}

func TestDialResolveFailures(t *testing.T) {
	t.Parallel()
	d, s, _ := newDialer(t, "", map[string][]string{"empty.test": {}, "v6only.test": {"::1"}})
	for _, tc := range []struct{ network, addr string }{
		{"tcp", "unknown.test:80"},
		{"tcp", "empty.test:80"},
		{"tcp4", "v6only.test:80"},
	} {
		_, err := d.DialContext(context.Background(), tc.network, tc.addr)
		require.Error(t, err, tc.addr)
		assert.NotErrorIs(t, err, netguard.ErrNotAllowed, tc.addr)
		assert.Contains(t, err.Error(), tc.addr)
	}
	var dnsErr *net.DNSError
	_, err := d.DialContext(context.Background(), "tcp", "empty.test:80")
	require.ErrorAs(t, err, &dnsErr)
	assert.True(t, dnsErr.IsNotFound)

	for _, tc := range []struct{ network, addr string }{{"udp", "127.0.0.1:53"}, {"tcp", "no-port"}} {
		_, err := d.DialContext(context.Background(), tc.network, tc.addr)
		assert.Error(t, err, tc.network+" "+tc.addr)
	}
	assert.Empty(t, s.Dials())
}

// blockingResolver answers only when its context ends.
type blockingResolver struct{}

func (blockingResolver) LookupNetIP(ctx context.Context, _, _ string) ([]netip.Addr, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestDialTimeoutCoversResolution(t *testing.T) {
	t.Parallel()
	d := &netguard.Dialer{Resolver: blockingResolver{}, Timeout: 50 * time.Millisecond}
	start := time.Now()
	_, err := d.DialContext(context.Background(), "tcp", "slow.test:80")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 5*time.Second)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = (&netguard.Dialer{Resolver: blockingResolver{}}).DialContext(ctx, "tcp", "slow.test:80")
	assert.ErrorIs(t, err, context.Canceled)
}

// echoServer is a WebSocket server that echoes one message and records the
// Host header each upgrade carried.
type echoServer struct {
	mu    sync.Mutex
	hosts []string
}

func (e *echoServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	e.hosts = append(e.hosts, r.Host)
	e.mu.Unlock()
	conn, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	typ, msg, err := conn.ReadMessage()
	if err != nil {
		return
	}
	_ = conn.WriteMessage(typ, msg)
}

func (e *echoServer) Hosts() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.hosts...)
}

// echo sends one message on conn and checks it comes back.
func echo(t *testing.T, conn *websocket.Conn) {
	t.Helper()
	require.NoError(t, conn.WriteMessage(websocket.TextMessage, []byte("ping")))
	_, msg, err := conn.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, "ping", string(msg))
}

func TestGorillaWebSocketThroughNetguard(t *testing.T) {
	t.Parallel()
	echoer := &echoServer{}
	srv := httptest.NewServer(echoer)
	t.Cleanup(srv.Close)
	_, port, err := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	require.NoError(t, err)

	d, s, _ := newDialer(t, "", map[string][]string{
		"gw.test":       {"127.0.0.1"},
		"metadata.test": {"169.254.169.254"},
	})
	ws := &websocket.Dialer{NetDialContext: d.DialContext, HandshakeTimeout: 5 * time.Second}

	conn, resp, err := ws.DialContext(context.Background(), "ws://gw.test:"+port+"/gw", nil)
	require.NoError(t, err)
	resp.Body.Close()
	echo(t, conn)
	conn.Close()
	assert.Equal(t, []string{"gw.test:" + port}, echoer.Hosts(), "the Host header comes from the URL")

	for _, url := range []string{"ws://metadata.test:" + port + "/gw", "ws://169.254.169.254/gw", "ws://0xa9fea9fe/gw", "wss://[::ffff:169.254.169.254]/gw"} {
		_, resp, err := ws.DialContext(context.Background(), url, nil)
		if resp != nil {
			resp.Body.Close()
		}
		if assert.ErrorIs(t, err, netguard.ErrNotAllowed, url) {
			assert.True(t, strings.HasSuffix(err.Error(), ": address not allowed"), "gorilla passes the error through: %v", err)
		}
	}
	assert.Equal(t, []string{"127.0.0.1:" + port}, s.Dials(), "denied URLs never reached connect")
}

// A resolver's IPv4-mapped answer (::ffff:127.0.0.1; the standard
// resolver may give IPv4 addresses so) is unmapped before anything else:
// judged by the allowlist as the IPv4 address it is, dialed as IPv4 (on
// tcp4 too, and not on tcp6), and named as IPv4 when refused. A mapped
// address outside the allowed IPv4 nets is refused and never dialed.
func TestDialUnmapsMappedAnswers(t *testing.T) {
	t.Parallel()
	port := listen(t)
	d, s, _ := newDialer(t, "127.0.0.0/8", map[string][]string{
		"mapped.test":  {"::ffff:127.0.0.1"},
		"outside.test": {"::ffff:10.0.0.1"},
	})
	for _, network := range []string{"tcp", "tcp4"} {
		conn, err := d.DialContext(context.Background(), network, "mapped.test:"+port)
		require.NoError(t, err, network)
		assert.Equal(t, "127.0.0.1:"+port, conn.RemoteAddr().String(), network)
		conn.Close()
	}
	assert.Equal(t, []string{"127.0.0.1:" + port, "127.0.0.1:" + port}, s.Dials(), "dialed as the IPv4 address")

	conn, err := d.DialContext(context.Background(), "tcp6", "mapped.test:"+port)
	if !assert.Error(t, err, "an IPv4 address is no tcp6 address") {
		conn.Close()
	}
	assert.NotErrorIs(t, err, netguard.ErrNotAllowed)

	_, err = d.DialContext(context.Background(), "tcp", "outside.test:80")
	assert.EqualError(t, err, "dial tcp outside.test:80: 10.0.0.1: address not allowed")
	assert.ErrorIs(t, err, netguard.ErrNotAllowed)
	assert.Len(t, s.Dials(), 2, "neither was dialed")
}
