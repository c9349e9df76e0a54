// Package netguard decides which addresses gatewayd may dial and dials only
// those. Gateway URLs are typed in by operators, so without a guard any
// operator (or anyone who can make a gateway's name resolve somewhere) could
// point gatewayd at the cloud metadata service or at other hosts on its own
// network. The check runs on the address actually dialed, after name
// resolution, so no DNS answer and no unusual spelling of an address gets
// around it. It also builds the certificate pool that wss:// dials verify
// against.
package netguard

import (
	"fmt"
	"net/netip"
	"strings"
)

// deniedPrefixes are never dialed, whatever GATEWAY_ALLOWED_NETWORKS says:
// nothing legitimate for a gateway lives there, and some of it is
// dangerous (instance metadata holds cloud credentials).
var deniedPrefixes = [...]netip.Prefix{
	// "This network": 0.0.0.0 reaches the local host on Linux.
	netip.MustParsePrefix("0.0.0.0/8"),
	// Link-local: 169.254.169.254 is the metadata service on AWS, GCP,
	// Azure and others.
	netip.MustParsePrefix("169.254.0.0/16"),
	// Multicast and limited broadcast: never a gateway.
	netip.MustParsePrefix("224.0.0.0/4"),
	netip.MustParsePrefix("255.255.255.255/32"),
	// The IPv6 unspecified address, which like 0.0.0.0 reaches the local host.
	netip.MustParsePrefix("::/128"),
	// IPv6 link-local.
	netip.MustParsePrefix("fe80::/10"),
	// IPv6 multicast.
	netip.MustParsePrefix("ff00::/8"),
	// AWS's IPv6 instance metadata endpoint, in unique-local space.
	netip.MustParsePrefix("fd00:ec2::254/128"),
	// Alibaba Cloud's metadata service, in shared address space (the
	// rest of 100.64.0.0/10 may well be a gateway's, behind a carrier's
	// NAT or on an overlay network).
	netip.MustParsePrefix("100.100.100.200/32"),
}

// nat64Prefix is the well-known NAT64 prefix (RFC 6052): 64:ff9b::a9fe:a9fe
// is 169.254.169.254 reached through a translator, so the IPv4 address it
// carries must pass the always-denied check too.
var nat64Prefix = netip.MustParsePrefix("64:ff9b::/96")

// Policy says which addresses may be dialed: never the always-denied set
// (link-local, unspecified, multicast, broadcast, cloud metadata), and,
// when an allowlist is configured, only addresses inside it. A nil *Policy
// is valid and denies only the always-denied set.
type Policy struct {
	allowed []netip.Prefix
}

// NewPolicy returns a policy that allows only addresses inside allowed, or
// every address not always denied when allowed is empty. The always-denied
// set wins: listing 169.254.0.0/16 does not make it dialable.
func NewPolicy(allowed []netip.Prefix) *Policy {
	p := &Policy{allowed: make([]netip.Prefix, 0, len(allowed))}
	for _, pfx := range allowed {
		p.allowed = append(p.allowed, canonicalPrefix(pfx))
	}
	return p
}

// ParseNetworks parses GATEWAY_ALLOWED_NETWORKS: CIDRs separated by commas,
// with optional spaces; a bare address means just that address (/32 or
// /128). A blank string means no allowlist (nil). An empty entry, as in
// "10.0.0.0/8,", is an error rather than silently ignored, because this
// setting is a security boundary and a typo should stop the process.
func ParseNetworks(s string) ([]netip.Prefix, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []netip.Prefix
	for i, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			return nil, fmt.Errorf("allowed networks: entry %d is empty", i+1)
		}
		if !strings.Contains(entry, "/") {
			a, err := netip.ParseAddr(entry)
			if err != nil {
				return nil, fmt.Errorf("allowed networks: %q is neither a CIDR nor an address", entry)
			}
			if a.Zone() != "" {
				return nil, fmt.Errorf("allowed networks: %q has a zone", entry)
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		pfx, err := netip.ParsePrefix(entry)
		if err != nil {
			return nil, fmt.Errorf("allowed networks: %q is not a CIDR: %w", entry, err)
		}
		out = append(out, pfx)
	}
	return out, nil
}

// Allowed reports whether a may be dialed. An IPv4-mapped IPv6 address
// (::ffff:169.254.169.254) is judged as the IPv4 address it is, because
// that is where the kernel sends it; a zone is ignored, because an address
// with a zone never matches a prefix and would otherwise slip past the
// link-local check.
func (p *Policy) Allowed(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap().WithZone("")
	if alwaysDenied(a) {
		return false
	}
	if nat64Prefix.Contains(a) {
		b := a.As16()
		if alwaysDenied(netip.AddrFrom4([4]byte(b[12:]))) {
			return false
		}
	}
	if p == nil || len(p.allowed) == 0 {
		return true
	}
	for _, pfx := range p.allowed {
		if pfx.Contains(a) {
			return true
		}
	}
	return false
}

// NeverAllowed reports whether no address of pfx may ever be dialed: it
// lies wholly inside an always-denied prefix (also when written
// IPv4-mapped, or through the NAT64 prefix), and returns that prefix. An
// allowlist entry like that allows nothing, so configuration refuses it
// rather than let every gateway there sit in BACKOFF with "address not
// allowed" (found by an audit, helper 1). A prefix that only overlaps the
// denied set (10.0.0.0/0) is not reported: the rest of it may be dialed.
func NeverAllowed(pfx netip.Prefix) (netip.Prefix, bool) {
	pfx = canonicalPrefix(pfx)
	if a := pfx.Addr(); a.Is6() && pfx.Bits() >= nat64Prefix.Bits() && nat64Prefix.Contains(a) {
		b := a.As16()
		pfx = netip.PrefixFrom(netip.AddrFrom4([4]byte(b[12:])), pfx.Bits()-nat64Prefix.Bits())
	}
	for _, d := range deniedPrefixes {
		if d.Addr().BitLen() == pfx.Addr().BitLen() && d.Bits() <= pfx.Bits() && d.Contains(pfx.Addr()) {
			return d, true
		}
	}
	return netip.Prefix{}, false
}

// alwaysDenied reports whether a, already unmapped and without zone, is in
// the always-denied set.
func alwaysDenied(a netip.Addr) bool {
	for _, pfx := range deniedPrefixes {
		if pfx.Contains(a) {
			return true
		}
	}
	return false
}

// canonicalPrefix masks pfx and turns an IPv4-mapped IPv6 prefix
// (::ffff:10.0.0.0/104) into the IPv4 prefix it means, since Allowed
// compares unmapped addresses.
func canonicalPrefix(pfx netip.Prefix) netip.Prefix {
	if a := pfx.Addr(); a.Is4In6() && pfx.Bits() >= 96 {
		pfx = netip.PrefixFrom(a.Unmap(), pfx.Bits()-96)
	}
	return pfx.Masked()
}
