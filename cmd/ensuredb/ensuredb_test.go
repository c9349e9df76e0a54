package main

import (
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/internal/testdb"
)

// README, Configuration: DATABASE_URL is a "PostgreSQL connection URL
// (`pool_max_conns` etc. allowed)", and gatewayd itself accepts one. README,
// Quick start: "`make run` runs `make db` (uses the PostgreSQL at
// `DATABASE_URL` if it answers ...)". make db is `ensuredb -check`, then
// `ensuredb`: both connected with pgx.Connect, which sent pool_max_conns to
// the server as a run-time parameter; the server refused the login
// (FATAL: unrecognized configuration parameter "pool_max_conns"), so a
// PostgreSQL that answered was taken for absent: make db went on to Docker
// and a private cluster on the same port, and `make run`/`make demo`/
// `make migrate`/`make test` stopped with an error. (Found by an audit,
// helper 6, whose test this is.)
func TestEnsuredbAcceptsPoolMaxConnsInDatabaseURL(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "ensuredb")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)

	u, err := url.Parse(testdb.BaseURL())
	require.NoError(t, err)
	q := u.Query()
	q.Set("pool_max_conns", "4")
	u.RawQuery = q.Encode()

	for _, args := range [][]string{{"-check"}, {"-wait", "2s"}} {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "DATABASE_URL="+u.String())
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "ensuredb %v with DATABASE_URL=%s (a server that answers):\n%s", args, u.Redacted(), out)
	}
}

// A server that answers and refuses the login: -check says so (make db
// then stops instead of starting another server on the same port), and
// the wait gives up at once with the reason, not after -wait with "does
// not answer". (Found by an audit, helper 4.)
func TestEnsuredbTellsARefusedLoginFromNoServer(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "ensuredb")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	u, err := url.Parse(testdb.BaseURL())
	require.NoError(t, err)
	u.User = url.User("gwt_no_such_role_ensuredb")

	cmd := exec.Command(bin, "-check")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+u.String())
	stdout, err := cmd.Output()
	require.Error(t, err)
	require.Equal(t, "refused: the login was refused\n", string(stdout))

	cmd = exec.Command(bin, "-wait", "20s")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+u.String())
	combined, err := cmd.CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(combined), "answers and refused")
	require.Contains(t, string(combined), "SQLSTATE 28000")
}
