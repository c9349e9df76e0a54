package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/ctc/ctctest"
	"github.com/ctcgw/gatewayd/internal/config"
	"github.com/ctcgw/gatewayd/internal/logging"
	"github.com/ctcgw/gatewayd/internal/testdb"
	"github.com/ctcgw/gatewayd/internal/testutil"
	"github.com/ctcgw/gatewayd/store"
)

var tmpl *testdb.Template

// The tests that run the binary wait on it: they run at once whatever
// GOMAXPROCS is.
func TestMain(m *testing.M) {
	testutil.Parallel(8)
	// The gatewayd processes the tests start inherit an ignored SIGHUP
	// (a run under nohup, or a CI runner that ignores it), and keep it
	// ignored, as under nohup they should: TestSIGHUPStopsGracefully
	// then failed every time, its SIGHUP unanswered for 20 s. A signal
	// this process catches is back at its default in a child.
	if signal.Ignored(syscall.SIGHUP) {
		signal.Notify(make(chan os.Signal, 1), syscall.SIGHUP)
	}
	code := testdb.Run(m, &tmpl)
	if binPath != "" { // built by binary, not make test's
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	testdb.Exit(code)
}

var key = testutil.KeyBase64

func TestVersionAndUsage(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	assert.Equal(t, 0, run([]string{"version"}, nil, &out, &errb))
	assert.Equal(t, "gatewayd dev\n", out.String())
	for _, flag := range []string{"--version", "-version", "-v"} {
		out.Reset()
		assert.Equal(t, 0, run([]string{flag}, nil, &out, &errb), flag)
		assert.Equal(t, "gatewayd dev\n", out.String(), flag)
	}
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

// served is a `gatewayd serve` process a test started.
type served struct {
	port int
	logs *testutil.SyncBuffer // its stderr
	cmd  *exec.Cmd
	done chan struct{} // closed when it has exited
	err  error         // Wait's result, once done is closed
}

// startServe starts `gatewayd serve` (behind wrap, e.g. prlimit, when given)
// with env and an API port of its own, and returns once the process has
// logged that it listens. A port that was free a moment ago can be taken
// by then (another test's server, or the local end of an outgoing
// connection): gatewayd then stops with "address already in use" and
// another port is tried. Waiting for the process's own line, rather than
// for an answer on the port, keeps a test from talking to whoever else
// holds it (another test's gatewayd answers /api/ready too).
func startServe(t *testing.T, env []string, wrap ...string) *served {
	t.Helper()
	return startServeUntil(t, logging.APIListening, env, wrap...)
}

// startServeUntil is startServe returning once the process has logged
// message (with its address) instead.
func startServeUntil(t *testing.T, message string, env []string, wrap ...string) *served {
	t.Helper()
	for attempt := 1; ; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		port := ln.Addr().(*net.TCPAddr).Port
		require.NoError(t, ln.Close())

		argv := append(append(wrap[:len(wrap):len(wrap)], binary(t)), "serve")
		s := &served{port: port, logs: &testutil.SyncBuffer{}, cmd: exec.Command(argv[0], argv[1:]...), done: make(chan struct{})}
		s.cmd.Env = append(env[:len(env):len(env)], fmt.Sprintf("API_PORT=%d", port), "API_HOST=127.0.0.1")
		s.cmd.Stderr = s.logs
		require.NoError(t, s.cmd.Start())
		go func() { s.err = s.cmd.Wait(); close(s.done) }()
		t.Cleanup(func() { _ = s.cmd.Process.Kill(); <-s.done })

		if s.logged(t, message, 20*time.Second) {
			return s
		}
		if !strings.Contains(s.logs.String(), "address already in use") || attempt == 5 {
			t.Fatalf("gatewayd exited before listening: %v\n%s", s.err, s.logs)
		}
		t.Logf("port %d was taken before gatewayd bound it; trying another", port)
	}
}

// logged waits for the process's line of message on its port; it
// returns false if the process exited first.
func (s *served) logged(t *testing.T, message string, within time.Duration) bool {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", s.port)
	deadline := time.After(within)
	for {
		if logging.LoggedAt(s.logs.String(), message, addr) {
			return true
		}
		select {
		case <-s.done:
			return false
		case <-deadline:
			t.Fatalf("gatewayd did not listen within %v\n%s", within, s.logs)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestSIGTERMClosesEveryGatewayWith1000 runs the real binary.
func TestSIGTERMClosesEveryGatewayWith1000(t *testing.T) {
	t.Parallel()
	sim, err := ctctest.NewServer("127.0.0.1:0")
	require.NoError(t, err)
	defer sim.Close()
	dbURL := tmpl.New(t)
	// An operator's first step: mint an admin token with the CLI.
	var minted, mintLog bytes.Buffer
	require.Equal(t, 0, run([]string{"token", "create", "--name", "ops", "--role", "admin"},
		[]string{"ENCRYPTION_KEY=" + key, "DATABASE_URL=" + dbURL}, &minted, &mintLog), mintLog.String())
	token := strings.TrimSpace(minted.String())
	require.Regexp(t, `^gwd_[A-Za-z0-9_-]{43}$`, token)
	assert.NotContains(t, mintLog.String(), token, "the secret goes to stdout only, never to the log")

	gw := startServe(t, []string{"DATABASE_URL=" + dbURL, "ENCRYPTION_KEY=" + key, "SHUTDOWN_TIMEOUT=5s", "GATEWAY_PING_INTERVAL=200ms"})
	logs := gw.logs
	api := fmt.Sprintf("http://127.0.0.1:%d/api", gw.port)
	require.Eventually(t, func() bool {
		resp, err := http.Get(api + "/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, 20*time.Second, 50*time.Millisecond, "gatewayd never became ready")

	// Access control is on by default: no token, no data.
	resp, err := http.Get(api + "/gateways")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 401, resp.StatusCode)

	do := func(method, path string, body io.Reader) (*http.Response, error) {
		req, err := http.NewRequest(method, api+path, body)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		return http.DefaultClient.Do(req)
	}
	post := func(path string, body any) map[string]any {
		raw, _ := json.Marshal(body)
		resp, err := do("POST", path, bytes.NewReader(raw))
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
		resp, err := do("GET", "/gateways/status", nil)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var body struct{ Counts map[string]int }
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return body.Counts["AUTHENTICATED"] == 20
	}, 10*time.Second, 50*time.Millisecond)

	start := time.Now()
	require.NoError(t, gw.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-gw.done:
		require.NoError(t, gw.err, "exit code 0\n%s", logs.String())
	case <-time.After(6 * time.Second):
		t.Fatalf("did not exit within SHUTDOWN_TIMEOUT\n%s", logs.String())
	}
	assert.Less(t, time.Since(start), 5*time.Second)
	for i, sg := range sims {
		require.Eventually(t, func() bool { return sg.Stats().Open == 0 }, 10*time.Second, 10*time.Millisecond)
		assert.Equal(t, []int{1000}, sg.Stats().CloseCodes, "gateway %d", i)
	}
	assert.NotContains(t, logs.String(), `"password"`)
}

func TestHelpListsCommandsAndEveryVariable(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"serve", "--help"}, {"token", "create", "--help"}, {"token", "--help"}, {"token", "help"}} {
		var out, errb bytes.Buffer
		require.Equal(t, 0, run(args, nil, &out, &errb), "%v: %s", args, errb.String())
		for _, c := range commands {
			assert.Contains(t, out.String(), c.name, "%v", args)
		}
		for _, v := range config.Variables {
			assert.Contains(t, out.String(), v.Name, "%v", args)
		}
	}
}

// The token commands an operator uses, against a real database: create
// prints the secret once, list never shows it, revoke takes an id.
func TestTokenCommands(t *testing.T) {
	t.Parallel()
	env := []string{"ENCRYPTION_KEY=" + key, "DATABASE_URL=" + tmpl.New(t), "LOG_FORMAT=json"}
	cmd := func(want int, args ...string) (string, string) {
		t.Helper()
		var out, errb bytes.Buffer
		require.Equal(t, want, run(args, env, &out, &errb), "%v: %s", args, errb.String())
		return out.String(), errb.String()
	}
	secretText, logs := cmd(0, "token", "create", "--name", "grafana", "--role", "viewer", "--expires", "90d")
	secretText = strings.TrimSpace(secretText)
	require.Regexp(t, `^gwd_[A-Za-z0-9_-]{43}$`, secretText)
	assert.Contains(t, logs, "API token created")
	assert.NotContains(t, logs, secretText)

	list, _ := cmd(0, "token", "list")
	lines := strings.Split(strings.TrimSpace(list), "\n")
	require.Len(t, lines, 2, list)
	assert.Contains(t, lines[0], "ROLE")
	fields := strings.Fields(lines[1])
	assert.Equal(t, []string{"grafana", "viewer"}, fields[1:3])
	assert.NotContains(t, list, secretText)
	assert.Equal(t, "-", fields[len(fields)-1], "not revoked")

	cmd(0, "token", "revoke", fields[0])
	list, _ = cmd(0, "token", "list")
	assert.NotEqual(t, "-", strings.Fields(strings.Split(strings.TrimSpace(list), "\n")[1])[6], "revoked: %s", list)

	_, errText := cmd(2, "token", "create", "--name", "x", "--role", "root")
	assert.Contains(t, errText, "--role viewer, operator or admin")
	_, errText = cmd(2, "token", "create", "--name", "x", "--role", "viewer", "--expires", "3661d")
	assert.Contains(t, errText, "up to 3660d", "the API's limit")
	_, errText = cmd(2, "token", "revoke", "not-an-id")
	assert.Contains(t, errText, "is not a token id")
	_, errText = cmd(2, "token", "mint")
	assert.Contains(t, errText, `unknown token command "mint"`)
	_, errText = cmd(1, "token", "revoke", "00000000-0000-0000-0000-000000000001")
	assert.Contains(t, errText, "not found")

	// Names count characters, as the API does, and are UTF-8.
	cmd(0, "token", "create", "--name", strings.Repeat("é", 255), "--role", "viewer")
	_, errText = cmd(2, "token", "create", "--name", strings.Repeat("é", 256), "--role", "viewer")
	assert.Contains(t, errText, "1-255 characters")
	_, errText = cmd(2, "token", "create", "--name", "bad\xff", "--role", "viewer")
	assert.Contains(t, errText, "of UTF-8")
	// A name with a newline (the API takes one) keeps to its row.
	cmd(0, "token", "create", "--name", "two\nlines", "--role", "viewer")
	list, _ = cmd(0, "token", "list")
	assert.Len(t, strings.Split(strings.TrimSpace(list), "\n"), 4, list)
	assert.Contains(t, list, `"two\nlines"`)
}

// rekey moves passwords to the new key, says how many, and fails (so a
// script stops before dropping the old key) while one is unreadable.
func TestRekeyCommand(t *testing.T) {
	t.Parallel()
	dbURL := tmpl.New(t)
	oldEnv := []string{"ENCRYPTION_KEY=" + key, "DATABASE_URL=" + dbURL}
	var out, errb bytes.Buffer
	require.Equal(t, 0, run([]string{"migrate"}, oldEnv, &out, &errb), errb.String())
	pool, err := pgxpool.New(context.Background(), dbURL)
	require.NoError(t, err)
	defer pool.Close()
	oldSealer, err := store.NewSealer(testutil.Key)
	require.NoError(t, err)
	st := store.New(pool, oldSealer)
	ctx := context.Background()
	org, err := st.CreateOrganization(ctx, "O", nil)
	require.NoError(t, err)
	f, err := st.CreateFactory(ctx, store.NewFactory{OrganizationID: org.ID, Name: "F"})
	require.NoError(t, err)
	var ids []string
	for i := range 4 {
		g, err := st.CreateGateway(ctx, store.NewGateway{FactoryID: f.ID, GatewayID: fmt.Sprint("gw-", i), Name: "G",
			URL: "ws://127.0.0.1:1/gw", Email: "e@example.com", Password: "pw"})
		require.NoError(t, err)
		ids = append(ids, g.ID.String())
	}
	// A deleted gateway's password is re-sealed too (the old key may have
	// leaked); unreadable, it fails nothing (it can never be set again).
	_, err = st.DeleteGateway(ctx, uuid.MustParse(ids[3]))
	require.NoError(t, err)
	newKey := base64.StdEncoding.EncodeToString([]byte("the new key, thirty-two bytes!!!"))
	rotated := []string{"ENCRYPTION_KEY=" + newKey, "ENCRYPTION_KEYS_PREVIOUS=" + key, "DATABASE_URL=" + dbURL}
	out.Reset()
	require.Equal(t, 0, run([]string{"rekey"}, rotated, &out, &errb), errb.String())
	assert.Equal(t, "resealed 4, already current 0, unreadable 0\n", out.String(), "the deleted gateway's too")

	// Without the previous key, nothing opens a password sealed under a
	// key nobody has any more.
	_, err = pool.Exec(ctx, `UPDATE gateways SET password_encrypted = 'v2:00000000:AAAA' WHERE gateway_id IN ('gw-0', 'gw-3')`)
	require.NoError(t, err)
	out.Reset()
	errb.Reset()
	require.Equal(t, 1, run([]string{"rekey"}, rotated, &out, &errb))
	assert.Contains(t, out.String(), "resealed 0, already current 2, unreadable 1\n", "the deleted one is not listed")
	assert.Contains(t, out.String(), "gateway gw-0: set it again (PUT /api/gateways/"+ids[0]+")",
		"the id the API takes, not only the gateway_id")
	assert.Contains(t, errb.String(), "1 gateway password is under no configured key")

	// Set again, the last unreadable password no longer fails the run.
	newSealer, err := store.NewSealer([]byte("the new key, thirty-two bytes!!!"))
	require.NoError(t, err)
	sealed, err := newSealer.Seal("pw")
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `UPDATE gateways SET password_encrypted = $1 WHERE gateway_id = 'gw-0'`, sealed)
	require.NoError(t, err)
	out.Reset()
	require.Equal(t, 0, run([]string{"rekey"}, rotated, &out, &errb), errb.String())
	assert.Equal(t, "resealed 0, already current 3, unreadable 0\n", out.String())
}

// A command a signal interrupted gets no hint: its database calls end in
// errors that read as an outage, and it was told to start PostgreSQL.
func TestNoHintForAnInterruptedCommand(t *testing.T) {
	cfg := &config.Config{DatabaseURL: "postgres://u:secret@db:5432/g"}
	err := fmt.Errorf("rekey: %w: context canceled", gatewayd.ErrUnavailable)
	hint := hintFor(context.Background(), err, cfg)
	assert.Contains(t, hint, "does not answer", "not interrupted: the outage's hint")
	assert.NotContains(t, hint, "secret")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.Empty(t, hintFor(ctx, err, cfg))
}

// The hint follows the error's kind, not its words.
func TestHintForAMissingDatabase(t *testing.T) {
	cfg := &config.Config{DatabaseURL: "postgres://u:secret@db:5432/g"}
	missing := fmt.Errorf("connect: %w: %w: FATAL", gatewayd.ErrUnavailable, store.ErrNoDatabase)
	hint := hintFor(context.Background(), missing, cfg)
	assert.Contains(t, hint, "does not exist: create it")
	assert.NotContains(t, hint, "secret")
	assert.Empty(t, hintFor(context.Background(), errors.New("sensor unavailable (SQLSTATE 3D000)"), cfg),
		"words alone are not the kind")
}

// A reading is failed as abandoned only after twice the longest a
// gateway can hold one: 17 readings of 30 s + 2 × 30 s + 4 × 60 s with
// the defaults, twice.
func TestAbandonedAfterIsTwiceTheLongestHold(t *testing.T) {
	cfg, err := config.Load("", []string{"ENCRYPTION_KEY=" + key})
	require.NoError(t, err)
	assert.Equal(t, 187*time.Minute, abandonedAfter(cfg))

	// Large settings the configuration accepts: no wrap to a negative
	// cutoff (which failed every reading in flight within a minute).
	cfg, err = config.Load("", []string{"ENCRYPTION_KEY=" + key, "READING_QUEUE_LIMIT=10000", "READING_TIMEOUT=6d"})
	require.NoError(t, err)
	assert.Equal(t, time.Duration(math.MaxInt64), abandonedAfter(cfg))
}

// Shutdown keeps to SHUTDOWN_TIMEOUT while a request waits on the
// database: such a request once held its pool connection until its own
// deadline (5 s), and closing the pool waited for it. Requests now run
// under a context that ends when the HTTP shutdown runs out of time.
func TestShutdownDoesNotWaitForRequestsOnTheDatabase(t *testing.T) {
	t.Parallel()
	dbURL := tmpl.New(t)
	gw := startServe(t, []string{"DATABASE_URL=" + dbURL, "ENCRYPTION_KEY=" + key, "SHUTDOWN_TIMEOUT=2s", "AUTH_ENABLED=false"})
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dbURL)
	require.NoError(t, err)
	defer pool.Close()
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, `LOCK TABLE organizations IN ACCESS EXCLUSIVE MODE`)
	require.NoError(t, err)

	api := fmt.Sprintf("http://127.0.0.1:%d/api", gw.port)
	answered := make(chan int, 1)
	go func() {
		resp, err := http.Post(api+"/organizations", "application/json", strings.NewReader(`{"name":"O"}`))
		if err != nil {
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	require.Eventually(t, func() bool {
		var waiting int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting))
		return waiting > 0
	}, 10*time.Second, 10*time.Millisecond, "the request waits on the lock")

	start := time.Now()
	require.NoError(t, gw.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-gw.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("did not exit\n%s", gw.logs.String())
	}
	took := time.Since(start)
	t.Logf("exited %s after SIGTERM", took.Round(time.Millisecond))
	assert.Less(t, took, 3*time.Second, "SHUTDOWN_TIMEOUT is 2s; the request's own deadline is 5s\n%s", gw.logs.String())
	assert.NotEqual(t, 201, <-answered, "the request was not served")
}

