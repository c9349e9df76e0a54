package netguard

import (
	"net/netip"
	"strings"
)

// maxLastPart bounds the last part of an inet_aton address by the number of
// parts: in a.b.c the last part fills 16 bits, in a.b 24, and a lone number
// all 32.
var maxLastPart = [...]uint64{0xffffffff, 0xffffff, 0xffff, 0xff}

// ParseHost reports whether host is a literal IP address in any spelling a
// resolver might accept, and returns it canonical: IPv4-mapped IPv6
// addresses come back as IPv4, an IPv6 zone is kept.
//
// Go's own parsers accept only dotted-decimal IPv4, but glibc's getaddrinfo,
// which Go's cgo resolver calls, parses a numeric host with inet_aton, and
// inet_aton reads "2852039166", "0xa9fea9fe", "0251.0376.0251.0376" and
// "169.254.43518" all as 169.254.169.254, and "127.1" as 127.0.0.1. A check
// that did not know these spellings could be walked around, so ParseHost
// reads them the way inet_aton does:
//
//   - one to four parts separated by dots;
//   - each part decimal, octal with a leading 0 (any number of leading
//     zeros), or hexadecimal after 0x or 0X (at least one hex digit);
//   - every part but the last is one byte; the last fills the remaining
//     bytes (a.b.c: 16 bits, a.b: 24 bits, a lone number: 32 bits).
//
// Like a browser's URL parser, and unlike inet_aton, one trailing dot is
// allowed ("169.254.169.254."): a name that spells an address should be
// judged as that address. IPv6 is accepted with or without brackets and
// with a zone ("fe80::1%eth0"); Go's parser and inet_pton agree on IPv6.
func ParseHost(host string) (netip.Addr, bool) {
	if inner, ok := strings.CutPrefix(host, "["); ok {
		inner, ok = strings.CutSuffix(inner, "]")
		if !ok {
			return netip.Addr{}, false
		}
		a, err := netip.ParseAddr(inner)
		if err != nil || !a.Is6() {
			return netip.Addr{}, false
		}
		return a.Unmap(), true
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap(), true
	}
	return parseInetAton(strings.TrimSuffix(host, "."))
}

// parseInetAton parses s as glibc's inet_aton does (see ParseHost).
func parseInetAton(s string) (netip.Addr, bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var v uint32
	for i, part := range parts {
		n, ok := parseAtonPart(part)
		if !ok {
			return netip.Addr{}, false
		}
		if i < len(parts)-1 {
			if n > 0xff {
				return netip.Addr{}, false
			}
			v |= uint32(n) << (24 - 8*i)
			continue
		}
		if n > maxLastPart[i] {
			return netip.Addr{}, false
		}
		v |= uint32(n)
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

// parseAtonPart parses one part of an inet_aton address: decimal, octal
// with a leading 0, or hexadecimal after 0x. It refuses values above 32 bits
// as glibc does, rather than letting them wrap.
func parseAtonPart(s string) (uint64, bool) {
	base, digits := uint64(10), s
	switch {
	case len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'):
		base, digits = 16, s[2:]
	case len(s) >= 1 && s[0] == '0':
		base = 8
	}
	if digits == "" {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(digits); i++ {
		d, ok := digitValue(digits[i])
		if !ok || d >= base {
			return 0, false
		}
		n = n*base + d
		if n > 0xffffffff {
			return 0, false
		}
	}
	return n, true
}

// digitValue returns the value of an ASCII hex digit.
func digitValue(c byte) (uint64, bool) {
	switch {
	case '0' <= c && c <= '9':
		return uint64(c - '0'), true
	case 'a' <= c && c <= 'f':
		return uint64(c-'a') + 10, true
	case 'A' <= c && c <= 'F':
		return uint64(c-'A') + 10, true
	}
	return 0, false
}
