package actors_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/ctc/ctctest"
)

// testCA makes a CA and a leaf for 127.0.0.1 valid in [notBefore, notAfter].
func testCA(t *testing.T, notBefore, notAfter time.Time) (*x509.CertPool, *tls.Config) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	now := time.Now()
	caT := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(48 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caT, caT, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	leafT := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: notBefore, NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafT, ca, &leafKey.PublicKey, caKey)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool, &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}}}
}

// API.md §10: wss:// verifies the gateway's certificate. An expired
// certificate of a trusted CA, for the right address, is refused: BACKOFF
// with a certificate error, and no credentials are sent.
// (Checked by an audit, helper 4, whose test this is.)
func TestExpiredGatewayCertificateIsRefused(t *testing.T) {
	now := time.Now()
	pool, serverTLS := testCA(t, now.Add(-48*time.Hour), now.Add(-time.Hour))
	sim, err := ctctest.NewTLSServer("127.0.0.1:0", serverTLS)
	require.NoError(t, err)
	t.Cleanup(sim.Close)
	email, pw := actorstest.Credentials("expired")
	sg := sim.Add("expired", ctctest.Config{Email: email, Password: pw})

	cfg := actorstest.FastConfig()
	cfg.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	h := newHarness(t, cfg)
	g := addAt(t, h, "expired", sg.URL())
	st := h.WaitState(g.ID, gatewayd.StateBackoff, 5*time.Second)
	assert.Contains(t, lastError(st), "certificate")
	assert.Zero(t, sg.Stats().Logins, "no credentials go to a peer with an expired certificate")

	// Control: the same CA with a valid leaf authenticates.
	pool2, serverTLS2 := testCA(t, now.Add(-time.Hour), now.Add(time.Hour))
	sim2, err := ctctest.NewTLSServer("127.0.0.1:0", serverTLS2)
	require.NoError(t, err)
	t.Cleanup(sim2.Close)
	email2, pw2 := actorstest.Credentials("valid")
	sg2 := sim2.Add("valid", ctctest.Config{Email: email2, Password: pw2})
	cfg2 := actorstest.FastConfig()
	cfg2.TLS = &tls.Config{RootCAs: pool2, MinVersion: tls.VersionTLS12}
	h2 := actorstest.New(t, tmpl, cfg2)
	g2 := addAt(t, h2, "valid", sg2.URL())
	h2.WaitState(g2.ID, gatewayd.StateAuthenticated, 5*time.Second)
}

// A gateway configured wss:// that answers plain ws never gets a login:
// no fallback to an insecure connection. It keeps backing off.
// (Checked by an audit, helper 4, whose test this is.)
func TestWSSGatewayAnsweringPlainNeverFallsBack(t *testing.T) {
	cfg := actorstest.FastConfig()
	cfg.BackoffInitial, cfg.BackoffMax = 20*time.Millisecond, 50*time.Millisecond
	h := newHarness(t, cfg)
	email, pw := actorstest.Credentials("plain")
	sg := h.Sim.Add("plain", ctctest.Config{Email: email, Password: pw})
	require.True(t, strings.HasPrefix(sg.URL(), "ws://"))
	g := addAt(t, h, "plain", "wss://"+strings.TrimPrefix(sg.URL(), "ws://"))
	st := h.WaitState(g.ID, gatewayd.StateBackoff, 5*time.Second)
	assert.NotEmpty(t, lastError(st))
	// Several attempts later, still no login and never authenticated.
	require.Eventually(t, func() bool { return h.Status(g.ID).ReconnectAttempts >= 3 }, 10*time.Second, 5*time.Millisecond)
	assert.Zero(t, sg.Stats().Logins, "no login over plain ws for a wss gateway")
	assert.Zero(t, sg.Stats().Accepted, "no websocket was ever opened")
	assert.NotEqual(t, gatewayd.StateAuthenticated, h.Status(g.ID).State)
}

// A redirect answer to the WebSocket handshake is not followed: the
// gateway backs off, and the redirect's target gets nothing.
// (Checked by an audit, helper 4, whose test this is.)
func TestHandshakeRedirectIsNotFollowed(t *testing.T) {
	cfg := actorstest.FastConfig()
	h := newHarness(t, cfg)
	email, pw := actorstest.Credentials("target")
	target := h.Sim.Add("target", ctctest.Config{Email: email, Password: pw})
	for _, code := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		redir := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL(), code)
		}))
		t.Cleanup(redir.Close)
		name := "redirect-" + http.StatusText(code)
		g := addAt(t, h, strings.ReplaceAll(name, " ", "-"), "ws://"+strings.TrimPrefix(redir.URL, "http://")+"/gw/x")
		st := h.WaitState(g.ID, gatewayd.StateBackoff, 5*time.Second)
		assert.NotEmpty(t, lastError(st), name)
	}
	assert.Zero(t, target.Stats().Accepted, "the redirect's target was never dialed")
}
