package main

import (
	"bytes"
	"fmt"
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

// scripts/demo.sh, the script behind `make run`, traps EXIT INT TERM to
// stop "both" (ctcsim and gatewayd). In run mode it started gatewayd as
// `./bin/gatewayd serve 2>&1 | tee … &`, so the pid it recorded (and
// signalled, and waited for) was tee's. Stopped by SIGTERM (a supervisor,
// `kill`, `timeout`), the script never signalled gatewayd: gatewayd was
// killed by SIGPIPE at its next log line (no graceful stop), or, logging
// nothing (LOG_LEVEL=warn), stayed running on the API port while the
// script hung in its cleanup's `wait`. A Ctrl-C in a terminal (SIGINT to
// the whole foreground process group) must stop gatewayd gracefully too:
// gatewayd takes a second signal as "stop at once". (Found by an audit,
// helper 4, whose test this is; the Ctrl-C case is ours.)
func TestDemoScriptStopsGatewaydGracefully(t *testing.T) {
	for _, tc := range []struct {
		name, logLevel string
		group          bool // the signal goes to the script's whole process group, as a terminal's Ctrl-C does
		sig            syscall.Signal
	}{
		{"SIGTERM: gatewayd stops gracefully", "", false, syscall.SIGTERM},
		{"SIGTERM at LOG_LEVEL=warn: nothing is left running", "warn", false, syscall.SIGTERM},
		{"Ctrl-C: gatewayd stops gracefully", "", true, syscall.SIGINT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := demoTree(t)
			apiPort, simPort := testutil.FreePort(t), testutil.FreePort(t)
			env := []string{
				"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
				"API_HOST=127.0.0.1", "API_PORT=" + strconv.Itoa(apiPort),
				"CTCSIM_LISTEN=127.0.0.1:" + strconv.Itoa(simPort),
				"DATABASE_URL=" + tmpl.New(t), "ENCRYPTION_KEY=" + testutil.KeyBase64,
			}
			if tc.logLevel != "" {
				env = append(env, "LOG_LEVEL="+tc.logLevel)
			}
			var out testutil.SyncBuffer
			sh := exec.Command("bash", filepath.Join(root, "scripts", "demo.sh"), "run")
			sh.Env, sh.Stdout, sh.Stderr = env, &out, &out
			sh.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			require.NoError(t, sh.Start())
			pgid := sh.Process.Pid
			exited := make(chan struct{})
			go func() { _ = sh.Wait(); close(exited) }()
			var children []int // the script's, each in a process group of its own
			t.Cleanup(func() { // whatever is left of what this test started
				for _, pid := range children {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
				<-exited
			})

			testutil.Eventually(t, func() bool { return strings.Contains(out.String(), "Ctrl-C stops it") },
				90*time.Second, "the demo never got going:\n%s", out.String())
			gw, sim := childOf(t, pgid, "gatewayd"), childOf(t, pgid, "ctcsim")
			children = append(children, gw, sim)
			require.NotZero(t, gw, "no gatewayd among the demo's processes")

			// What a supervisor, `kill PID` or `timeout` sends the script,
			// or a terminal sends its foreground process group.
			target := pgid
			if tc.group {
				target = -pgid
			}
			require.NoError(t, syscall.Kill(target, tc.sig))

			gone := testutil.Poll(func() bool { return !alive(gw) && !alive(sim) }, 20*time.Second)
			scriptDone := testutil.Poll(func() bool {
				select {
				case <-exited:
					return true
				default:
					return false
				}
			}, 5*time.Second)
			assert.True(t, gone, "gatewayd (pid %d) or ctcsim (pid %d) still runs 20 s after the demo script got %s; API port %d open: %v",
				gw, sim, tc.sig, apiPort, listening(apiPort))
			assert.True(t, scriptDone, "the demo script still runs after %s (its cleanup waits for a gatewayd it never signalled)", tc.sig)
			if tc.logLevel == "" {
				log, err := os.ReadFile(filepath.Join(root, ".data", "demo", "gatewayd.log"))
				require.NoError(t, err)
				assert.True(t, strings.Contains(string(log), "shutting down") && strings.Contains(string(log), " stopped"),
					"gatewayd did not stop gracefully (no \"shutting down\", no \"stopped\": it was never signalled, and died at a write to the dead tee); its log ends:\n%s",
					tail(string(log), 3))
			}
		})
	}
}

// demoTree is a copy of the scripts the demo runs, with the binaries it
// runs built into its bin/, so the test leaves the checkout alone.
func demoTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "scripts"), 0o755))
	for _, name := range []string{"demo.sh", "dotenv.sh"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "scripts", name))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(root, "scripts", name), b, 0o755))
	}
	for _, cmd := range []string{"gatewayd", "ctcsim", "demo"} {
		var errb bytes.Buffer
		build := exec.Command("go", "build", "-o", filepath.Join(root, "bin", cmd), "./cmd/"+cmd)
		build.Dir = filepath.Join("..", "..")
		build.Stderr = &errb
		require.NoError(t, build.Run(), errb.String())
	}
	return root
}

// childOf is the pid of the child of parent named comm, or 0.
func childOf(t *testing.T, parent int, comm string) int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	require.NoError(t, err)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		name, ppid, _, ok := procStat(pid)
		if ok && ppid == parent && name == comm {
			return pid
		}
	}
	return 0
}

// procStat reads /proc/PID/stat: the command name, the parent's pid and
// the state letter.
func procStat(pid int) (comm string, ppid int, state byte, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0, 0, false
	}
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < 0 {
		return "", 0, 0, false
	}
	f := strings.Fields(s[end+1:]) // state ppid pgrp …
	if len(f) < 2 {
		return "", 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	return s[open+1 : end], ppid, f[0][0], true
}

// alive: the process exists and is not a zombie.
func alive(pid int) bool {
	_, _, state, ok := procStat(pid)
	return ok && state != 'Z'
}

func listening(port int) bool {
	c, err := net.DialTimeout("tcp", fmt.Sprint("127.0.0.1:", port), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
