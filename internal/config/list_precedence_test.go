package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// (Checked by an audit, helper 5, whose test this is.) README, Configuration: "defaults, then an
// optional YAML file (`--config FILE` or `GATEWAYD_CONFIG` ...), then the
// environment; later wins. An empty variable counts as unset." For the
// list variables written as YAML lists: the environment's comma-separated
// value replaces the file's whole list (not merged with it), an empty
// variable leaves the file's list, and --config wins over GATEWAYD_CONFIG.
// It would catch a merge of env and file lists, an empty variable that
// cleared an allowlist (failing open), or the wrong file taken.
func TestListPrecedenceFileThenEnv(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.yaml")
	b := filepath.Join(dir, "b.yaml")
	require.NoError(t, os.WriteFile(a, []byte(
		"cors_origin: [https://a.example, https://b.example]\n"+
			"gateway_allowed_networks:\n  - 10.20.0.0/16\n  - 192.168.7.0/24\n"), 0o600))
	require.NoError(t, os.WriteFile(b, []byte("api_port: 4100\n"), 0o600))

	c, err := Load(a, []string{"ENCRYPTION_KEY=" + goodKey,
		"CORS_ORIGIN=https://c.example", "GATEWAY_ALLOWED_NETWORKS=", "GATEWAYD_CONFIG=" + b})
	require.NoError(t, err)
	assert.Equal(t, []string{"https://c.example"}, c.CORSOrigins, "the environment's list replaces the file's")
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16"), netip.MustParsePrefix("192.168.7.0/24")},
		c.AllowedNetworks, "an empty variable leaves the file's allowlist")
	assert.Equal(t, 3000, c.APIPort, "--config wins over GATEWAYD_CONFIG: b.yaml is not read")
}
