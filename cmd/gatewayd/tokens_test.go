package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// README (Security, "Choices where the contract is silent"): "**`name`** (of
// an organization, factory, gateway, equipment, sensor or token) is 1–255
// characters, not all white space". The API refuses a blank token name
// (400 `must not be blank`); `gatewayd token create --name '   '` made one,
// listed with an empty NAME column (found by an audit, helper 5).
func TestTokenCreateRefusesABlankName(t *testing.T) {
	t.Parallel()
	env := []string{"ENCRYPTION_KEY=" + key, "DATABASE_URL=" + tmpl.New(t), "LOG_FORMAT=json"}
	for _, name := range []string{"   ", "\t", " \u00a0 "} {
		var out, errb bytes.Buffer
		code := run([]string{"token", "create", "--name", name, "--role", "viewer"}, env, &out, &errb)
		assert.Equal(t, 2, code, "--name %q: %s%s", name, out.String(), errb.String())
		assert.NotContains(t, out.String(), "gwd_", "--name %q: no token is printed", name)
	}
	var list, errb bytes.Buffer
	require.Equal(t, 0, run([]string{"token", "list"}, env, &list, &errb), errb.String())
	assert.Len(t, strings.Split(strings.TrimSpace(list.String()), "\n"), 1, "no token was made:\n%s", list.String())
}