// A serve that cannot take its port stops before it touches the
// database's state: it used to fail every unfinished reading (those of
// the gatewayd on that port, say) as interrupted before it found out.
func TestServeWithoutItsPortLeavesReadingsAlone(t *testing.T) {
	t.Parallel()
	dbURL, env := migrated(t)
	var out, errb bytes.Buffer
	pool, err := pgxpool.New(context.Background(), dbURL)
	require.NoError(t, err)
	defer pool.Close()
	ctx := context.Background()
	var reading uuid.UUID
	require.NoError(t, pool.QueryRow(ctx, `
		WITH f AS (INSERT INTO factories (organization_id, name)
			SELECT id, 'F' FROM organizations LIMIT 1 RETURNING id),
		g AS (INSERT INTO gateways (factory_id, gateway_id, name, url, email, password_encrypted, desired_state)
			SELECT id, 'gw-busy', 'G', 'ws://127.0.0.1:1/gw', 'e@example.com', 'x', 'DISCONNECTED' FROM f RETURNING id),
		s AS (INSERT INTO sensors (gateway_id, serial, name) SELECT id, 1, 'S' FROM g RETURNING id, gateway_id)
		INSERT INTO readings (sensor_id, gateway_id, trigger, status, started_at)
			SELECT id, gateway_id, 'MANUAL', 'RUNNING', now() FROM s RETURNING id`).Scan(&reading))

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port
	code := run([]string{"serve"}, append(env, "API_HOST=127.0.0.1", fmt.Sprint("API_PORT=", port)), &out, &errb)
	assert.Equal(t, 1, code)
	assert.Contains(t, errb.String(), "address already in use")
	var status string
	require.NoError(t, pool.QueryRow(ctx, `SELECT status FROM readings WHERE id = $1`, reading).Scan(&status))
	assert.Equal(t, "RUNNING", status, "the reading is another process's")
}

