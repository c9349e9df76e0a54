package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/ctc/ctctest"
	"github.com/ctcgw/gatewayd/internal/testdb"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

var tmpl *testdb.Template

func TestMain(m *testing.M) { testdb.Exit(testdb.Run(m, &tmpl)) }

var key = testutil.KeyBase64

func TestVersionAndUsage(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	assert.Equal(t, 0, run([]string{"version"}, nil, &out, &errb))
	assert.Equal(t, "gatewayd dev\n", out.String())
	assert.Equal(t, 2, run([]string{"frobnicate"}, nil, &out, &errb))
	assert.Contains(t, errb.String(), `unknown command "frobnicate"`)
}

func TestBadConfigurationStopsWithOneLine(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	code := run([]string{"serve"}, []string{"ENCRYPTION_KEY=" + key, "API_PORT=99999", "DATABASE_URL=postgres://u:hunter2@h/db"}, &out, &errb)
	assert.Equal(t, 2, code)
	lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
	require.Len(t, lines, 1)
	assert.Contains(t, lines[0], "API_PORT must be a whole number from 1 to 65535")
	assert.NotContains(t, errb.String(), "hunter2")

	errb.Reset()
	assert.Equal(t, 2, run(nil, []string{"ENCRYPTION_KEY=short"}, &out, &errb))
	assert.Contains(t, errb.String(), "openssl rand -base64 32")
}

func TestMigrateCommand(t *testing.T) {
	t.Parallel()
	url := tmpl.New(t)
	var out, errb bytes.Buffer
	assert.Equal(t, 0, run([]string{"migrate"}, []string{"ENCRYPTION_KEY=" + key, "DATABASE_URL=" + url}, &out, &errb), errb.String())
	assert.Contains(t, errb.String(), "migrations applied")
	assert.NotContains(t, errb.String(), "postgres:postgres@", "the password is masked")
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestSIGTERMClosesEveryGatewayWith1000 runs the real binary.
func TestSIGTERMClosesEveryGatewayWith1000(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "gatewayd")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	require.NoError(t, build.Run())

	sim, err := ctctest.NewServer("127.0.0.1:0")
	require.NoError(t, err)
	defer sim.Close()
	port := freePort(t)
	logs := &testutil.SyncBuffer{}
	cmd := exec.Command(bin, "serve")
	cmd.Env = []string{"DATABASE_URL=" + tmpl.New(t), "ENCRYPTION_KEY=" + key, fmt.Sprintf("API_PORT=%d", port),
		"API_HOST=127.0.0.1", "SHUTDOWN_TIMEOUT=5s", "GATEWAY_PING_INTERVAL=200ms"}
	cmd.Stderr = logs
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	api := fmt.Sprintf("http://127.0.0.1:%d/api", port)
	require.Eventually(t, func() bool {
		resp, err := http.Get(api + "/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, 20*time.Second, 50*time.Millisecond, "gatewayd never became ready")

	post := func(path string, body any) map[string]any {
		raw, _ := json.Marshal(body)
		resp, err := http.Post(api+path, "application/json", bytes.NewReader(raw))
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		require.Equal(t, 201, resp.StatusCode, string(b))
		var m map[string]any
		require.NoError(t, json.Unmarshal(b, &m))
		return m
	}
	org := post("/organizations", map[string]any{"name": "O"})["id"]
	factory := post("/factories", map[string]any{"organization_id": org, "name": "F"})["id"]
	var sims []*ctctest.Gateway
	for i := range 20 {
		name := fmt.Sprintf("gw-%02d", i)
		sg := sim.Add(name, ctctest.Config{Email: "e@example.com", Password: "p"})
		sims = append(sims, sg)
		post("/gateways", map[string]any{"factory_id": factory, "gateway_id": name, "name": name, "url": sg.URL(),
			"email": "e@example.com", "password": "p"})
	}
	require.Eventually(t, func() bool {
		resp, err := http.Get(api + "/gateways/status")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var body struct{ Counts map[string]int }
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return body.Counts["AUTHENTICATED"] == 20
	}, 10*time.Second, 50*time.Millisecond)

	start := time.Now()
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-exited:
		require.NoError(t, err, "exit code 0\n%s", logs.String())
	case <-time.After(6 * time.Second):
		t.Fatalf("did not exit within SHUTDOWN_TIMEOUT\n%s", logs.String())
	}
	assert.Less(t, time.Since(start), 5*time.Second)
	for i, sg := range sims {
		require.Eventually(t, func() bool { return sg.Stats().Open == 0 }, 2*time.Second, 10*time.Millisecond)
		assert.Equal(t, []int{1000}, sg.Stats().CloseCodes, "gateway %d", i)
	}
	assert.NotContains(t, logs.String(), `"password"`)
}
