package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/internal/testdb"
)

// TestScenariosAtSmallSize runs every scenario at a size CI can afford, so
// the tool keeps working. Figures are printed, never asserted.
func TestScenariosAtSmallSize(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "gatewayd")
	build := exec.Command("go", "build", "-o", bin, "../gatewayd")
	build.Stderr = os.Stderr
	require.NoError(t, build.Run())

	var out, progress bytes.Buffer
	o := &options{gatewayd: bin, database: testdb.BaseURL(), gateways: 50, concurrency: 8, duration: 500 * time.Millisecond,
		creates: 20, crashes: 20, crudRows: 50, soak: 2 * time.Second, soakGateways: 20, settle: 100 * time.Millisecond, out: &out, progress: &progress,
		churn: 40, churnConnected: 20, churnBase: 20, churnStorm: 30 * time.Second, churnWatch: time.Second, churnDelete: "factory"}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	require.NoError(t, run(ctx, o, []string{"all"}), progress.String())

	figures := map[string]float64{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		f := strings.Fields(line)
		require.Len(t, f, 3, "name value unit: %q", line)
		v, err := strconv.ParseFloat(f[1], 64)
		require.NoError(t, err, line)
		figures[f[0]] = v
	}
	for _, name := range []string{"coldstart_all_authenticated", "rss_per_gateway", "status_p99", "status_list_p50",
		"storm_all_reauthenticated", "create_to_authenticated_p99", "crash_to_authenticated_p99",
		"crud_get_gateway_rate", "crud_post_gateway_rate", "crud_health_rate", "crud_get_factory_rate", "churn_rss_end",
		"churn_live_heap_end", "soak_goroutines_end"} {
		assert.Contains(t, figures, name)
	}
	// Functional outcomes, not speed: every gateway came back every time.
	assert.Equal(t, 50.0, figures["coldstart_gateways"])
	assert.Equal(t, 50.0, figures["storm_gateways"])
	assert.Equal(t, 20.0, figures["create_to_authenticated_count"])
	assert.Equal(t, 20.0, figures["crash_to_authenticated_count"])
	assert.Equal(t, 0.0, figures["soak_gateways_without_one_socket"])
	assert.Equal(t, 40.0, figures["churn_created"])

	require.Error(t, run(ctx, o, []string{"nonsense"}))
}