// A DEBUG_ADDR whose port is taken stops serve before it touches the
// database, as the API's port does: DEBUG_ADDR=localhost:P beside
// API_HOST=127.0.0.1 API_PORT=P passes the configuration check (not the
// same spelling) and stopped the process only after the migrations had
// run. (Found by an audit, helper 6.)
func TestServeWithoutItsDebugPortLeavesTheDatabaseAlone(t *testing.T) {
	t.Parallel()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	apiPort := free.Addr().(*net.TCPAddr).Port
	require.NoError(t, free.Close())
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	// A database that never answers: a start that asked it first would
	// wait its 30 s for it, and then fail for want of it.
	env := []string{"ENCRYPTION_KEY=" + key, "DATABASE_URL=postgres://postgres@127.0.0.1:1/none",
		"API_HOST=127.0.0.1", fmt.Sprint("API_PORT=", apiPort),
		fmt.Sprint("DEBUG_ADDR=localhost:", taken.Addr().(*net.TCPAddr).Port)}
	var out, errb bytes.Buffer
	code := run([]string{"serve"}, env, &out, &errb)
	assert.Equal(t, 1, code)
	assert.Contains(t, errb.String(), "listen on DEBUG_ADDR")
	assert.NotContains(t, out.String()+errb.String(), logging.APIStarting,
		"stopped before the database was asked (the start logs this just before it asks)")
}

