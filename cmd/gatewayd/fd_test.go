package main

import (
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRunningOutOfFileDescriptorsIsSurvived runs the real binary under an
// open-file limit of 256, takes every descriptor it has with idle
// connections, lets them go, and expects it to serve again and to stop
// cleanly: fasthttp's accept loop returns on EMFILE, and gatewayd with it.
func TestRunningOutOfFileDescriptorsIsSurvived(t *testing.T) {
	t.Parallel()
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("needs prlimit (util-linux) to start gatewayd under a low open-file limit")
	}
	gw := startServe(t, []string{"DATABASE_URL=" + tmpl.New(t), "ENCRYPTION_KEY=" + key, "SHUTDOWN_TIMEOUT=5s"},
		prlimit, "--nofile=256:256")
	logs := gw.logs
	addr := fmt.Sprintf("127.0.0.1:%d", gw.port)
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	healthy := func() bool {
		resp, err := client.Get("http://" + addr + "/api/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}
	require.Eventually(t, healthy, 20*time.Second, 50*time.Millisecond, "gatewayd never served\n%s", logs)
	// Log lines reach stderr up to 50 ms late (internal/logging batches them).
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), `"soft":256,"hard":256`) }, 10*time.Second,
		10*time.Millisecond, "the limit is logged at start\n%s", logs)

	// 400 idle connections: more than the 256 descriptors gatewayd has.
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 400 {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			break // refused: gatewayd stopped listening (checked below)
		}
		conns = append(conns, c)
	}
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "too many open files") }, 10*time.Second, 20*time.Millisecond,
		"gatewayd never ran out of descriptors\n%s", logs)
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	require.Eventually(t, healthy, 20*time.Second, 50*time.Millisecond, "gatewayd does not serve again\n%s", logs)
	select {
	case <-gw.done:
		t.Fatalf("gatewayd exited: %v\n%s", gw.err, logs)
	default:
	}
	assert.NotContains(t, logs.String(), "stopped with an error")

	require.NoError(t, gw.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-gw.done:
		require.NoError(t, gw.err, "exit code 0\n%s", logs)
	case <-time.After(10 * time.Second):
		t.Fatalf("did not exit after SIGTERM\n%s", logs)
	}
}
