package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// (Found by an audit, helper 5, whose test this is.) README, Configuration: gatewayd reads "defaults, then an
// optional YAML file (`--config FILE` or `GATEWAYD_CONFIG` ...), then the
// environment"; Quick start: `make run` "runs `make db` (uses the
// PostgreSQL at `DATABASE_URL` ...; then creates the `gatewayd` database
// if missing)", and gatewayd's own start-up warning says "the database
// does not exist yet; ... (create it, or `make db` does)".
//
// With GATEWAYD_CONFIG naming a file whose database_url is X (and no
// DATABASE_URL in the environment), gatewayd runs on X, but ensuredb (make
// db) makes sure of gatewayd's default database instead: `make demo` then
// waits 30 s for a database nobody creates and fails ("gatewayd did not
// become ready"). This fails while `ensuredb -url` does not print the
// URL gatewayd would use.
func TestEnsuredbURLFollowsGatewaydConfig(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "ensuredb")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)

	const fromFile = "postgres://postgres@127.0.0.1:5432/from_the_file?sslmode=disable"
	const fromEnv = "postgres://postgres@127.0.0.1:5432/from_the_env?sslmode=disable"
	file := filepath.Join(t.TempDir(), "gatewayd.yaml")
	require.NoError(t, os.WriteFile(file, []byte("database_url: "+fromFile+"\n"), 0o600))

	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DATABASE_URL=") && !strings.HasPrefix(kv, "GATEWAYD_CONFIG=") {
			env = append(env, kv)
		}
	}
	run := func(extra ...string) string {
		cmd := exec.Command(bin, "-url")
		cmd.Env = append(append([]string{}, env...), extra...)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		return strings.TrimSpace(string(out))
	}
	assert.Equal(t, fromFile, run("GATEWAYD_CONFIG="+file), "the file's database_url, as gatewayd would use")
	assert.Equal(t, fromEnv, run("GATEWAYD_CONFIG="+file, "DATABASE_URL="+fromEnv), "the environment wins, as for gatewayd")
	assert.Equal(t, fromEnv, run("DATABASE_URL="+fromEnv))
}
