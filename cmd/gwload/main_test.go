package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/internal/testdb"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// The scenarios run at a size CI can afford, so the tool keeps working.
// Figures are printed, never asserted for speed; only functional outcomes
// (every gateway came back, every row is there) are.

var tmpl *testdb.Template

// built is set once buildOnce has run: TestMain removes the binary only
// if a test built it.
var built atomic.Bool

var buildOnce = sync.OnceValues(func() (string, error) {
	if bin := testutil.GatewaydBinary(); bin != "" {
		return bin, nil // make test's, not removed
	}
	built.Store(true)
	dir, err := os.MkdirTemp("", "gwload-test-*")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "gatewayd")
	build := exec.Command("go", "build", "-o", bin, "../gatewayd")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// Each scenario test mostly waits on its own gatewayd, simulator and
// database: they all run at once.
func TestMain(m *testing.M) {
	probeMain() // the readings scenario's status probe is this binary too
	testutil.Parallel(12)
	code := testdb.Run(m, &tmpl)
	if built.Load() {
		if bin, err := buildOnce(); err == nil {
			_ = os.RemoveAll(filepath.Dir(bin))
		}
	}
	os.Exit(code)
}

// smallOptions is every knob at CI size. The load phases are paced (each
// client sends one request every 20 ms): they go through every request
// shape and check every answer, at a fraction of the CPU that saturating
// the machine for each phase would take from the rest of the suite.
func smallOptions(t *testing.T) (*options, *bytes.Buffer, *bytes.Buffer) {
	bin, err := buildOnce()
	require.NoError(t, err)
	var out, progress bytes.Buffer
	return &options{gatewayd: bin, database: testdb.BaseURL(), gateways: 50, concurrency: 8, duration: 500 * time.Millisecond, pace: 20 * time.Millisecond,
		creates: 20, crashes: 20, crudRows: 50, pgbenchScale: 1, soak: 2 * time.Second, soakGateways: 20, settle: 100 * time.Millisecond, out: &out, progress: &progress,
		churn: 40, churnConnected: 20, churnBase: 20, churnStorm: 30 * time.Second, churnWatch: time.Second, churnDelete: "factory",
		freshDatabase: func() string { return tmpl.New(t) }}, &out, &progress
}

// runSmall runs the named scenarios with o and returns the figures, after
// checking that every line is "name value unit".
func runSmall(t *testing.T, o *options, out, progress *bytes.Buffer, names ...string) map[string]float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	require.NoError(t, run(ctx, o, names), progress.String())
	figures := map[string]float64{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		f := strings.Fields(line)
		require.Len(t, f, 3, "name value unit: %q", line)
		v, err := strconv.ParseFloat(f[1], 64)
		require.NoError(t, err, line)
		figures[f[0]] = v
	}
	return figures
}

func requireFigures(t *testing.T, figures map[string]float64, names ...string) {
	t.Helper()
	for _, name := range names {
		assert.Contains(t, figures, name)
	}
}

func TestSteadyScenariosAtSmallSize(t *testing.T) {
	t.Parallel()
	o, out, progress := smallOptions(t)
	figures := runSmall(t, o, out, progress, "coldstart", "status", "storm")
	requireFigures(t, figures, "coldstart_all_authenticated", "rss_per_gateway", "status_p99", "status_list_p50",
		"storm_all_reauthenticated")
	assert.Equal(t, 50.0, figures["coldstart_gateways"])
	assert.Equal(t, 50.0, figures["storm_gateways"])
}

// create and crash run after storm, which leaves its shared gatewayd:
// that one is stopped first, not left to run beside their measurements.
func TestCreateAndCrashScenariosAtSmallSize(t *testing.T) {
	t.Parallel()
	o, out, progress := smallOptions(t)
	o.gateways = 5
	figures := runSmall(t, o, out, progress, "storm", "create", "crash")
	requireFigures(t, figures, "create_to_authenticated_p99", "crash_to_authenticated_p99")
	assert.Equal(t, 20.0, figures["create_to_authenticated_count"])
	assert.Equal(t, 20.0, figures["crash_to_authenticated_count"])
	p := progress.String()
	stopped := strings.Index(p, "stopping the shared gatewayd")
	assert.True(t, stopped >= 0 && stopped < strings.Index(p, "== create"), "the shared gatewayd is stopped before create:\n%s", p)
}

func TestCRUDScenarioAtSmallSize(t *testing.T) {
	t.Parallel()
	o, out, progress := smallOptions(t)
	figures := runSmall(t, o, out, progress, "crud")
	requireFigures(t, figures, "crud_get_gateway_rate", "crud_post_gateway_rate", "crud_health_rate", "crud_get_factory_rate")
	if _, err := exec.LookPath("pgbench"); err == nil {
		// The references ran: each statement is valid SQL on this schema.
		requireFigures(t, figures, "crud_get_factory_pgbench_same_sql_rate", "crud_list_factories_pgbench_same_sql_rate",
			"crud_post_factory_pgbench_same_sql_rate", "crud_put_factory_pgbench_same_sql_rate", "crud_post_gateway_pgbench_same_sql_rate")
	}
}

func TestChurnAndSoakScenariosAtSmallSize(t *testing.T) {
	t.Parallel()
	o, out, progress := smallOptions(t)
	figures := runSmall(t, o, out, progress, "churn", "soak")
	requireFigures(t, figures, "churn_rss_end", "churn_live_heap_end", "soak_goroutines_end")
	assert.Equal(t, 0.0, figures["soak_gateways_without_one_socket"])
	assert.Equal(t, 40.0, figures["churn_created"])
}

func TestUnknownScenarioIsAnError(t *testing.T) {
	t.Parallel()
	o, _, _ := smallOptions(t)
	require.Error(t, run(context.Background(), o, []string{"nonsense"}))
}

// gatewaydChildren lists the gatewayd processes this test process started
// that are still running (zombies excluded).
func gatewaydChildren(t *testing.T, bin string) []int {
	t.Helper()
	var pids []int
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(d + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(f) < 2 || f[0] == "Z" || f[1] != strconv.Itoa(os.Getpid()) {
			continue
		}
		if exe, err := os.Readlink(d + "/exe"); err == nil && exe == bin {
			pid, _ := strconv.Atoi(filepath.Base(d))
			pids = append(pids, pid)
		}
	}
	return pids
}

// run keeps one shared env for coldstart, status and storm; coldstart
// makes a new one, and used to assign it over the shared one without
// closing it: `gwload status coldstart` (or `coldstart coldstart`, or any
// order with status or storm first) left the first gatewayd, with all its
// gateways connected, running through coldstart's measurements (its idle
// RSS, cold start and RSS per gateway measured beside it) and after gwload
// had returned, its database never dropped. Not parallel: it counts every
// gatewayd this test process started.
// (Found by an audit, helper 6.)
func TestRunLeavesNoGatewaydRunning(t *testing.T) {
	o, out, progress := smallOptions(t)
	o.gateways = 5
	_ = runSmall(t, o, out, progress, "status", "coldstart")
	left := gatewaydChildren(t, o.gatewayd)
	for _, pid := range left { // a leak of this test's own: end it by its pid
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	assert.Empty(t, left, "gatewayd processes still running after run returned")
}
