package main

import (
	"bytes"
	"context"
	"github.com/ctcgw/gatewayd/store"
	"github.com/jackc/pgx/v5"
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

// A token command migrates as serve does, but never under a running serve
// (which holds the instance lock): a newer binary's token create migrated
// the schema of the database an older serve ran on (found by an audit,
// helper 5). It says to migrate instead, and touches nothing.
func TestTokenCommandsDoNotMigrateUnderARunningServe(t *testing.T) {
	t.Parallel()
	dbURL := tmpl.New(t)
	env := []string{"ENCRYPTION_KEY=" + key, "DATABASE_URL=" + dbURL, "LOG_FORMAT=json"}
	startServe(t, env)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	version := func() int {
		var v int
		require.NoError(t, conn.QueryRow(ctx, `SELECT version FROM `+store.VersionTable).Scan(&v))
		return v
	}
	at := version()
	// As if this binary were newer than the schema the serve runs on.
	_, err = conn.Exec(ctx, `UPDATE `+store.VersionTable+` SET version = version - 1`)
	require.NoError(t, err)
	defer conn.Exec(ctx, `UPDATE `+store.VersionTable+` SET version = $1`, at) //nolint:errcheck // the test's own cleanup

	var out, errb bytes.Buffer
	code := run([]string{"token", "list"}, env, &out, &errb)
	assert.NotEqual(t, 0, code, "%s%s", out.String(), errb.String())
	assert.Contains(t, errb.String(), "gatewayd migrate", "says what to do")
	assert.Equal(t, at-1, version(), "no migration ran under the serve")
}

// Revoking an id no token has says so in plain words, as the usage errors
// do; it printed only the JSON log line (found by an audit, helper 4).
func TestTokenRevokeOfAnUnknownIDSaysSo(t *testing.T) {
	t.Parallel()
	env := []string{"ENCRYPTION_KEY=" + key, "DATABASE_URL=" + tmpl.New(t), "LOG_FORMAT=json"}
	var out, errb bytes.Buffer
	code := run([]string{"token", "revoke", "3f0c9a1e-0000-4000-8000-000000000000"}, env, &out, &errb)
	assert.Equal(t, 1, code)
	assert.Contains(t, errb.String(), "gatewayd: no token has that id: `gatewayd token list` shows them")
}
