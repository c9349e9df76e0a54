package actors

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
)

// README, Configuration: "`GATEWAY_CA_FILE` | PEM certificates added to
// the system roots for verifying `wss://` gateways"; API.md §10: "wss://
// verifies the gateway's certificate against the system roots plus
// GATEWAY_CA_FILE (PEM) when set". A plant's gateways mostly carry
// certificates of the plant's own CA; a newcomer who registers one sees
// BACKOFF with "dial failed: tls: failed to verify certificate: x509:
// certificate signed by unknown authority" and nothing that names the
// setting that fixes it. The gateway's last_error must name
// GATEWAY_CA_FILE for an unknown authority (and only then: a name
// mismatch is not fixed by a CA). (Found by an audit, helper 3, whose test this is.)
func TestUnknownAuthorityNamesGatewayCAFile(t *testing.T) {
	unknown := &url.Error{Op: "Get", URL: "wss://10.0.0.5/gw", Err: &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}}
	got := describe(fmt.Errorf("websocket: %w", unknown))
	assert.Contains(t, got, "unknown authority")
	assert.Contains(t, got, "GATEWAY_CA_FILE", "last_error %q does not say which setting trusts the gateway's CA", got)

	mismatch := &tls.CertificateVerificationError{Err: x509.HostnameError{Certificate: &x509.Certificate{}, Host: "localhost"}}
	assert.NotContains(t, describe(mismatch), "GATEWAY_CA_FILE", "a name mismatch is not fixed by a CA file")
}