// A database that takes no writes (a standby) stops serve at its first
// write with a hint that says so, not that PostgreSQL does not answer.
func TestServeOnAReadOnlyDatabase(t *testing.T) {
	t.Parallel()
	dbURL, _ := migrated(t)
	var out, errb bytes.Buffer
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	q := u.Query() // a TEST_DATABASE_URL may have no query of its own
	q.Set("default_transaction_read_only", "on")
	u.RawQuery = q.Encode()
	readOnly := []string{"ENCRYPTION_KEY=" + key, "DATABASE_URL=" + u.String(),
		"MIGRATE_ON_START=false", "API_HOST=127.0.0.1", fmt.Sprint("API_PORT=", port)}
	assert.Equal(t, 1, run([]string{"serve"}, readOnly, &out, &errb))
	assert.Contains(t, errb.String(), "takes no writes (a standby, or default_transaction_read_only)")
	assert.NotContains(t, errb.String(), "does not answer")
}

// A database migrated further than this binary knows, or not as far
// without MIGRATE_ON_START, stops a command with what to do.
func TestSchemaOfAnotherVersion(t *testing.T) {
	t.Parallel()
	dbURL := tmpl.New(t)
	pool, err := pgxpool.New(context.Background(), dbURL)
	require.NoError(t, err)
	t.Cleanup(pool.Close) // after the version is put back
	ctx := context.Background()
	known, err := store.MigrationCount()
	require.NoError(t, err)
	setVersion := func(v int) {
		_, err := pool.Exec(ctx, `UPDATE `+store.VersionTable+` SET version = $1`, v)
		require.NoError(t, err)
	}
	// The copy goes back to the template's state for the next test.
	t.Cleanup(func() { setVersion(known) })

	env := []string{"ENCRYPTION_KEY=" + key, "DATABASE_URL=" + dbURL}
	var out, errb bytes.Buffer
	setVersion(known + 1)
	assert.Equal(t, 1, run([]string{"migrate"}, env, &out, &errb))
	assert.Contains(t, errb.String(), fmt.Sprintf("it is at migration %d, this binary knows %d", known+1, known))
	assert.Contains(t, errb.String(), "run a gatewayd at least as new")

	setVersion(known - 1)
	errb.Reset()
	assert.Equal(t, 1, run([]string{"token", "list"}, append(env, "MIGRATE_ON_START=false"), &out, &errb))
	assert.Contains(t, errb.String(), fmt.Sprintf("it is at migration %d of %d", known-1, known))
	assert.Contains(t, errb.String(), "run `gatewayd migrate` first")
}

// migrated is a database migrated by the migrate command, and the
// environment that names it.
func migrated(t *testing.T) (dbURL string, env []string) {
	t.Helper()
	dbURL = tmpl.New(t)
	env = []string{"ENCRYPTION_KEY=" + key, "DATABASE_URL=" + dbURL}
	var out, errb bytes.Buffer
	require.Equal(t, 0, run([]string{"migrate"}, env, &out, &errb), errb.String())
	return dbURL, env
}
