package netguard_test

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/internal/netguard"
)

func TestParseNetworks(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want []string
		err  string
	}{
		{in: "", want: nil},
		{in: "   ", want: nil},
		{in: "10.0.0.0/8", want: []string{"10.0.0.0/8"}},
		{in: " 10.0.0.0/8 , 192.168.1.0/24,fd00::/8 ", want: []string{"10.0.0.0/8", "192.168.1.0/24", "fd00::/8"}},
		{in: "192.168.1.7, 2001:db8::1", want: []string{"192.168.1.7/32", "2001:db8::1/128"}},
		{in: "10.0.0.0/8,", err: "entry 2 is empty"},
		{in: "10.0.0.0/8,,127.0.0.0/8", err: "entry 2 is empty"},
		{in: "10.0.0.0/8, 10.0.0.0/33", err: `"10.0.0.0/33"`},
		{in: "gateway.local", err: `"gateway.local"`},
		{in: "010.0.0.0/8", err: `"010.0.0.0/8"`},
		{in: "fe80::1%eth0", err: `"fe80::1%eth0"`},
	} {
		got, err := netguard.ParseNetworks(tc.in)
		if tc.err != "" {
			assert.ErrorContains(t, err, tc.err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		var s []string
		for _, p := range got {
			s = append(s, p.String())
		}
		assert.Equal(t, tc.want, s, tc.in)
	}
}

// deniedAlways is every spelling of an address no policy may allow.
var deniedAlways = []string{
	"169.254.169.254", "169.254.0.1", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe",
	"0.0.0.0", "0.1.2.3", "::", "::ffff:0.0.0.0",
	"224.0.0.1", "239.255.255.250", "255.255.255.255", "ff02::1", "ff05::2",
	"fe80::1", "fe80::1%eth0", "febf::1", "fd00:ec2::254",
	"100.100.100.200", "::ffff:100.100.100.200",
}

func TestPolicyAllowed(t *testing.T) {
	t.Parallel()
	everything := netguard.NewPolicy(nil)
	var nilPolicy *netguard.Policy
	for _, s := range deniedAlways {
		a := netip.MustParseAddr(s)
		assert.False(t, everything.Allowed(a), s)
		assert.False(t, nilPolicy.Allowed(a), "nil policy: %s", s)
	}
	assert.False(t, everything.Allowed(netip.Addr{}), "zero address")
	for _, s := range []string{"127.0.0.1", "::1", "10.0.0.1", "192.168.1.10", "8.8.8.8", "2001:db8::1", "fd00:ec2::253", "64:ff9b::a00:1", "::ffff:10.0.0.1", "100.100.100.199", "100.64.0.1"} {
		a := netip.MustParseAddr(s)
		assert.True(t, everything.Allowed(a), s)
		assert.True(t, nilPolicy.Allowed(a), "nil policy: %s", s)
	}

	nets, err := netguard.ParseNetworks("127.0.0.0/8, 10.1.0.0/16, ::ffff:192.168.0.0/112, 169.254.0.0/16, fd00::/8")
	require.NoError(t, err)
	p := netguard.NewPolicy(nets)
	for s, want := range map[string]bool{
		"127.0.0.1":              true,
		"127.255.0.9":            true,
		"::ffff:127.0.0.1":       true,
		"10.1.2.3":               true,
		"192.168.7.7":            true, // an IPv4-mapped prefix means its IPv4 range
		"fd12::1":                true,
		"::1":                    false,
		"10.0.0.1":               false,
		"10.2.0.1":               false,
		"8.8.8.8":                false,
		"169.254.169.254":        false, // the always-denied set wins over the list
		"::ffff:169.254.169.254": false,
		"fd00:ec2::254":          false,
	} {
		assert.Equal(t, want, p.Allowed(netip.MustParseAddr(s)), s)
	}
}

// An IPv4-mapped address is judged as its IPv4 form: allowed when its
// IPv4 net is listed, refused when it is not, whichever way the net is
// written.
func TestPolicyJudgesMappedAddressesAsIPv4(t *testing.T) {
	t.Parallel()
	for _, allowed := range []string{"10.0.0.0/8", "::ffff:10.0.0.0/104"} {
		nets, err := netguard.ParseNetworks(allowed)
		require.NoError(t, err)
		p := netguard.NewPolicy(nets)
		for s, want := range map[string]bool{
			"::ffff:10.0.0.1":   true,
			"10.0.0.1":          true,
			"::ffff:11.0.0.1":   false,
			"::ffff:127.0.0.1":  false,
			"::ffff:a00:1":      true, // ::ffff:10.0.0.1 in hex
			"::ffff:10.0.0.1%0": true, // a zone changes nothing
		} {
			assert.Equal(t, want, p.Allowed(netip.MustParseAddr(s)), "%s allowed by %s", s, allowed)
		}
	}
}

// An allowlist entry wholly inside the always-denied set allows nothing
// (config refuses it); one that only overlaps it still allows the rest.
func TestNeverAllowed(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]string{
		"169.254.0.0/16":         "169.254.0.0/16",
		"169.254.169.254/32":     "169.254.0.0/16",
		"0.0.0.0/32":             "0.0.0.0/8",
		"224.0.0.0/4":            "224.0.0.0/4",
		"239.1.0.0/16":           "224.0.0.0/4",
		"fe80::/10":              "fe80::/10",
		"fe80::/64":              "fe80::/10",
		"ff02::/16":              "ff00::/8",
		"::/128":                 "::/128",
		"::ffff:169.254.0.0/112": "169.254.0.0/16",
		"64:ff9b::a9fe:0/112":    "169.254.0.0/16",
		"100.100.100.200/32":     "100.100.100.200/32",
		"10.0.0.0/8":             "",
		"0.0.0.0/0":              "",
		"::/0":                   "",
		"169.0.0.0/8":            "",
		"100.64.0.0/10":          "",
		"fd00::/8":               "",
		"64:ff9b::/96":           "",
		"64:ff9b::a00:0/104":     "",
	} {
		d, ok := netguard.NeverAllowed(netip.MustParsePrefix(s))
		if want == "" {
			assert.False(t, ok, "%s: reported inside %s", s, d)
			continue
		}
		if assert.True(t, ok, s) {
			assert.Equal(t, want, d.String(), s)
		}
	}
}
