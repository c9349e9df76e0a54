package netguard_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/internal/netguard"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

func TestRootCAsErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pool, err := netguard.RootCAs("")
	require.NoError(t, err)
	assert.NotNil(t, pool)

	_, err = netguard.RootCAs(filepath.Join(dir, "missing.pem"))
	assert.ErrorContains(t, err, "missing.pem")

	secret := "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END PRIVATE KEY-----\n"
	for name, content := range map[string]string{
		"empty.pem":   "",
		"text.pem":    "not a certificate at all: secret-key-material",
		"key.pem":     secret,
		"corrupt.pem": "-----BEGIN CERTIFICATE-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END CERTIFICATE-----\n",
	} {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
		_, err := netguard.RootCAs(path)
		if assert.Error(t, err, name) {
			assert.Contains(t, err.Error(), path, "names the file")
			assert.NotContains(t, err.Error(), "secret-key-material", "never its content")
			assert.NotContains(t, err.Error(), "c2VjcmV0", "never its content")
		}
	}

	// A file with the CA after other blocks still counts.
	caFile, _ := testutil.NewTestCA(t, "gw.test")
	caPEM, err := os.ReadFile(caFile)
	require.NoError(t, err)
	mixed := filepath.Join(dir, "mixed.pem")
	require.NoError(t, os.WriteFile(mixed, append([]byte("comment\n"+secret), caPEM...), 0o600))
	_, err = netguard.RootCAs(mixed)
	assert.NoError(t, err)
}

func TestWSSVerifiesAgainstRootCAs(t *testing.T) {
	t.Parallel()
	// The certificate names gw.test and 127.0.0.1. impostor.test resolves
	// to 127.0.0.1 too, so its handshake failing proves that the name
	// verified is the URL's, not the address netguard dialed.
	caFile, serverTLS := testutil.NewTestCA(t, "gw.test", "127.0.0.1")
	echoer := &echoServer{}
	srv := httptest.NewUnstartedServer(echoer)
	srv.TLS = serverTLS
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // rejected handshakes are the point
	srv.StartTLS()
	t.Cleanup(srv.Close)
	_, port, err := net.SplitHostPort(strings.TrimPrefix(srv.URL, "https://"))
	require.NoError(t, err)

	withCA, err := netguard.RootCAs(caFile)
	require.NoError(t, err)
	systemOnly, err := netguard.RootCAs("")
	require.NoError(t, err)
	guard, s, _ := newDialer(t, "127.0.0.0/8", map[string][]string{
		"gw.test":       {"127.0.0.1"},
		"impostor.test": {"127.0.0.1"},
		"metadata.test": {"169.254.169.254"},
	})

	var (
		unknownAuthority x509.UnknownAuthorityError
		wrongHost        x509.HostnameError
	)
	for _, tc := range []struct {
		name    string
		roots   *x509.CertPool
		guarded bool
		host    string
		check   func(t *testing.T, err error)
	}{
		{"CA file", withCA, false, "127.0.0.1", nil},
		{"system roots only", systemOnly, false, "127.0.0.1", func(t *testing.T, err error) { assert.ErrorAs(t, err, &unknownAuthority) }},
		{"CA file through netguard", withCA, true, "gw.test", nil},
		{"system roots only through netguard", systemOnly, true, "gw.test", func(t *testing.T, err error) { assert.ErrorAs(t, err, &unknownAuthority) }},
		{"other name, same address, through netguard", withCA, true, "impostor.test", func(t *testing.T, err error) { assert.ErrorAs(t, err, &wrongHost) }},
		{"denied name through netguard", withCA, true, "metadata.test", func(t *testing.T, err error) { assert.ErrorIs(t, err, netguard.ErrNotAllowed) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &websocket.Dialer{HandshakeTimeout: 5 * time.Second, TLSClientConfig: &tls.Config{RootCAs: tc.roots, MinVersion: tls.VersionTLS12}}
			if tc.guarded {
				d.NetDialContext = guard.DialContext
			}
			conn, resp, err := d.DialContext(context.Background(), "wss://"+net.JoinHostPort(tc.host, port)+"/gw", nil)
			if resp != nil {
				resp.Body.Close()
			}
			if tc.check != nil {
				require.Error(t, err)
				tc.check(t, err)
				return
			}
			require.NoError(t, err)
			defer conn.Close()
			echo(t, conn)
		})
	}
	assert.Equal(t, []string{"127.0.0.1:" + port, "gw.test:" + port}, echoer.Hosts(),
		"the Host header comes from the URL")
	assert.Equal(t, []string{"127.0.0.1:" + port, "127.0.0.1:" + port, "127.0.0.1:" + port}, s.Dials(),
		"netguard dialed the allowed names and refused the denied one before connecting")
}
