package main

import (
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/internal/testdb"
)

// (Found by an audit, helper 1, whose test this is.)
// README, Quick start: "`make run`, `demo`, `migrate`, `load` and `db` read
// `.env` for what the environment leaves unset ... (`make test` does not:
// its database is `TEST_DATABASE_URL`'s, else the environment's
// `DATABASE_URL`.)"
//
// But `make test` depends on `make db` (scripts/db.sh), which reads .env
// and makes sure of .env's DATABASE_URL, not TEST_DATABASE_URL's. With a
// .env whose DATABASE_URL no longer works (an old checkout's, a
// colleague's), `make test` stops before any test runs, though
// TEST_DATABASE_URL names a server that answers.
//
// The test runs `make test` in a copy of the repository's top level
// (symlinks) whose .env names a DATABASE_URL PostgreSQL refuses, with
// TEST_DATABASE_URL set to the test server, GO=true (no build) and
// scripts/test.sh replaced by a stub, so nothing but the Makefile's own
// steps runs.
func TestMakeTestUsesTestDatabaseURLNotDotEnv(t *testing.T) {
	// The README's test command is make test: make is there.
	_, err := exec.LookPath("make")
	require.NoError(t, err, "make, which runs this suite")
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	dir := t.TempDir()
	entries, err := os.ReadDir(root)
	require.NoError(t, err)
	for _, e := range entries {
		switch e.Name() {
		case ".env", ".data", "bin", "scripts", ".git":
			continue
		}
		require.NoError(t, os.Symlink(filepath.Join(root, e.Name()), filepath.Join(dir, e.Name())))
	}
	// scripts/: every script but test.sh, which is a stub.
	require.NoError(t, os.Mkdir(filepath.Join(dir, "scripts"), 0o755))
	scripts, err := os.ReadDir(filepath.Join(root, "scripts"))
	require.NoError(t, err)
	for _, s := range scripts {
		if s.Name() == "test.sh" {
			continue
		}
		require.NoError(t, os.Symlink(filepath.Join(root, "scripts", s.Name()), filepath.Join(dir, "scripts", s.Name())))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "scripts", "test.sh"),
		[]byte("#!/usr/bin/env bash\necho STUB-TESTS-RAN\n"), 0o755))

	good, err := url.Parse(testdb.BaseURL())
	require.NoError(t, err)
	// The same server, a role that does not exist: PostgreSQL answers and
	// refuses, so db.sh stops at once (no Docker, no private cluster).
	bad := *good
	bad.User = url.UserPassword("audit_no_such_role", "x")
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".env"),
		[]byte("ENCRYPTION_KEY=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\nDATABASE_URL="+bad.String()+"\n"), 0o600))

	cmd := exec.Command("make", "--no-print-directory", "-C", dir, "test", "GO=true")
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "DATABASE_URL=") || strings.HasPrefix(kv, "TEST_DATABASE_URL=") || strings.HasPrefix(kv, "MAKEFLAGS=") {
			continue
		}
		env = append(env, kv)
	}
	cmd.Env = append(env, "TEST_DATABASE_URL="+good.String())
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "make test with a good TEST_DATABASE_URL stopped at .env's DATABASE_URL:\n%s", out)
	require.Contains(t, string(out), "STUB-TESTS-RAN")
}
