package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/internal/testutil"
)

// scripts/demo.sh once (`make demo`), three things an audit (helper 1)
// found: a gatewayd that exits at once (a bad variable) was waited for
// ~20 s and reported as "did not become ready"; the demo talked to
// 127.0.0.1 whatever API_HOST said, so `API_HOST=::1 make run` failed;
// it stopped the simulator before gatewayd, so gatewayd logged every
// demo gateway's connection as lost during its own shutdown; and it
// ended by printing the web UI's URL and a curl line for the gatewayd it
// was stopping.
func TestDemoScriptOnce(t *testing.T) {
	root := demoTree(t)
	demoEnv := func(extra ...string) []string {
		return append([]string{
			"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
			"API_PORT=" + strconv.Itoa(testutil.FreePort(t)),
			"CTCSIM_LISTEN=127.0.0.1:" + strconv.Itoa(testutil.FreePort(t)),
			"DATABASE_URL=" + tmpl.New(t), "ENCRYPTION_KEY=" + testutil.KeyBase64,
		}, extra...)
	}

	t.Run("a gatewayd that exits at once is reported at once, with its status", func(t *testing.T) {
		start := time.Now()
		out, err := runDemoScript(t, root, demoEnv("API_HOST=127.0.0.1", "LOG_LEVEL=bogus"), 60*time.Second)
		require.Error(t, err, out)
		assert.Contains(t, out, "gatewayd exited with status 2")
		assert.Contains(t, out, `LOG_LEVEL must be one of`, "the end of gatewayd's log")
		assert.Less(t, time.Since(start), 15*time.Second, "the demo kept polling a gatewayd that had exited:\n%s", out)
	})

	// At ::1 where the machine has an IPv6 loopback (the case that
	// failed), else at 127.0.0.1: either way the demo must talk to
	// API_HOST, and gatewayd must stop before the simulator.
	host, hostURL := "::1", "[::1]"
	if ln, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		host, hostURL = "127.0.0.1", "127.0.0.1"
	} else {
		ln.Close()
	}
	t.Run("API_HOST="+host+": the demo talks to gatewayd there, and gatewayd stops first", func(t *testing.T) {
		env := demoEnv("API_HOST=" + host)
		out, err := runDemoScript(t, root, env, 90*time.Second)
		require.NoError(t, err, out)
		assert.Equal(t, 3, strings.Count(out, "AUTHENTICATED"), out)
		port := strings.TrimPrefix(env[2], "API_PORT=")
		assert.Contains(t, out, "http://"+hostURL+":"+port+"/", "the UI's address is where gatewayd listened")
		assert.NotContains(t, out, "curl -H", "make demo printed a curl line for a gatewayd it stops")
		log, err := os.ReadFile(filepath.Join(root, ".data", "demo", "gatewayd.log"))
		require.NoError(t, err)
		assert.Contains(t, string(log), " stopped")
		assert.NotContains(t, string(log), "connection lost",
			"the simulator was stopped before gatewayd; gatewayd's log ends:\n%s", tail(string(log), 5))
	})
}

// runDemoScript runs scripts/demo.sh once in root and returns its output and
// exit error; it fails the test if the script runs longer than within.
func runDemoScript(t *testing.T, root string, env []string, within time.Duration) (string, error) {
	t.Helper()
	var out testutil.SyncBuffer
	sh := exec.Command("bash", filepath.Join(root, "scripts", "demo.sh"), "once")
	sh.Env, sh.Stdout, sh.Stderr = env, &out, &out
	sh.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, sh.Start())
	pgid := sh.Process.Pid
	done := make(chan error, 1)
	go func() { done <- sh.Wait() }()
	var err error
	finished := testutil.Poll(func() bool {
		select {
		case err = <-done:
			return true
		default:
			return false
		}
	}, within)
	if !finished {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
		t.Fatalf("demo.sh once still ran after %s:\n%s", within, out.String())
	}
	return out.String(), err
}
