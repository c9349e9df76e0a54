package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/ctc/ctctest"
	"github.com/ctcgw/gatewayd/internal/logging"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// launch starts `gatewayd serve` on port without waiting for anything.
func launch(t *testing.T, port int, env []string) *served {
	t.Helper()
	s := &served{port: port, logs: &testutil.SyncBuffer{}, cmd: exec.Command(binary(t), "serve"), done: make(chan struct{})}
	s.cmd.Env = append(env[:len(env):len(env)], fmt.Sprintf("API_PORT=%d", port), "API_HOST=127.0.0.1")
	s.cmd.Stderr = s.logs
	require.NoError(t, s.cmd.Start())
	go func() { s.err = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() { _ = s.cmd.Process.Kill(); <-s.done })
	return s
}

// startedMicros is the process's start as its "gatewayd starting" line
// says it, in microseconds (the line has milliseconds), and the end of
// that millisecond.
func startedMicros(t *testing.T, logs string) (from, to uint64) {
	t.Helper()
	for line := range strings.Lines(logs) {
		if !strings.Contains(line, `"message":"gatewayd starting"`) {
			continue
		}
		var l struct{ Time string }
		require.NoError(t, json.Unmarshal([]byte(line), &l))
		ts, err := time.Parse(time.RFC3339Nano, l.Time)
		require.NoError(t, err)
		return uint64(ts.UnixMicro()), uint64(ts.UnixMicro()) + 1000
	}
	t.Fatalf("no start line:\n%s", logs)
	return 0, 0
}

// followIDs follows port's event stream and keeps the newest id seen.
func followIDs(t *testing.T, port int) *atomic.Uint64 {
	t.Helper()
	var last atomic.Uint64
	res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/events", port))
	require.NoError(t, err)
	require.Equal(t, 200, res.StatusCode)
	t.Cleanup(func() { res.Body.Close() })
	go func() {
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
				if n, err := strconv.ParseUint(v, 10, 64); err == nil {
					last.Store(n)
				}
			}
		}
	}()
	return &last
}

// resumeFrom resumes port's event stream from lastID and returns whether
// it began with a reset, and the first id it then replayed.
func resumeFrom(t *testing.T, port int, lastID uint64) (reset bool, first uint64) {
	t.Helper()
	req, err := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/api/events", port), nil)
	require.NoError(t, err)
	req.Header.Set("Last-Event-ID", strconv.FormatUint(lastID, 10))
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, 200, res.StatusCode)
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "event: reset" {
			reset = true
		}
		if v, ok := strings.CutPrefix(line, "id: "); ok {
			n, err := strconv.ParseUint(v, 10, 64)
			require.NoError(t, err)
			return reset, n
		}
	}
	t.Fatalf("stream ended: %v", sc.Err())
	return
}

// README, Events: "reconnect with Last-Event-ID to get what you missed
// (...; older than that, `event: reset` comes first and you should
// re-read /api/gateways/status ...)"; the OpenAPI description: "an id older than that, or
// from another process, gets `event: reset` first". A standby's ids started
// from *its* start time, which is before the running process stopped: the
// running process's ids, counted from its own start, pass it once it has
// published as many events as microseconds separate the two starts
// (processes started together, as replicas are, start microseconds to
// milliseconds apart). After the takeover, a client resuming with the
// previous process's last id is then taken for one of the new process's
// own clients: no reset, and the new process's events up to that id
// (the takeover's state changes) were never sent to it. Ids now start
// from when the process takes the lock. (Found by an audit, helper 10,
// whose test this is.)
func TestStandbyTakeoverResetsAPreviousProcessesEventID(t *testing.T) {
	t.Parallel()
	sim, err := ctctest.NewServer("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(sim.Close)
	dbURL := tmpl.New(t)
	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	gate := newDBGate(t, u.Host) // closed: the second waits for its database, then for the lock
	u.Host = gate.ln.Addr().String()
	common := []string{"ENCRYPTION_KEY=" + key, "AUTH_ENABLED=false", "EVENTS_BUFFER=1000000", "EVENTS_CLIENT_BUFFER=1000000",
		"GATEWAY_BACKOFF_INITIAL=10ms", "GATEWAY_BACKOFF_MAX=20ms"}
	// Two replicas started together; the first gets the lock.
	pa, pb := testutil.FreePort(t), testutil.FreePort(t)
	a := launch(t, pa, append([]string{"DATABASE_URL=" + dbURL}, common...))
	b := launch(t, pb, append([]string{"DATABASE_URL=" + u.String()}, common...))
	require.True(t, a.logged(t, logging.APIListening, 30*time.Second), "a serves:\n%s", a.logs)
	require.True(t, b.logged(t, logging.APIStarting, 30*time.Second), "b starts:\n%s", b.logs)
	sa, _ := startedMicros(t, a.logs.String())
	_, sb := startedMicros(t, b.logs.String())
	t.Logf("b started %d µs after a", int64(sb)-int64(sa))
	gate.open.Store(true)
	testutil.Eventually(t, func() bool { return strings.Contains(b.logs.String(), "waiting for it to stop") }, 30*time.Second, "b waits")

	fa := apiClient(fmt.Sprintf("http://127.0.0.1:%d/api", pa))
	lastA := followIDs(t, pa)
	org := fa.post(t, "/organizations", map[string]any{"name": "O"}, 201)["id"]
	factory := fa.post(t, "/factories", map[string]any{"organization_id": org, "name": "F"}, 201)["id"]
	var sims []*ctctest.Gateway
	for i := range 40 {
		name := fmt.Sprintf("gw-%02d", i)
		sg := sim.Add(name, ctctest.Config{Email: "e@example.com", Password: "p"})
		sims = append(sims, sg)
		fa.post(t, "/gateways", map[string]any{"factory_id": factory, "gateway_id": name, "name": name, "url": sg.URL(),
			"email": "e@example.com", "password": "p"}, 201)
	}
	// Gateways that drop every socket soon after login publish state
	// changes until a's ids have passed b's start.
	flap := func(on bool) {
		for _, sg := range sims {
			if on {
				sg.SetFaults(ctctest.Faults{DropAfter: 20 * time.Millisecond})
				sg.Drop(1001)
			} else {
				sg.SetFaults(ctctest.Faults{})
			}
		}
	}
	flap(true)
	testutil.Eventually(t, func() bool { return lastA.Load() > sb+200 }, 180*time.Second, "a's ids pass b's start (%d, now %d)", sb, lastA.Load())
	flap(false)
	// What a client of a last saw.
	testutil.Eventually(t, func() bool {
		x := lastA.Load()
		time.Sleep(100 * time.Millisecond) // a quiet spell: time passing is the point
		return lastA.Load() == x
	}, 30*time.Second, "a quiet")
	x := lastA.Load()

	require.NoError(t, a.cmd.Process.Kill())
	<-a.done
	require.True(t, b.logged(t, logging.APIListening, 30*time.Second), "b takes over:\n%s", b.logs)
	lastB := followIDs(t, pb)
	flap(true)
	testutil.Eventually(t, func() bool { return lastB.Load() > x+100 }, 180*time.Second, "b's ids pass a's last (%d, now %d)", x, lastB.Load())
	flap(false)

	reset, first := resumeFrom(t, pb, x)
	t.Logf("a's last id %d (a started %d, b %d); b resumed it: reset %v, first id %d", x, sa, sb, reset, first)
	assert.True(t, reset, "an id of the previous process gets event: reset first; b replayed from %d instead, skipping its own events %d…%d",
		first, sb+1, x)
}
