package netguard

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

// RootCAs returns the pool wss:// dials verify gateway certificates
// against: the system roots plus every certificate in caFile
// (GATEWAY_CA_FILE) when it is set, since gateways on a factory network
// usually carry certificates from a private CA. Where the system pool is
// unavailable, the pool starts empty rather than failing, so a configured
// caFile still works.
//
// Every CERTIFICATE block in caFile must parse, and there must be at least
// one: a CA file that silently adds nothing would surface only later as
// puzzling handshake failures. Other PEM blocks are ignored. Errors name
// the file, never its content.
func RootCAs(caFile string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if caFile == "" {
		return pool, nil
	}
	rest, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	n := 0
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("CA file %s: certificate %d: %w", caFile, n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("CA file %s: no PEM certificate found", caFile)
	}
	return pool, nil
}
