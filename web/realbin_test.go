package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/ctc/ctctest"
	"github.com/ctcgw/gatewayd/internal/testutil"
	"github.com/ctcgw/gatewayd/store"
)

// (Written by an audit, helper 12.) The real gatewayd, run as an operator
// runs it: tests that stop it, restart it and cut its database.

// The real binary, once per test binary (or GATEWAYD_TEST_BIN).
var (
	realBinOnce sync.Once
	realBin     string
	realBinErr  error
)

func realGatewayd(t *testing.T) string {
	t.Helper()
	if p := testutil.GatewaydBinary(); p != "" {
		return p
	}
	realBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gatewayd-web-bin-")
		if err != nil {
			realBinErr = err
			return
		}
		realBin = filepath.Join(dir, "gatewayd")
		build := exec.Command("go", "build", "-o", realBin, "./cmd/gatewayd")
		build.Dir = ".."
		if out, err := build.CombinedOutput(); err != nil {
			realBinErr = fmt.Errorf("build gatewayd: %v: %s", err, out)
		}
	})
	require.NoError(t, realBinErr)
	return realBin
}

// realWorld is a database with a factory of simulated gateways, and the
// real gatewayd serving it on a fixed port, stopped (SIGTERM) and started
// again at will.
type realWorld struct {
	t     *testing.T
	bin   string
	pool  *pgxpool.Pool
	st    *store.Store
	dbURL string // what gatewayd is given
	port  int
	base  string
	env   []string
	sim   *ctctest.Server
	sims  map[string]*ctctest.Gateway // by gateway uuid
	fid   string
	log   *os.File

	cmd    *exec.Cmd
	exited chan error
}

func newRealWorld(t *testing.T, port int, env ...string) *realWorld {
	t.Helper()
	w := &realWorld{t: t, bin: realGatewayd(t), port: port, base: fmt.Sprintf("http://127.0.0.1:%d", port)}
	w.pool, w.dbURL = tmpl.Pool(t)
	sealer, err := store.NewSealer(testutil.Key)
	require.NoError(t, err)
	w.st = store.New(w.pool, sealer)
	ctx := context.Background()
	org, err := w.st.CreateOrganization(ctx, "Audit 12", nil)
	require.NoError(t, err)
	f, err := w.st.CreateFactory(ctx, store.NewFactory{OrganizationID: org.ID, Name: "Restart plant"})
	require.NoError(t, err)
	w.fid = f.ID.String()
	w.sim, err = ctctest.NewServer("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(w.sim.Close)
	w.env = env
	w.sims = map[string]*ctctest.Gateway{}
	w.log, err = os.Create(filepath.Join(t.TempDir(), "gatewayd.log"))
	require.NoError(t, err)
	t.Cleanup(func() {
		w.stop()
		if t.Failed() {
			b, _ := os.ReadFile(w.log.Name())
			if len(b) > 6000 {
				b = b[len(b)-6000:]
			}
			t.Logf("gatewayd's log (tail):\n%s", b)
		}
		w.log.Close()
	})
	return w
}

// addGateway writes a gateway row for a new simulated gateway.
func (w *realWorld) addGateway(name string) string {
	w.t.Helper()
	g := w.sim.Add(name, ctctest.Config{Email: "audit@example.com", Password: "pw-" + name})
	gw, err := w.st.CreateGateway(context.Background(), store.NewGateway{FactoryID: uuid.MustParse(w.fid), GatewayID: name, Name: name,
		URL: g.URL(), Email: "audit@example.com", Password: "pw-" + name})
	require.NoError(w.t, err)
	w.sims[gw.ID.String()] = g
	return gw.ID.String()
}

func (w *realWorld) start(dbURL string) {
	w.t.Helper()
	if dbURL == "" {
		dbURL = w.dbURL
	}
	cmd := exec.Command(w.bin, "serve")
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "DATABASE_URL=" + dbURL, "ENCRYPTION_KEY=" + testutil.KeyBase64,
		"API_HOST=127.0.0.1", "API_PORT=" + strconv.Itoa(w.port), "LOG_LEVEL=info", "CHAOS_ENABLED=true",
		"GATEWAY_BACKOFF_INITIAL=100ms", "GATEWAY_BACKOFF_MAX=500ms", "SHUTDOWN_TIMEOUT=5s"}, w.env...)
	cmd.Stdout, cmd.Stderr = w.log, w.log
	require.NoError(w.t, cmd.Start())
	w.cmd = cmd
	w.exited = make(chan error, 1)
	go func() { w.exited <- cmd.Wait() }()
	// Ready: the API proper serves (the runtime has loaded).
	ok := testutil.Poll(func() bool {
		select {
		case err := <-w.exited:
			w.exited <- err
			return true
		default:
		}
		res, err := http.Get(w.base + "/api/ready")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	}, 30*time.Second)
	require.True(w.t, ok, "gatewayd ready")
	select {
	case err := <-w.exited:
		w.t.Fatalf("gatewayd exited: %v", err)
	default:
	}
}

func (w *realWorld) stop() {
	if w.cmd == nil {
		return
	}
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.exited:
	case <-time.After(30 * time.Second):
		_ = w.cmd.Process.Kill()
		<-w.exited
	}
	w.cmd = nil
}

// do calls the API with token (may be "") and returns the status and body.
func (w *realWorld) do(method, path, token string) (int, []byte) {
	w.t.Helper()
	req, err := http.NewRequest(method, w.base+"/api"+path, nil)
	require.NoError(w.t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(w.t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

type statusList struct {
	Data []struct {
		ID    string `json:"id"`
		Name  string `json:"name"`
		State string `json:"state"`
	} `json:"data"`
	Counts map[string]int `json:"counts"`
}

func (w *realWorld) statuses(token string) statusList {
	w.t.Helper()
	code, b := w.do("GET", "/gateways/status", token)
	require.Equal(w.t, 200, code, "GET /api/gateways/status: %s", b)
	var l statusList
	require.NoError(w.t, json.Unmarshal(b, &l))
	return l
}

// waitStates waits until the API says every id in want is in its state.
func (w *realWorld) waitStates(token string, want map[string]string) {
	w.t.Helper()
	var got map[string]string
	ok := testutil.Poll(func() bool {
		got = map[string]string{}
		for _, s := range w.statuses(token).Data {
			got[s.ID] = s.State
		}
		for id, st := range want {
			if got[id] != st {
				return false
			}
		}
		return true
	}, 20*time.Second)
	require.True(w.t, ok, "states: want %v, got %v", want, got)
}

// fleetRowsJS is what the fleet page lists: "id state" per row, sorted,
// joined by commas; with the count per state the header shows.
const fleetRowsJS = `(() => {
  const rows = [...document.querySelectorAll('.row-name')].map(a =>
    a.getAttribute('href').replace('#/gateways/', '') + ' ' + a.parentElement.querySelector('.badge')?.textContent);
  rows.sort();
  return rows.join(',');
})()`

// apiRows is the same from GET /api/gateways/status.
func apiRows(l statusList) string {
	var rows []string
	for _, s := range l.Data {
		rows = append(rows, s.ID+" "+s.State)
	}
	sortStrings(rows)
	return strings.Join(rows, ",")
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// metricValue reads one sample of /metrics (with token).
func (w *realWorld) metricValue(token, name string) string {
	w.t.Helper()
	req, _ := http.NewRequest("GET", w.base+"/metrics", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "?"
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return "?"
}
