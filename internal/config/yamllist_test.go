package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// (Found by an audit, helper 1, whose test this is.)
// README, Configuration: the file's "keys are the variable names in lower
// case". Three of them are lists (CORS_ORIGIN, GATEWAY_ALLOWED_NETWORKS,
// ENCRYPTION_KEYS_PREVIOUS: "comma-separated"). In YAML an operator writes
// a list as a list; gatewayd reads it as the one string Go prints for a
// slice ("[a b]") and refuses it with a message that quotes that string as
// if it were one bad entry, e.g.
//
//	CORS_ORIGIN entry 1 must be an origin such as https://ui.example.com,
//	got "[https://a.example https://b.example]"
//
// An operator expects the list to be taken (or, at the least, to be told
// that the value must be one comma-separated string).
func TestYAMLListForAListVariable(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gatewayd.yaml")
	require.NoError(t, os.WriteFile(path, []byte(
		"cors_origin:\n  - https://a.example\n  - https://b.example\n"+
			"gateway_allowed_networks: [10.20.0.0/16, 192.168.7.0/24]\n"), 0o600))
	c, err := Load(path, []string{"ENCRYPTION_KEY=" + goodKey})
	require.NoError(t, err, "a YAML list for a comma-separated variable")
	assert.Equal(t, []string{"https://a.example", "https://b.example"}, c.CORSOrigins)
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16"), netip.MustParsePrefix("192.168.7.0/24")}, c.AllowedNetworks)
}

// A YAML list for a variable that takes one value is refused by name,
// not quoted back as Go prints a slice; an entry that is itself a list or
// a mapping is refused too, and an empty list counts as unset.
func TestYAMLListForAOneValueVariable(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gatewayd.yaml")
	require.NoError(t, os.WriteFile(path, []byte(
		"api_port: [3000, 3001]\n"+
			"encryption_keys_previous:\n  - [a, b]\n"), 0o600))
	_, err := Load(path, []string{"ENCRYPTION_KEY=" + goodKey})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "api_port must be one value, not a list")
	assert.Contains(t, err.Error(), "encryption_keys_previous entry 1 must be one value, not a list or a mapping")
	assert.NotContains(t, err.Error(), "[3000 3001]")

	require.NoError(t, os.WriteFile(path, []byte("cors_origin: []\n"), 0o600))
	c, err := Load(path, []string{"ENCRYPTION_KEY=" + goodKey})
	require.NoError(t, err)
	assert.Equal(t, []string{"*"}, c.CORSOrigins, "an empty list is unset: the default")
}

// ListVariables names variables that exist and say they are
// comma-separated.
func TestListVariablesAreCommaSeparated(t *testing.T) {
	help := map[string]string{}
	for _, v := range Variables {
		help[v.Name] = v.Help + " " + v.Default
	}
	for name := range ListVariables {
		assert.Contains(t, help[name], "comma-separated", name)
	}
}
