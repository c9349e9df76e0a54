package testutil

import (
	"context"
	"net"
	"net/netip"
)

// StaticResolver answers name lookups from its map, so a test can make a
// host name resolve anywhere (the metadata service, say) without DNS. It
// satisfies netguard.Resolver. An unknown name is "no such host".
type StaticResolver map[string][]netip.Addr

// LookupNetIP returns the addresses of host that fit network ("ip",
// "ip4" or "ip6").
func (r StaticResolver) LookupNetIP(_ context.Context, network, host string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, a := range r[host] {
		switch {
		case network == "ip4" && !a.Unmap().Is4(), network == "ip6" && !a.Is6():
			continue
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return out, nil
}
