package netguard_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/ctcgw/gatewayd/internal/netguard"
)

func TestParseHost(t *testing.T) {
	t.Parallel()
	// Every row with an address was checked against glibc 2.36's
	// getaddrinfo (getent ahostsv4), except the trailing dot, which only
	// browsers read as an address.
	for host, want := range map[string]string{
		// Plain spellings.
		"169.254.169.254":          "169.254.169.254",
		"127.0.0.1":                "127.0.0.1",
		"::1":                      "::1",
		"[::1]":                    "::1",
		"[::ffff:169.254.169.254]": "169.254.169.254",
		"::ffff:169.254.169.254":   "169.254.169.254",
		"::ffff:a9fe:a9fe":         "169.254.169.254",
		"fe80::1%eth0":             "fe80::1%eth0",
		"[fe80::1%eth0]":           "fe80::1%eth0",
		"FD00:EC2::254":            "fd00:ec2::254",
		// inet_aton: one number, 32 bits.
		"2852039166": "169.254.169.254",
		"0":          "0.0.0.0",
		"4294967295": "255.255.255.255",
		// inet_aton: hexadecimal, whole or per part, any case.
		"0xa9fea9fe":                     "169.254.169.254",
		"0XA9FEA9FE":                     "169.254.169.254",
		"0x00000000000000000000a9fea9fe": "169.254.169.254",
		"0xa9.0xfe.0xa9.0xfe":            "169.254.169.254",
		"0x0":                            "0.0.0.0",
		// inet_aton: octal parts, leading zeros.
		"0251.0376.0251.0376":        "169.254.169.254",
		"00000000251.0376.0251.0376": "169.254.169.254",
		"169.254.169.0254":           "169.254.169.172",
		"127.0.0.01":                 "127.0.0.1",
		"00":                         "0.0.0.0",
		"017700000001":               "127.0.0.1",
		// inet_aton: short forms, the last part filling the rest.
		"169.254.43518": "169.254.169.254",
		"169.16689662":  "169.254.169.254",
		"127.1":         "127.0.0.1",
		"1.16777215":    "1.255.255.255",
		// Mixed.
		"0XA9.0xFE.0251.254": "169.254.169.254",
		"0xa9.254.0xa9fe":    "169.254.169.254",
		"1.0x1":              "1.0.0.1",
		// Trailing dot, as a browser reads it.
		"169.254.169.254.": "169.254.169.254",
		"2852039166.":      "169.254.169.254",
	} {
		got, ok := netguard.ParseHost(host)
		if want == "" {
			assert.False(t, ok, "%q parsed as %s", host, got)
			continue
		}
		if assert.True(t, ok, host) {
			assert.Equal(t, want, got.String(), host)
		}
	}

	// Not literal addresses: resolvers treat these as names (or refuse them).
	for _, host := range []string{
		"", ".", "example.com", "gw-1.factory.local", "localhost",
		"1.2.3.4.5", "1..2", ".1.2.3", "1.2.3.4..",
		"256.1.1.1", "1.2.3.256", "1.65536.1", "1.16777216", "4294967296",
		"0xffffffffffffffffff", "99999999999999999999999",
		"08", "1.08", "0x", "0x.1", "1.0x", "0xg", "+1", "-1", " 1", "1 ", "1.2.3.4 x",
		"[127.0.0.1]", "[::1", "::1]", "[gw.local]", "[::1]:80", "::ffff:0xa9fea9fe",
		"169.254.169.254%eth0", "१२७.0.0.1",
	} {
		got, ok := netguard.ParseHost(host)
		assert.False(t, ok, "%q parsed as %s", host, got)
	}
}
