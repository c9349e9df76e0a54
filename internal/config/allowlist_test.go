package config

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// (Found by an audit, helper 1, whose test this is.)
// README, Configuration: GATEWAY_ALLOWED_NETWORKS are the "CIDRs gateways
// may be dialed in ...; link-local (cloud metadata), unspecified and
// multicast addresses are never dialed". An allowlist whose entry lies
// wholly in those ranges can never allow a dial, yet it is taken without
// a word: gatewayd starts, and every gateway there sits in BACKOFF with
// "address not allowed" (plant devices that autoconfigure link-local
// addresses are the likely case). A bad value "stops the process at start
// with one line naming every bad variable"; an entry that can never match
// is one an operator wants named at start, not found in each gateway's
// last_error.
func TestAllowlistEntryThatCanNeverBeDialedIsRefused(t *testing.T) {
	for _, entry := range []string{"169.254.0.0/16", "fe80::/10", "224.0.0.0/4", "0.0.0.0/32"} {
		_, err := Load("", []string{"ENCRYPTION_KEY=" + goodKey, "GATEWAY_ALLOWED_NETWORKS=10.20.0.0/16," + entry})
		if assert.Error(t, err, "GATEWAY_ALLOWED_NETWORKS entry %s can never be dialed", entry) {
			assert.Contains(t, err.Error(), "GATEWAY_ALLOWED_NETWORKS")
			assert.Contains(t, err.Error(), entry)
		}
	}
}
