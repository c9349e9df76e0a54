package testutil_test

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/internal/testutil"
)

// handshake runs a TLS handshake over loopback TCP between serverTLS and a
// client that trusts only the CA in caFile and expects serverName. (An
// in-memory net.Pipe would deadlock: it has no buffer, and on a rejected
// certificate both ends write at once.)
func handshake(t *testing.T, caFile string, serverTLS *tls.Config, serverName string) error {
	t.Helper()
	caPEM, err := os.ReadFile(caFile)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(caPEM), "the CA file holds a PEM certificate")

	ln, err := tls.Listen("tcp", "127.0.0.1:0", serverTLS)
	require.NoError(t, err)
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		_ = conn.(*tls.Conn).Handshake() // fails when the client rejects the certificate
	}()
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: roots, ServerName: serverName})
	if err == nil {
		conn.Close()
	}
	<-done
	return err
}

func TestNewTestCA(t *testing.T) {
	t.Parallel()
	caFile, serverTLS := testutil.NewTestCA(t)
	for _, name := range []string{"127.0.0.1", "::1", "localhost"} {
		assert.NoError(t, handshake(t, caFile, serverTLS, name), name)
	}
	var hostErr x509.HostnameError
	assert.ErrorAs(t, handshake(t, caFile, serverTLS, "example.com"), &hostErr)

	caFile, serverTLS = testutil.NewTestCA(t, "gw.test")
	assert.NoError(t, handshake(t, caFile, serverTLS, "gw.test"))
	assert.ErrorAs(t, handshake(t, caFile, serverTLS, "127.0.0.1"), &hostErr)

	otherCA, _ := testutil.NewTestCA(t, "gw.test")
	var authErr x509.UnknownAuthorityError
	assert.ErrorAs(t, handshake(t, otherCA, serverTLS, "gw.test"), &authErr, "each CA is its own")
}
