package main

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/internal/testutil"
	"github.com/ctcgw/gatewayd/store"
)

// README, Quick start: "A second instance beside a running one also needs
// a database of its own (`make db` creates it): a second gatewayd on the
// same database waits for the first to stop". The newcomer's mistake this
// covers: `API_PORT=3001 make run` beside a colleague's `make run`, with
// the port changed but not DATABASE_URL. gatewayd then waits as a standby
// (ready 503 "another gatewayd runs this database's gateways; waiting for
// it to stop"), and the demo said only "gatewayd did not become ready; see
// .data/demo/gatewayd.log" after 20 s, a log the two demos share and
// write over each other. The demo must say why gatewayd is not ready: the
// reason /api/ready gives. (Found by an audit, helper 3, whose test this is.)
func TestDemoScriptSaysWhyGatewaydIsNotReady(t *testing.T) {
	root := demoTree(t)
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
		"API_HOST=127.0.0.1", "API_PORT=" + strconv.Itoa(testutil.FreePort(t)),
		"CTCSIM_LISTEN=127.0.0.1:" + strconv.Itoa(testutil.FreePort(t)),
		"ENCRYPTION_KEY=" + testutil.KeyBase64,
	}
	url := tmpl.New(t)
	env = append(env, "DATABASE_URL="+url)

	// Another gatewayd runs this database: hold its instance lock.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	defer pool.Close()
	in, held, err := store.TryInstance(ctx, pool)
	require.NoError(t, err)
	require.True(t, held, "the test could not take the instance lock")
	defer in.Close()

	out, err := runDemoScript(t, root, env, 90*time.Second)
	require.Error(t, err, out)
	assert.Contains(t, out, "did not become ready", out)
	assert.Contains(t, out, "another gatewayd runs this database's gateways",
		"the demo did not say why gatewayd never became ready:\n%s", out)
}
