package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// (Found by an audit, helper 5, whose test this is.) README, Configuration: a file's "keys are the variable
// names in lower case, unknown keys are rejected"; the YAML parser
// already refuses a key given twice ("mapping key already defined",
// TestFileErrors). A key given twice in two cases is neither refused nor
// reported: API_PORT and api_port are both taken for API_PORT and one
// of them is silently dropped (the lower-case one wins, whatever the
// order), so the operator's edit of the other has no effect.
// This fails while such a file loads without an error naming api_port.
func TestYAMLKeyGivenTwiceInTwoCases(t *testing.T) {
	for _, body := range []string{
		"API_PORT: 4001\napi_port: 4002\n",
		"api_port: 4002\nAPI_PORT: 4001\n",
		"api_port: 4002\nApi_Port: 4001\n",
	} {
		path := filepath.Join(t.TempDir(), "gatewayd.yaml")
		require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
		c, err := Load(path, []string{"ENCRYPTION_KEY=" + goodKey})
		if assert.Error(t, err, "%q loaded (API_PORT=%v): one of the two values was dropped silently", body, portOf(c)) {
			assert.Contains(t, err.Error(), "api_port", body)
		}
	}
}

func portOf(c *Config) any {
	if c == nil {
		return nil
	}
	return c.APIPort
}

// (Found by an audit, helper 5, whose test this is.) A list variable whose YAML list holds only empty
// entries (`[""]`, `[~]`) is taken as unset, i.e. the default: for
// gateway_allowed_networks that is "anywhere" and for cors_origin "*".
// The same entries beside a real one are refused ("entry 1 is empty"),
// and the environment's equivalent (GATEWAY_ALLOWED_NETWORKS=",",
// CORS_ORIGIN=",") is refused too; a templated file whose only network
// came out empty fails open instead of stopping the start.
// This fails while those lists load without an error.
func TestYAMLListOfOnlyEmptyEntries(t *testing.T) {
	// The environment refuses the same thing (the behaviour to match).
	_, err := Load("", []string{"ENCRYPTION_KEY=" + goodKey, "GATEWAY_ALLOWED_NETWORKS=,"})
	require.ErrorContains(t, err, "GATEWAY_ALLOWED_NETWORKS")
	_, err = Load("", []string{"ENCRYPTION_KEY=" + goodKey, "CORS_ORIGIN=,"})
	require.ErrorContains(t, err, "CORS_ORIGIN")

	for _, tc := range []struct{ body, name string }{
		{"gateway_allowed_networks: [\"\"]\n", "GATEWAY_ALLOWED_NETWORKS"},
		{"gateway_allowed_networks: [~]\n", "GATEWAY_ALLOWED_NETWORKS"},
		{"gateway_allowed_networks:\n  -\n", "GATEWAY_ALLOWED_NETWORKS"},
		{"cors_origin: [\"\"]\n", "CORS_ORIGIN"},
		{"cors_origin: [~]\n", "CORS_ORIGIN"},
	} {
		path := filepath.Join(t.TempDir(), "gatewayd.yaml")
		require.NoError(t, os.WriteFile(path, []byte(tc.body), 0o600))
		c, err := Load(path, []string{"ENCRYPTION_KEY=" + goodKey})
		if assert.Error(t, err, "%q loaded as the default (networks %v, origins %q)", tc.body, netsOf(c), originsOf(c)) {
			assert.Contains(t, err.Error(), lower(tc.name), tc.body)
		}
	}
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func netsOf(c *Config) any {
	if c == nil {
		return nil
	}
	return c.AllowedNetworks
}

func originsOf(c *Config) any {
	if c == nil {
		return nil
	}
	return c.CORSOrigins
}

// (Found by an audit, helper 5, whose test this is.) YAML numbers are printed back with Go's %v before the
// variable's check, so the same kind of value is taken or refused by its
// size: `api_port: 1e3` is API_PORT 1000, but `events_buffer: 1e6` is
// refused as "got \"1e+06\"", a text the file never held, and a date is
// quoted as "2026-12-07 00:00:00 +0000 UTC". An operator expects a value
// to be judged (and quoted) as written. This fails while 1e6 is refused
// where 1e3 is taken.
func TestYAMLNumbersJudgedAsWritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatewayd.yaml")
	require.NoError(t, os.WriteFile(path, []byte("api_port: 1e3\n"), 0o600))
	c, err := Load(path, []string{"ENCRYPTION_KEY=" + goodKey})
	require.NoError(t, err)
	require.Equal(t, 1000, c.APIPort)

	require.NoError(t, os.WriteFile(path, []byte("events_buffer: 1e6\n"), 0o600))
	c, err = Load(path, []string{"ENCRYPTION_KEY=" + goodKey})
	if assert.NoError(t, err, "1e3 is taken for API_PORT, so 1e6 should be for EVENTS_BUFFER") {
		assert.Equal(t, 1_000_000, c.EventsBuffer)
	}
	assert.NotContains(t, errText(err), "1e+06", "the error quotes a value the file does not hold")
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
