package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// README, Quick start: "On first run `make` writes `.env` (git-ignored)
// with a fresh `ENCRYPTION_KEY` ... Losing that key loses the stored
// gateway passwords"; Security: what gatewayd does not protect against is
// "someone with the database or the key file". make wrote that key file
// with the shell's umask (0644 here: readable by every user of the box),
// while the demo's admin token beside it is written 0600. The key opens
// every gateway password in the database: .env must be readable by its
// owner only, whatever the umask. (Found by an audit, helper 3, whose test this is.)
func TestMakeWritesDotenvForItsOwnerOnly(t *testing.T) {
	_, err := exec.LookPath("make")
	require.NoError(t, err, "make is needed (README: the quick start runs through it)")
	makefile, err := filepath.Abs(filepath.Join("..", "..", "Makefile"))
	require.NoError(t, err)
	dir := t.TempDir()
	cmd := exec.Command("make", "-f", makefile, "-C", dir, ".env")
	cmd.Env = append(os.Environ(), "MAKEFLAGS=")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	fi, err := os.Stat(filepath.Join(dir, ".env"))
	require.NoError(t, err)
	assert.Zero(t, fi.Mode().Perm()&0o077, ".env (ENCRYPTION_KEY) is %v: readable beyond its owner", fi.Mode().Perm())
}
