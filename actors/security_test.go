package actors_test

import (
	"context"
	"crypto/tls"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/ctc/ctctest"
	"github.com/ctcgw/gatewayd/internal/netguard"
	"github.com/ctcgw/gatewayd/internal/testutil"
	"github.com/ctcgw/gatewayd/store"
)

// addAt registers a gateway called name whose URL is url (a simulator of
// the test's own, or a name only the test's resolver knows).
func addAt(t *testing.T, h *actorstest.Harness, name, url string) gatewayd.Gateway {
	t.Helper()
	email, pw := actorstest.Credentials(name)
	g, err := h.Store.CreateGateway(context.Background(), store.NewGateway{FactoryID: h.Factory, GatewayID: name, Name: name,
		URL: url, Email: email, Password: pw})
	require.NoError(t, err)
	h.Runtime.GatewayStarted(g.Target(pw))
	return g
}

func lastError(st gatewayd.Status) string {
	if st.LastError == nil {
		return ""
	}
	return *st.LastError
}

// A wss:// gateway is verified against the configured roots: with the
// test CA it authenticates; without it the handshake fails, the gateway
// backs off with a certificate error, and nothing is sent to it.
func TestWSSVerifiesTheGatewayCertificate(t *testing.T) {
	caFile, serverTLS := testutil.NewTestCA(t)
	sim, err := ctctest.NewTLSServer("127.0.0.1:0", serverTLS)
	require.NoError(t, err)
	t.Cleanup(sim.Close)
	email, pw := actorstest.Credentials("secure")
	sg := sim.Add("secure", ctctest.Config{Email: email, Password: pw})
	require.True(t, strings.HasPrefix(sg.URL(), "wss://"), sg.URL())

	roots, err := netguard.RootCAs(caFile)
	require.NoError(t, err)
	cfg := actorstest.FastConfig()
	cfg.TLS = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	h := newHarness(t, cfg)
	g := addAt(t, h, "secure", sg.URL())
	h.WaitState(g.ID, gatewayd.StateAuthenticated, 5*time.Second)
	assert.Contains(t, actorstest.LastLogin(sg), email)

	// The same gateway seen by a runtime that trusts only the system roots.
	untrusted, usg := "untrusted", sim.Add("untrusted", ctctest.Config{Email: "untrusted@example.com", Password: "pw-untrusted"})
	h2 := actorstest.New(t, tmpl, actorstest.FastConfig())
	g2 := addAt(t, h2, untrusted, usg.URL())
	st := h2.WaitState(g2.ID, gatewayd.StateBackoff, 5*time.Second)
	assert.Contains(t, lastError(st), "certificate")
	assert.Zero(t, usg.Stats().Logins, "no credentials go to an unverified peer")
}

// Dials go through the policy after name resolution: a name that resolves
// to the metadata service, or an address outside the allowlist, is never
// dialed and the gateway backs off with "address not allowed"; an allowed
// simulator authenticates.
func TestDialPolicyAppliesToTheResolvedAddress(t *testing.T) {
	cfg := actorstest.FastConfig()
	cfg.BackoffInitial, cfg.BackoffMax = 50*time.Millisecond, 100*time.Millisecond
	resolver := testutil.StaticResolver{
		"gw.plant.test":       {netip.MustParseAddr("127.0.0.1")},
		"metadata.plant.test": {netip.MustParseAddr("169.254.169.254")},
		"mapped.plant.test":   {netip.MustParseAddr("::ffff:169.254.169.254")},
	}
	cfg.NetDial = (&netguard.Dialer{Policy: netguard.NewPolicy([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}),
		Resolver: resolver, Timeout: time.Second}).DialContext
	h := newHarness(t, cfg)
	port := h.Sim.Addr()[strings.LastIndex(h.Sim.Addr(), ":"):]

	email, pw := actorstest.Credentials("allowed")
	h.Sim.Add("allowed", ctctest.Config{Email: email, Password: pw})
	ok := addAt(t, h, "allowed", "ws://gw.plant.test"+port+"/gw/allowed")
	h.WaitState(ok.ID, gatewayd.StateAuthenticated, 5*time.Second)

	for name, host := range map[string]string{
		"metadata": "metadata.plant.test", "mapped": "mapped.plant.test",
		// Reachable, but outside GATEWAY_ALLOWED_NETWORKS.
		"outside": "[::1]",
	} {
		g := addAt(t, h, name, "ws://"+host+port+"/gw/"+name)
		st := h.WaitState(g.ID, gatewayd.StateBackoff, 5*time.Second)
		assert.Equal(t, "address not allowed", lastError(st), name)
	}
	// Refused dials are a policy decision, not a peer's fault: the
	// allowed gateway never noticed.
	assert.Equal(t, gatewayd.StateAuthenticated, h.Status(ok.ID).State)
}

// The name verified is the URL's host: the frame meter's TLS connection
// is made by gatewayd, not gorilla/websocket, and must verify as gorilla
// did. A certificate of the trusted CA for 127.0.0.1 does not do for
// wss://localhost.
func TestWSSVerifiesTheGatewaysName(t *testing.T) {
	caFile, serverTLS := testutil.NewTestCA(t, "127.0.0.1")
	sim, err := ctctest.NewTLSServer("127.0.0.1:0", serverTLS)
	require.NoError(t, err)
	t.Cleanup(sim.Close)
	roots, err := netguard.RootCAs(caFile)
	require.NoError(t, err)
	cfg := actorstest.FastConfig()
	cfg.TLS = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	h := newHarness(t, cfg)

	email, pw := actorstest.Credentials("named")
	sg := sim.Add("named", ctctest.Config{Email: email, Password: pw})
	byName := strings.Replace(sg.URL(), "wss://127.0.0.1:", "wss://localhost:", 1)
	require.NotEqual(t, sg.URL(), byName)
	g := addAt(t, h, "named", byName)
	st := h.WaitState(g.ID, gatewayd.StateBackoff, 5*time.Second)
	assert.Contains(t, lastError(st), "certificate")
	assert.Zero(t, sg.Stats().Logins, "no credentials go to a peer of another name")

	email2, pw2 := actorstest.Credentials("by-address")
	sg2 := sim.Add("by-address", ctctest.Config{Email: email2, Password: pw2})
	g2 := addAt(t, h, "by-address", sg2.URL())
	h.WaitState(g2.ID, gatewayd.StateAuthenticated, 5*time.Second)
}
