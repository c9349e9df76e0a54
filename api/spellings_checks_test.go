package api_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/ctcgw/gatewayd/api"
)

// API.md §10: "A URL whose literal address is denied is 400 at the API",
// denied "in any spelling (IPv4-mapped IPv6, decimal, octal)". Spellings
// beyond those the project's own test lists, with no allowlist set.
// (Checked by an audit, helper 4, whose test this is.)
func TestDeniedLiteralSpellingsAreRefused(t *testing.T) {
	e := newEnv(t, api.Options{})
	f := e.factory(e.org("O"), "F")
	for _, host := range []string{
		"169.254.169.254.", "2852039166.", "0xA9FEA9FE", "0XA9.0XFE.0XA9.0XFE", "0251.0376.0251.0376.",
		"00000251.0376.0251.0376", "0xa9.0xfe.43518", "169.16689662", "[0:0:0:0:0:ffff:a9fe:a9fe]",
		"[::ffff:a9fe:a9fe%25lo]", "[fe80::1%25eth0]", "[FE80::1]", "[febf::1]", "[FF02::1]", "[ff0e::1]",
		"100.100.100.200", "[fd00:ec2::254]", "0x64.0x64.0x64.0xc8", "[64:ff9b::169.254.169.254]",
		"[::ffff:0.0.0.0]", "0.1.2.3", "255.255.255.255", "239.255.255.250", "[::ffff:224.0.0.1]",
	} {
		for _, scheme := range []string{"ws://", "wss://"} {
			u := scheme + host + ":8080/gw/x"
			r := e.do("POST", "/api/gateways", map[string]any{"factory_id": f, "gateway_id": "bad", "name": "Bad", "url": u,
				"email": "ops@example.com", "password": "pw"})
			assert.Equal(t, 400, r.status, "%s: %s", u, r.body)
		}
	}
	// Userinfo tricks: the host is what follows the '@'; userinfo is refused.
	for _, u := range []string{
		"ws://127.0.0.1:80@169.254.169.254/x", "ws://user@127.0.0.1/x", "ws://user:pw@127.0.0.1/x",
		"ws://169.254.169.254\\@127.0.0.1/x", "ws://127.0.0.1%40169.254.169.254/x",
	} {
		r := e.do("POST", "/api/gateways", map[string]any{"factory_id": f, "gateway_id": "bad", "name": "Bad", "url": u,
			"email": "ops@example.com", "password": "pw"})
		assert.Equal(t, 400, r.status, "%s: %s", u, r.body)
	}
}
