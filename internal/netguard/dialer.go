package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// ErrNotAllowed reports a dial refused by the policy. Its text is what an
// operator sees as a gateway's last_error, so it stays exactly this.
var ErrNotAllowed = errors.New("address not allowed")

// minAttemptTimeout is the least time one address gets when several share
// a deadline, as in the net package: enough for a TCP handshake on a slow
// link, so an early unreachable address cannot starve the later ones.
const minAttemptTimeout = 2 * time.Second

// Resolver turns a host name into addresses. *net.Resolver satisfies it;
// tests supply their own, so that names resolve to chosen addresses
// without DNS.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Dialer dials TCP only to addresses its Policy allows. Its DialContext is
// meant for gorilla/websocket's Dialer.NetDialContext: gorilla still takes
// the TLS server name and the Host header from the URL, so certificates are
// verified against the name the operator typed, not the address dialed.
// Do not set a Proxy on that gorilla Dialer: through a proxy, only the
// proxy's address would be checked and the proxy would resolve the name.
//
// The zero Dialer is usable: it denies the always-denied set, resolves with
// net.DefaultResolver and has no timeout of its own.
type Dialer struct {
	// Policy decides which addresses may be dialed; nil denies only the
	// always-denied set.
	Policy *Policy
	// Resolver resolves host names that are not literal addresses; nil
	// means net.DefaultResolver.
	Resolver Resolver
	// Timeout bounds resolution and connecting together; zero leaves it
	// to ctx.
	Timeout time.Duration

	// spy, set only by tests, sees every address just before it is
	// dialed, so a test can prove a denied address never was.
	spy func(network, address string)
}

// DialContext connects to addr ("host:port") on network ("tcp", "tcp4" or
// "tcp6"). A literal host, in any spelling ParseHost knows, is used as is;
// any other host is resolved. Denied addresses are dropped before anything
// is sent; if none remain, the error wraps ErrNotAllowed. The others are
// tried in order until one connects. The socket's final address is checked
// again just before connect, so a change in how the address reaches the
// kernel cannot bypass the policy.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	ipNetwork, err := ipNetworkFor(network)
	if err != nil {
		return nil, fmt.Errorf("dial %s %s: %w", network, addr, err)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s %s: %w", network, addr, err)
	}
	if d.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.Timeout)
		defer cancel()
	}

	addrs, err := d.resolve(ctx, ipNetwork, host)
	if err != nil {
		return nil, fmt.Errorf("dial %s %s: %w", network, addr, err)
	}
	var allowed, denied []netip.Addr
	for _, a := range addrs {
		if d.Policy.Allowed(a) {
			allowed = append(allowed, a)
		} else {
			denied = append(denied, a)
		}
	}
	if len(allowed) == 0 {
		return nil, fmt.Errorf("dial %s %s: %s: %w", network, addr, joinAddrs(denied), ErrNotAllowed)
	}

	nd := &net.Dialer{Control: d.Policy.control}
	var first error
	for i, a := range allowed {
		target := net.JoinHostPort(a.String(), port)
		attemptCtx, cancel := attemptContext(ctx, len(allowed)-i)
		if d.spy != nil {
			d.spy(network, target)
		}
		conn, err := nd.DialContext(attemptCtx, network, target)
		cancel()
		if err == nil {
			return conn, nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, first
}

// resolve returns host's addresses, unmapped and filtered to the family
// ipNetwork asks for. An empty host means "this host" to the net package,
// which is the unspecified address, so it is refused outright.
func (d *Dialer) resolve(ctx context.Context, ipNetwork, host string) ([]netip.Addr, error) {
	if host == "" {
		return nil, fmt.Errorf("empty host: %w", ErrNotAllowed)
	}
	if a, ok := ParseHost(host); ok {
		return []netip.Addr{a}, nil
	}
	var r Resolver = net.DefaultResolver
	if d.Resolver != nil {
		r = d.Resolver
	}
	found, err := r.LookupNetIP(ctx, ipNetwork, host)
	if err != nil {
		return nil, fmt.Errorf("resolve: %w", err)
	}
	if len(found) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	// The standard resolver may return IPv4 addresses in their IPv4-mapped
	// form; dial them as the IPv4 addresses they are.
	addrs := make([]netip.Addr, 0, len(found))
	for _, a := range found {
		a = a.Unmap()
		if ipNetwork == "ip4" && !a.Is4() || ipNetwork == "ip6" && !a.Is6() {
			continue
		}
		addrs = append(addrs, a)
	}
	if len(addrs) == 0 {
		return nil, &net.AddrError{Err: "no suitable address found", Addr: host}
	}
	return addrs, nil
}

// control is the net.Dialer's last word before connect(2): it parses the
// socket address the kernel will use and refuses it if denied. Anything it
// cannot parse is refused too.
func (p *Policy) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil || !p.Allowed(ap.Addr()) {
		return fmt.Errorf("%s: %w", address, ErrNotAllowed)
	}
	return nil
}

// ipNetworkFor maps a TCP network to the resolver's IP network.
func ipNetworkFor(network string) (string, error) {
	switch network {
	case "tcp":
		return "ip", nil
	case "tcp4":
		return "ip4", nil
	case "tcp6":
		return "ip6", nil
	}
	return "", net.UnknownNetworkError(network)
}

// attemptContext gives one of remaining addresses its share of ctx's
// deadline, but at least minAttemptTimeout, so an address that swallows
// packets does not use up the time meant for the next.
func attemptContext(ctx context.Context, remaining int) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok || remaining <= 1 {
		return ctx, func() {}
	}
	left := time.Until(deadline)
	share := left / time.Duration(remaining)
	if share < minAttemptTimeout {
		share = min(minAttemptTimeout, left)
	}
	return context.WithTimeout(ctx, share)
}

// joinAddrs lists addresses for an error message.
func joinAddrs(addrs []netip.Addr) string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}
